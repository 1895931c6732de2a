// Package jsonl is the format of Firehose's plain S3 objects: the records
// concatenated byte for byte (Firehose's default), or each followed by a
// delimiter (AppendDelimiterToRecord, usually "\n"), through a compression
// codec. It streams: memory is the codec's window plus a 64 KiB buffer.
package jsonl

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/destinations/format/compress"
	"github.com/sluice-dev/sluice/pipeline"
)

// ContentType is the Content-Type of the objects (what Firehose sets).
const ContentType = "application/octet-stream"

const bufSize = 64 << 10

// Format writes records, each followed by Delimiter, compressed by Codec.
type Format struct {
	codec     compress.Codec
	delimiter []byte
}

var _ format.Format = (*Format)(nil)

// New returns the format. A nil codec means UNCOMPRESSED; an empty
// delimiter concatenates records with nothing between them.
func New(codec compress.Codec, delimiter string) *Format {
	if codec == nil {
		codec, _ = compress.Parse(compress.Uncompressed)
	}
	return &Format{codec: codec, delimiter: []byte(delimiter)}
}

// Codec returns the format's compression codec.
func (f *Format) Codec() compress.Codec { return f.codec }

// Ext is the codec's extension (Firehose adds none for plain records).
func (f *Format) Ext() string { return f.codec.Ext() }

// ContentType is application/octet-stream.
func (f *Format) ContentType() string { return ContentType }

// ContentEncoding is the codec's.
func (f *Format) ContentEncoding() string { return f.codec.ContentEncoding() }

// NewWriter starts an object written to w.
func (f *Format) NewWriter(w io.Writer) (format.ObjectWriter, error) {
	buf := bufio.NewWriterSize(w, bufSize)
	cw, err := f.codec.NewWriter(buf)
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	return &writer{buf: buf, cw: cw, delimiter: f.delimiter, codec: f.codec.Name()}, nil
}

type writer struct {
	buf       *bufio.Writer
	cw        io.WriteCloser
	delimiter []byte
	codec     string
	err       error
	closed    bool
}

var errClosed = errors.New("jsonl: object writer closed")

func (w *writer) Write(rec *pipeline.Record) error {
	if w.closed {
		return errClosed
	}
	if w.err != nil {
		return w.err
	}
	if _, err := w.cw.Write(rec.Data); err != nil {
		w.err = fmt.Errorf("jsonl: write: %w", err)
		return w.err
	}
	if len(w.delimiter) > 0 {
		if _, err := w.cw.Write(w.delimiter); err != nil {
			w.err = fmt.Errorf("jsonl: write: %w", err)
			return w.err
		}
	}
	return nil
}

// Close finishes the compressed stream and flushes it to the underlying
// writer, which it does not close.
func (w *writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if err := w.cw.Close(); err != nil {
		w.err = fmt.Errorf("jsonl: finish %s stream: %w", w.codec, err)
		return w.err
	}
	if err := w.buf.Flush(); err != nil {
		w.err = fmt.Errorf("jsonl: flush: %w", err)
		return w.err
	}
	return nil
}
