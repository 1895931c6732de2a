// Package compress holds the object compression codecs of Firehose's
// CompressionFormat (UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY) plus
// ZSTD, each with the file extension and Content-Encoding of the objects it
// writes.
//
// Firehose applies its buffering size hint to the data before compression;
// codecs here only transform bytes, so the caller counts record bytes.
//
// Snappy is the framing format of
// https://github.com/google/snappy/blob/master/framing_format.txt
// (readable by snzip, python-snappy, golang/snappy's Reader). HADOOP_SNAPPY
// is Hadoop's BlockCompressorStream layout (see hadoop.go).
package compress

import (
	"archive/zip"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Codec compresses one object.
type Codec interface {
	// Name is the canonical (Firehose) name, e.g. "GZIP", "Snappy".
	Name() string
	// Ext is the object name's extension including the dot ("" for
	// UNCOMPRESSED).
	Ext() string
	// ContentEncoding is the object's Content-Encoding ("" for none).
	ContentEncoding() string
	// NewWriter starts a compressed stream written to w. Closing the
	// returned writer finishes the stream; it does not close w.
	NewWriter(w io.Writer) (io.WriteCloser, error)
}

// Codec names, as Firehose spells them (ZSTD is Sluice's addition).
const (
	Uncompressed = "UNCOMPRESSED"
	GZIP         = "GZIP"
	ZIP          = "ZIP"
	Snappy       = "Snappy"
	HadoopSnappy = "HADOOP_SNAPPY"
	ZSTD         = "ZSTD"
)

// ZipEntryName is the name of the single entry of a ZIP object. Firehose
// names it with a random UUID; a fixed name keeps redeliveries of a batch
// byte-identical.
const ZipEntryName = "data"

// Parse returns the codec named name, case-insensitively ("" is
// UNCOMPRESSED).
func Parse(name string) (Codec, error) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "", Uncompressed, "NONE":
		return codec{Uncompressed, "", "", newNop}, nil
	case GZIP:
		return codec{GZIP, ".gz", "gzip", newGzip}, nil
	case ZIP:
		return codec{ZIP, ".zip", "zip", newZip}, nil
	case "SNAPPY":
		return codec{Snappy, ".snappy", "x-snappy-framed", newSnappy}, nil
	case HadoopSnappy:
		return codec{HadoopSnappy, ".hsnappy", "hadoop-snappy", newHadoop}, nil
	case ZSTD, "ZSTANDARD":
		return codec{ZSTD, ".zst", "zstd", newZstd}, nil
	}
	return nil, fmt.Errorf("unknown compression %q (want one of UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY, ZSTD)", name)
}

// Names lists the accepted codec names.
func Names() []string {
	return []string{Uncompressed, GZIP, ZIP, Snappy, HadoopSnappy, ZSTD}
}

type codec struct {
	name, ext, enc string
	open           func(io.Writer) (io.WriteCloser, error)
}

func (c codec) Name() string            { return c.name }
func (c codec) Ext() string             { return c.ext }
func (c codec) ContentEncoding() string { return c.enc }
func (c codec) NewWriter(w io.Writer) (io.WriteCloser, error) {
	wc, err := c.open(w)
	if err != nil {
		return nil, fmt.Errorf("%s writer: %w", c.name, err)
	}
	return wc, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func newNop(w io.Writer) (io.WriteCloser, error) { return nopCloser{w}, nil }

func newGzip(w io.Writer) (io.WriteCloser, error) {
	return gzip.NewWriterLevel(w, gzip.DefaultCompression)
}

func newZstd(w io.Writer) (io.WriteCloser, error) {
	// One goroutine and a 4 MiB window bound the encoder's memory.
	return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(4<<20))
}

// snappyWriter makes sure even an empty stream starts with the stream
// identifier chunk, as the framing format requires (s2 writes it lazily).
type snappyWriter struct {
	w       io.Writer
	s       *s2.Writer
	written bool
}

// snappyStreamID is the framing format's stream identifier chunk.
const snappyStreamID = "\xff\x06\x00\x00sNaPpY"

func newSnappy(w io.Writer) (io.WriteCloser, error) {
	return &snappyWriter{w: w, s: s2.NewWriter(w, s2.WriterSnappyCompat(), s2.WriterConcurrency(1))}, nil
}

func (s *snappyWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		s.written = true
	}
	return s.s.Write(p)
}

func (s *snappyWriter) Close() error {
	if err := s.s.Close(); err != nil {
		return err
	}
	if !s.written {
		s.written = true
		if _, err := io.WriteString(s.w, snappyStreamID); err != nil {
			return err
		}
	}
	return nil
}

// zipWriter is a ZIP archive with one deflated entry.
type zipWriter struct {
	zw    *zip.Writer
	entry io.Writer
}

func newZip(w io.Writer) (io.WriteCloser, error) {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.DefaultCompression)
	})
	entry, err := zw.CreateHeader(&zip.FileHeader{
		Name:     ZipEntryName,
		Method:   zip.Deflate,
		Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		return nil, err
	}
	return &zipWriter{zw: zw, entry: entry}, nil
}

func (z *zipWriter) Write(p []byte) (int, error) { return z.entry.Write(p) }
func (z *zipWriter) Close() error                { return z.zw.Close() }
