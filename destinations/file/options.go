package file

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/destinations/format/prefix"
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
	// Prefix is Firehose's Prefix: literal text and !{...} expressions
	// (package destinations/format/prefix). Without a timestamp expression
	// the time path yyyy/MM/dd/HH/ is appended directly, without a slash:
	// prefix "logs" yields "logs2019/10/01/09/...". Partition keys
	// (!{partitionKeyFromQuery:k}, !{partitionKeyFromLambda:k}) turn on
	// dynamic partitioning. Default "".
	Prefix string `yaml:"prefix"`
	// Compression is UNCOMPRESSED (default) or GZIP (objects get a ".gz"
	// extension). Case-insensitive.
	Compression string `yaml:"compression"`
	// AppendNewline writes a '\n' after every record. Firehose
	// concatenates records byte for byte with no delimiter unless told
	// otherwise, so the default is false.
	AppendNewline bool `yaml:"append_newline"`
	// ErrorOutputPrefix is Firehose's ErrorOutputPrefix: where dead letters
	// go. A plain string gives <error_output_prefix><output-type>/yyyy/MM/dd/HH/;
	// with expressions it must contain !{firehose:error-output-type}, and a
	// Prefix with expressions requires such an ErrorOutputPrefix. Empty
	// means DefaultErrorOutputPrefix.
	ErrorOutputPrefix string `yaml:"error_output_prefix"`
	// CustomTimeZone is the time zone of the time path, the timestamp
	// expressions and the time in object names, e.g. "Asia/Tokyo".
	// Default UTC.
	CustomTimeZone string `yaml:"custom_time_zone"`
	// FileExtension replaces the default extension of data objects ("" or
	// ".gz"), e.g. ".json.gz". Firehose's pattern: \.[0-9a-z!\-_.*'()]+.
	FileExtension string `yaml:"file_extension"`
	// MaxActivePartitions bounds the distinct partitions of one batch under
	// dynamic partitioning; records of further partitions are dead-lettered
	// as activePartitionExceeded. 0 means 500, Firehose's default.
	MaxActivePartitions int `yaml:"max_active_partitions"`
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
	if o.MaxActivePartitions < 0 {
		errs = append(errs, fmt.Errorf("max_active_partitions: %d is negative", o.MaxActivePartitions))
	}
	if _, err := o.spec(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o Options) errorPrefix() string {
	if o.ErrorOutputPrefix == "" {
		return DefaultErrorOutputPrefix
	}
	return o.ErrorOutputPrefix
}

// spec parses the prefixes with the file destination's own rules on top
// of Firehose's: keys must stay inside the output directory.
func (o Options) spec() (*prefix.Spec, error) {
	var errs []error
	loc, err := prefix.LoadTimeZone(o.CustomTimeZone)
	if err != nil {
		errs = append(errs, fmt.Errorf("custom_time_zone: %w", err))
	}
	comp, _ := parseCompression(o.Compression)
	ext := o.FileExtension
	if ext == "" {
		ext = comp.ext()
	}
	errPrefix := o.errorPrefix()
	usesKeys := strings.Contains(o.Prefix, "!{partitionKeyFrom")
	spec, err := prefix.Parse(o.Prefix, errPrefix, prefix.Options{DynamicPartitioning: usesKeys, TimeZone: loc, FileExtension: ext})
	if err != nil {
		if o.ErrorOutputPrefix == "" && strings.Contains(o.Prefix, "!{") {
			err = fmt.Errorf("%w (error_output_prefix defaults to %q; with expressions in prefix set one such as \"errors/!{firehose:error-output-type}/\")", err, DefaultErrorOutputPrefix)
		}
		errs = append(errs, fmt.Errorf("prefix, error_output_prefix, file_extension: %w", err))
	} else {
		// Evaluate both with sample values to catch what escapes the
		// output directory (an absolute prefix, "..", hidden names).
		v := prefix.Values{Time: time.Date(2019, 10, 1, 9, 20, 18, 0, time.UTC), Keys: sampleKeys(spec)}
		if k, err := spec.Key(v); err == nil {
			if err := validateKeyPrefix(k); err != nil {
				errs = append(errs, fmt.Errorf("prefix: %q: %w", o.Prefix, err))
			}
		}
		if k, err := spec.ErrorKey(format.DefaultOutputType, v); err == nil {
			if err := validateKeyPrefix(k); err != nil {
				errs = append(errs, fmt.Errorf("error_output_prefix: %q: %w", errPrefix, err))
			}
		}
		if o.Prefix != "" && !strings.Contains(o.Prefix, "!{") && o.Prefix == errPrefix {
			errs = append(errs, fmt.Errorf("error_output_prefix: must differ from prefix %q", o.Prefix))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return spec, nil
}

func sampleKeys(s *prefix.Spec) map[string]string {
	m := map[string]string{}
	for _, k := range s.PartitionKeys() {
		m[k] = "k"
	}
	return m
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

// validateKeyPrefix accepts an evaluated, relative, slash-separated key
// prefix that stays inside the output directory.
func validateKeyPrefix(p string) error {
	switch {
	case strings.HasPrefix(p, "/"):
		return errors.New("must be relative")
	case strings.ContainsAny(p, "\\\x00"):
		return errors.New("backslash and NUL are not allowed")
	}
	for _, el := range strings.Split(p, "/") {
		if el == "." || el == ".." {
			return fmt.Errorf("%q path elements are not allowed", el)
		}
	}
	// Names starting with '.' would look like our temporary files.
	if strings.HasPrefix(p, ".") || strings.Contains(p, "/.") {
		return errors.New("names must not start with '.'")
	}
	return nil
}
