package file

import (
	"errors"
	"fmt"
	"strings"
)

// Compression formats accepted in Options.Compression (case-insensitive).
const (
	CompressionUncompressed = "UNCOMPRESSED"
	CompressionGzip         = "GZIP"
)

// DefaultErrorOutputPrefix is where dead letters go when
// Options.ErrorOutputPrefix is empty.
const DefaultErrorOutputPrefix = "errors/"

// Options configure a file destination. The YAML keys are the block's keys
// in a stream's configuration.
type Options struct {
	// Path is the root directory of the output. The caller resolves a
	// relative path against the data directory; New requires an absolute
	// path.
	Path string `yaml:"path"`
	// Prefix is prepended to every object key. As in Firehose, the time
	// path yyyy/MM/dd/HH/ is appended to it directly, without a slash:
	// prefix "logs" yields "logs2019/10/01/09/...". Default "".
	Prefix string `yaml:"prefix"`
	// Compression is UNCOMPRESSED (default) or GZIP (objects get a ".gz"
	// extension). Case-insensitive.
	Compression string `yaml:"compression"`
	// AppendNewline writes a '\n' after every record. Firehose
	// concatenates records byte for byte with no delimiter unless told
	// otherwise, so the default is false.
	AppendNewline bool `yaml:"append_newline"`
	// ErrorOutputPrefix is where dead letters go:
	// <error_output_prefix><output-type>/yyyy/MM/dd/HH/<object>.
	// Empty means DefaultErrorOutputPrefix.
	ErrorOutputPrefix string `yaml:"error_output_prefix"`
}

// DefaultOptions returns the defaults a configuration block is decoded onto.
func DefaultOptions() Options {
	return Options{Compression: CompressionUncompressed, ErrorOutputPrefix: DefaultErrorOutputPrefix}
}

// Validate reports every problem with the options at once. It does not
// require Path to be absolute (the caller resolves it against the data
// directory before calling New).
func (o Options) Validate() error {
	var errs []error
	if o.Path == "" {
		errs = append(errs, errors.New("path: required"))
	}
	if _, err := parseCompression(o.Compression); err != nil {
		errs = append(errs, err)
	}
	if err := validatePrefix(o.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("prefix: %w", err))
	}
	if err := validatePrefix(o.ErrorOutputPrefix); err != nil {
		errs = append(errs, fmt.Errorf("error_output_prefix: %w", err))
	}
	if o.Prefix != "" && o.Prefix == o.errorPrefix() {
		errs = append(errs, fmt.Errorf("error_output_prefix: must differ from prefix %q", o.Prefix))
	}
	return errors.Join(errs...)
}

func (o Options) errorPrefix() string {
	if o.ErrorOutputPrefix == "" {
		return DefaultErrorOutputPrefix
	}
	return o.ErrorOutputPrefix
}

func parseCompression(s string) (compression, error) {
	switch strings.ToUpper(s) {
	case "", CompressionUncompressed:
		return uncompressed, nil
	case CompressionGzip:
		return gzipped, nil
	default:
		return 0, fmt.Errorf("compression: %q is not one of UNCOMPRESSED, GZIP", s)
	}
}

type compression int

const (
	uncompressed compression = iota
	gzipped
)

func (c compression) ext() string {
	if c == gzipped {
		return ".gz"
	}
	return ""
}

// validatePrefix accepts a relative, slash-separated key prefix that stays
// inside the output directory. Firehose expressions (!{...}) are not
// supported yet.
func validatePrefix(p string) error {
	if p == "" {
		return nil
	}
	switch {
	case len(p) > 512:
		return fmt.Errorf("%d characters, at most 512", len(p))
	case strings.Contains(p, "!{"):
		return fmt.Errorf("%q: expressions (!{...}) are not supported by the file destination", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q: must be relative", p)
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("%q: backslash and NUL are not allowed", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "." || el == ".." {
			return fmt.Errorf("%q: %q path elements are not allowed", p, el)
		}
	}
	// Names starting with '.' would look like our temporary files.
	if strings.HasPrefix(p, ".") || strings.Contains(p, "/.") {
		return fmt.Errorf("%q: names must not start with '.'", p)
	}
	return nil
}
