// Package format is the contract of object encoders: how the records of
// one object are encoded. The encoders are its subpackages: format/jsonl
// (newline-delimited or concatenated bytes under a codec of
// format/compress) and format/parquet (record format conversion).
// format/prefix is Firehose's prefix expression language and object
// naming. The object layer (destinations/object) uses them all, for every
// object destination (file, s3) alike.
package format

import (
	"io"

	"github.com/sluice-dev/sluice/pipeline"
)

// Format encodes the records of one object.
type Format interface {
	// Ext is the object name's extension, e.g. ".gz", ".parquet", "".
	Ext() string
	// ContentType and ContentEncoding are the object's HTTP metadata
	// (ContentEncoding may be empty).
	ContentType() string
	ContentEncoding() string
	// NewWriter starts an object written to w.
	NewWriter(w io.Writer) (ObjectWriter, error)
}

// ObjectWriter writes one object. Memory it holds is bounded by the
// format's own buffering (e.g. one Parquet row group), never by the
// object's size.
type ObjectWriter interface {
	// Write encodes one record. A record that cannot be encoded (e.g. it
	// does not fit the Parquet schema) returns a *pipeline.CodedError with
	// OutputType "format-conversion-failed": the object stays valid
	// without it and the caller dead-letters the record. Any other error
	// fails the object.
	Write(rec *pipeline.Record) error
	// Close flushes and finishes the object (it does not close the
	// underlying writer).
	Close() error
}

// OutputFormatConversionFailed is the error output type of records a
// format cannot encode.
const OutputFormatConversionFailed = "format-conversion-failed"
