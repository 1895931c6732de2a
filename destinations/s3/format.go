package s3

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/pipeline"
)

// FormatOptions selects the encoding of objects.
type FormatOptions struct {
	// Type is json (records as bytes, optionally newline-delimited, under
	// the compression codec; the default) or parquet.
	Type string `yaml:"type"`
	// Parquet holds the Parquet schema and options (format/parquet).
	Parquet yaml.Node `yaml:"parquet"`
}

func validateFormat(o Options) error {
	var errs []error
	switch strings.ToLower(o.Format.Type) {
	case "", FormatJSON:
		if _, err := parseCompression(o.Compression); err != nil {
			errs = append(errs, fmt.Errorf("compression: %w", err))
		}
	case FormatParquet:
		errs = append(errs, errors.New("format.type: parquet is not supported yet"))
	default:
		errs = append(errs, fmt.Errorf("format.type: %q is not one of %s, %s", o.Format.Type, FormatJSON, FormatParquet))
	}
	return errors.Join(errs...)
}

// newFormat builds the object format of the options (validated).
func newFormat(o Options) (format.Format, error) {
	gz, err := parseCompression(o.Compression)
	if err != nil {
		return nil, err
	}
	return concatFormat{gzip: gz, newline: o.AppendNewline}, nil
}

func parseCompression(s string) (gzipped bool, err error) {
	switch strings.ToUpper(s) {
	case "", "UNCOMPRESSED":
		return false, nil
	case "GZIP":
		return true, nil
	}
	return false, fmt.Errorf("%q is not one of UNCOMPRESSED, GZIP", s)
}

// concatFormat writes the records' bytes one after the other.
type concatFormat struct {
	gzip    bool
	newline bool
}

func (f concatFormat) Ext() string {
	if f.gzip {
		return ".gz"
	}
	return ""
}
func (f concatFormat) ContentType() string { return "application/octet-stream" }
func (f concatFormat) ContentEncoding() string {
	if f.gzip {
		return "gzip"
	}
	return ""
}

func (f concatFormat) NewWriter(w io.Writer) (format.ObjectWriter, error) {
	cw := &concatWriter{w: w, newline: f.newline}
	if f.gzip {
		cw.zw = gzip.NewWriter(w)
		cw.w = cw.zw
	}
	return cw, nil
}

type concatWriter struct {
	w       io.Writer
	zw      *gzip.Writer
	newline bool
}

func (c *concatWriter) Write(rec *pipeline.Record) error {
	if _, err := c.w.Write(rec.Data); err != nil {
		return err
	}
	if c.newline {
		_, err := c.w.Write([]byte{'\n'})
		return err
	}
	return nil
}

func (c *concatWriter) Close() error {
	if c.zw != nil {
		return c.zw.Close()
	}
	return nil
}
