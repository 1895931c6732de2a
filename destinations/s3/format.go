package s3

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/destinations/format/compress"
	"github.com/sluice-dev/sluice/destinations/format/jsonl"
	"github.com/sluice-dev/sluice/destinations/format/parquet"
)

// FormatOptions selects the encoding of objects.
type FormatOptions struct {
	// Type is json (the default: records as bytes, concatenated or
	// newline-delimited, under the compression codec; package
	// format/jsonl) or parquet (record format conversion; package
	// format/parquet).
	Type string `yaml:"type"`
	// Parquet is the Parquet schema and writer options, required with
	// type parquet (see format/parquet.Config).
	Parquet *parquet.Config `yaml:"parquet"`
}

func validateFormat(o Options) error {
	var errs []error
	codec, err := compress.Parse(o.Compression)
	if err != nil {
		errs = append(errs, fmt.Errorf("compression: %w", err))
	}
	switch strings.ToLower(o.Format.Type) {
	case "", FormatJSON:
		if o.Format.Parquet != nil {
			errs = append(errs, errors.New("format.parquet: only with format.type parquet"))
		}
	case FormatParquet:
		if codec != nil && codec.Name() != compress.Uncompressed {
			errs = append(errs, fmt.Errorf("compression: %s with format.type parquet: Parquet compresses its own pages (format.parquet.compression), the object compression must be UNCOMPRESSED", codec.Name()))
		}
		if o.AppendNewline {
			errs = append(errs, errors.New("append_newline: only with format.type json"))
		}
		if o.Format.Parquet == nil {
			errs = append(errs, errors.New("format.parquet: required with format.type parquet (the schema's columns)"))
		} else if err := o.Format.Parquet.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("format.parquet: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("format.type: %q is not one of %s, %s", o.Format.Type, FormatJSON, FormatParquet))
	}
	return errors.Join(errs...)
}

// newFormat builds the object format of the options (validated).
func newFormat(o Options) (format.Format, error) {
	if strings.EqualFold(o.Format.Type, FormatParquet) {
		return parquet.New(*o.Format.Parquet)
	}
	codec, err := compress.Parse(o.Compression)
	if err != nil {
		return nil, err
	}
	delim := ""
	if o.AppendNewline {
		delim = "\n"
	}
	return jsonl.New(codec, delim), nil
}

// defaultExt is the extension of data objects without file_extension.
func defaultExt(o Options) string {
	if strings.EqualFold(o.Format.Type, FormatParquet) {
		return ".parquet"
	}
	if codec, err := compress.Parse(o.Compression); err == nil {
		return codec.Ext()
	}
	return ""
}
