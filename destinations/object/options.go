package object

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/destinations/format/compress"
	"github.com/sluice-dev/sluice/destinations/format/jsonl"
	"github.com/sluice-dev/sluice/destinations/format/parquet"
	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/pipeline"
)

// Defaults of the options.
const (
	DefaultErrorOutputPrefix   = "errors/"
	DefaultMaxActivePartitions = prefix.DefaultMaxActivePartitions
	DefaultConcurrentObjects   = 4
	MaxConcurrentObjects       = 64
)

// Format types accepted in FormatOptions.Type.
const (
	FormatJSON    = "json"
	FormatParquet = "parquet"
)

// Options are the options every object destination shares (Firehose's
// ExtendedS3DestinationConfiguration without the bucket). Destinations
// embed them in their own options with `yaml:",inline"`; the YAML keys are
// the keys of the destination's block. The zero value is valid: JSON,
// uncompressed, records concatenated, the default prefixes and limits.
type Options struct {
	// Prefix of data objects: literal text and Firehose expressions
	// (package destinations/format/prefix: !{timestamp:...},
	// !{firehose:random-string}, !{partitionKeyFromQuery:k},
	// !{partitionKeyFromLambda:k}). Without a timestamp expression
	// yyyy/MM/dd/HH/ is appended directly, without a slash, as in Firehose:
	// prefix "logs" yields "logs2019/10/01/09/...". Partition keys turn on
	// dynamic partitioning.
	Prefix string `yaml:"prefix"`
	// ErrorOutputPrefix is Firehose's ErrorOutputPrefix: where dead letters
	// go, in the same store. A plain one gets <output-type>/yyyy/MM/dd/HH/
	// appended; with expressions it must contain
	// !{firehose:error-output-type}, and a Prefix with expressions requires
	// such an ErrorOutputPrefix. Empty means DefaultErrorOutputPrefix.
	ErrorOutputPrefix string `yaml:"error_output_prefix"`
	// Compression is UNCOMPRESSED (default), GZIP, ZIP, Snappy,
	// HADOOP_SNAPPY or ZSTD (case-insensitive; package format/compress).
	Compression string `yaml:"compression"`
	// AppendNewline writes '\n' after every record (Firehose's
	// AppendDelimiterToRecord). Firehose concatenates records byte for
	// byte unless told otherwise, so the default is false. JSON format only.
	AppendNewline bool `yaml:"append_newline"`
	// Format selects how records are encoded.
	Format FormatOptions `yaml:"format"`
	// CustomTimeZone is the IANA zone of the time prefix, the timestamp
	// expressions and the time in object names (Firehose's
	// CustomTimeZone), e.g. "Asia/Tokyo". Default UTC.
	CustomTimeZone string `yaml:"custom_time_zone"`
	// FileExtension replaces the default extension of data objects (the
	// codec's, or ".parquet"), e.g. ".json.gz". Firehose's pattern:
	// \.[0-9a-z!\-_.*'()]+.
	FileExtension string `yaml:"file_extension"`
	// MaxActivePartitions bounds the distinct partitions of one batch
	// (Firehose's active-partition quota); records of further partitions
	// are dead-lettered as activePartitionExceeded. 0 means
	// DefaultMaxActivePartitions (500, Firehose's default).
	MaxActivePartitions int `yaml:"max_active_partitions"`
	// MaxConcurrentObjects is the number of objects (partitions of a
	// batch) written at once: with dynamic partitioning a batch becomes
	// many small objects, and one round trip each in sequence would cap
	// throughput at the store's latency. 0 means DefaultConcurrentObjects.
	MaxConcurrentObjects int `yaml:"max_concurrent_objects"`
}

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

// DefaultOptions returns the defaults a configuration block is decoded
// onto (the zero value means the same; these spell them out).
func DefaultOptions() Options {
	return Options{
		ErrorOutputPrefix:    DefaultErrorOutputPrefix,
		Compression:          compress.Uncompressed,
		Format:               FormatOptions{Type: FormatJSON},
		MaxActivePartitions:  DefaultMaxActivePartitions,
		MaxConcurrentObjects: DefaultConcurrentObjects,
	}
}

// KeyRule is a store's own restriction on evaluated prefixes, on top of
// Firehose's rules (e.g. a local directory's keys must stay inside it).
// Compile checks the prefixes evaluated with sample values; the Writer
// checks each partition's prefix and dead-letters the records of a
// partition that breaks it as partitioning-failed with Code.
type KeyRule struct {
	Check func(evaluatedPrefix string) error
	Code  string
}

// Config is a compiled, valid Options: parsed prefixes, the format and the
// limits. It is immutable; one Config may serve several writers.
type Config struct {
	spec        *prefix.Spec
	format      format.Format
	compression string // Firehose's CompressionFormat
	prefix      string
	errorPrefix string
	maxActive   int
	objects     int
	rule        KeyRule
}

// Compile checks o and compiles it; rule is the store's key rule (zero:
// none). It does no I/O. Every problem is reported at once, each as a
// *pipeline.OptionError keyed by the option's YAML key (nested keys
// dotted: "format.parquet.columns[2].type"), joined with errors.Join.
func Compile(o Options, rule KeyRule) (*Config, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	c := &Config{prefix: o.Prefix, errorPrefix: o.ErrorOutputPrefix, rule: rule,
		maxActive: o.MaxActivePartitions, objects: o.MaxConcurrentObjects}
	if c.errorPrefix == "" {
		c.errorPrefix = DefaultErrorOutputPrefix
	}
	switch {
	case c.maxActive < 0:
		bad("max_active_partitions", "%d is negative", c.maxActive)
	case c.maxActive == 0:
		c.maxActive = DefaultMaxActivePartitions
	}
	switch {
	case c.objects < 0 || c.objects > MaxConcurrentObjects:
		bad("max_concurrent_objects", "%d, must be between 1 and %d", c.objects, MaxConcurrentObjects)
	case c.objects == 0:
		c.objects = DefaultConcurrentObjects
	}

	codec, err := compress.Parse(o.Compression)
	if err != nil {
		bad("compression", "%v", err)
	}
	ext := ""
	switch strings.ToLower(o.Format.Type) {
	case "", FormatJSON:
		if o.Format.Parquet != nil {
			bad("format.parquet", "only with format.type parquet")
		}
		if codec != nil {
			delim := ""
			if o.AppendNewline {
				delim = "\n"
			}
			c.format = jsonl.New(codec, delim)
			c.compression = codec.Name()
			ext = codec.Ext()
		}
	case FormatParquet:
		ext = ".parquet"
		c.compression = compress.Uncompressed
		if codec != nil && codec.Name() != compress.Uncompressed {
			bad("compression", "%s with format.type parquet: Parquet compresses its own pages (format.parquet.compression), the object compression must be UNCOMPRESSED", codec.Name())
		}
		if o.AppendNewline {
			bad("append_newline", "only with format.type json")
		}
		if o.Format.Parquet == nil {
			bad("format.parquet", "required with format.type parquet (the schema's columns)")
		} else if f, err := parquet.New(*o.Format.Parquet); err != nil {
			errs = append(errs, pipeline.NestOptionErrors("format.parquet", err))
		} else {
			c.format = f
		}
	default:
		bad("format.type", "%q is not one of %s, %s", o.Format.Type, FormatJSON, FormatParquet)
	}
	if o.FileExtension != "" {
		ext = o.FileExtension
	}

	loc, err := prefix.LoadTimeZone(o.CustomTimeZone)
	if err != nil {
		bad("custom_time_zone", "%v", err)
		loc = time.UTC // to report the other problems too
	}
	dynamic := strings.Contains(o.Prefix, "!{partitionKeyFrom")
	spec, err := prefix.Parse(o.Prefix, c.errorPrefix, prefix.Options{DynamicPartitioning: dynamic, TimeZone: loc, FileExtension: ext})
	if err != nil {
		hint := ""
		if o.ErrorOutputPrefix == "" && strings.Contains(o.Prefix, "!{") {
			hint = fmt.Sprintf(" (error_output_prefix defaults to %q; with expressions in prefix set one such as \"errors/!{firehose:error-output-type}/\")", DefaultErrorOutputPrefix)
		}
		errs = append(errs, violations(err, hint)...)
	} else {
		c.spec = spec
		errs = append(errs, c.checkSamples(o)...)
	}
	if o.Prefix != "" && !strings.Contains(o.Prefix, "!{") && o.Prefix == c.errorPrefix {
		bad("error_output_prefix", "must differ from prefix %q", o.Prefix)
	}
	if err := JoinErrors(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// violations keys the errors of prefix.Parse by the option they concern.
func violations(err error, hint string) []error {
	var out []error
	for _, e := range flatten(err) {
		key := "prefix"
		var v *prefix.Violation
		if errors.As(e, &v) {
			switch v.Field {
			case "ErrorOutputPrefix":
				key = "error_output_prefix"
			case "FileExtension":
				key = "file_extension"
			}
			e = keyedViolation{v}
		}
		if hint != "" && key == "error_output_prefix" {
			e = fmt.Errorf("%w%s", e, hint)
		}
		out = append(out, &pipeline.OptionError{Key: key, Err: e})
	}
	return out
}

// keyedViolation is a prefix.Violation reported at its option's key: the
// message leaves out the field name the key already gives.
type keyedViolation struct{ v *prefix.Violation }

func (k keyedViolation) Error() string { return strings.TrimPrefix(k.v.Error(), k.v.Field+": ") }
func (k keyedViolation) Unwrap() error { return k.v }

// checkSamples evaluates both prefixes with sample values and checks them
// against the store's key rule, to catch what the store cannot hold (an
// absolute prefix, "..", hidden names) at load time.
func (c *Config) checkSamples(o Options) []error {
	if c.rule.Check == nil {
		return nil
	}
	keys := map[string]string{}
	for _, k := range c.spec.PartitionKeys() {
		keys[k] = "k"
	}
	v := prefix.Values{Time: time.Date(2019, 10, 1, 9, 20, 18, 0, time.UTC), Keys: keys}
	var errs []error
	if k, err := c.spec.Key(v); err == nil {
		if err := c.rule.Check(k); err != nil {
			errs = append(errs, pipeline.OptionErrorf("prefix", "%q: %v", o.Prefix, err))
		}
	}
	if k, err := c.spec.ErrorKey(pipeline.OutputDeliveryFailed, v); err == nil {
		if err := c.rule.Check(k); err != nil {
			errs = append(errs, pipeline.OptionErrorf("error_output_prefix", "%q: %v", c.errorPrefix, err))
		}
	}
	return errs
}

// JoinErrors is errors.Join with the joined errors among errs flattened,
// so that every problem is one element of the result's Unwrap() []error
// (Compile's result can be joined with a destination's own problems).
func JoinErrors(errs ...error) error {
	var flat []error
	for _, e := range errs {
		flat = append(flat, flatten(e)...)
	}
	return errors.Join(flat...)
}

// flatten lists the errors joined in err (recursively).
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Prefix and ErrorOutputPrefix return the prefixes as configured (the
// error prefix with its default applied), for descriptions.
func (c *Config) Prefix() string            { return c.prefix }
func (c *Config) ErrorOutputPrefix() string { return c.errorPrefix }

// CompressionFormat is Firehose's CompressionFormat of the data objects
// (UNCOMPRESSED for Parquet, whose pages are compressed inside the file).
func (c *Config) CompressionFormat() string { return c.compression }

// PartitionKeys are the partition keys the prefix reads, by their full
// expression names ("partitionKeyFromQuery:k", "partitionKeyFromLambda:k"),
// so the assembler can check that a processor sets each.
func (c *Config) PartitionKeys() []string { return c.spec.PartitionKeys() }
