package decompress

import (
	"errors"

	"github.com/sluice-dev/sluice/pipeline"
)

// Limits and defaults of Options.
const (
	// FormatGZIP is the only CompressionFormat of Firehose's Decompression
	// processor (CloudWatch Logs subscription payloads are gzip).
	FormatGZIP = "GZIP"
	// DefaultMaxDecompressedBytes bounds one record's decompressed size
	// (a Sluice safeguard against gzip bombs; Firehose documents none).
	DefaultMaxDecompressedBytes = 10 << 20
	// maxMaxDecompressedBytes keeps the bound sane.
	maxMaxDecompressedBytes = 1 << 30
)

// Options configure a decompression processor. The YAML keys are the
// processor block's keys in a stream's configuration.
type Options struct {
	// CompressionFormat is Firehose's CompressionFormat parameter; only
	// GZIP (the default) exists.
	CompressionFormat string `yaml:"compression_format"`
	// CloudWatchLogs configures Firehose's CloudWatchLogProcessing.
	CloudWatchLogs CloudWatchLogsOptions `yaml:"cloudwatch_logs"`
	// MaxDecompressedBytes is the largest decompressed size of one record,
	// in bytes; a record that inflates beyond fails. Default
	// DefaultMaxDecompressedBytes (10 MiB). (Sluice extension.)
	MaxDecompressedBytes int `yaml:"max_decompressed_bytes"`
}

// CloudWatchLogsOptions is Firehose's CloudWatchLogProcessing processor.
type CloudWatchLogsOptions struct {
	// DataMessageExtraction is Firehose's DataMessageExtraction: each log
	// event's message of a decompressed CloudWatch Logs payload becomes a
	// record of its own, and the envelope (owner, logGroup, …) is dropped.
	DataMessageExtraction bool `yaml:"data_message_extraction"`
}

// DefaultOptions returns the defaults a configuration block is decoded onto.
func DefaultOptions() Options {
	return Options{CompressionFormat: FormatGZIP, MaxDecompressedBytes: DefaultMaxDecompressedBytes}
}

// Compiled is options that passed Compile, in the form the processor
// uses.
type Compiled struct {
	max     int
	extract bool
}

// Validate reports every problem with the options at once (Compile
// without its result).
func (o Options) Validate() error {
	_, err := o.Compile()
	return err
}

// Compile validates the options, reporting every problem at once, each a
// *pipeline.OptionError at its key, and returns them compiled for New.
func (o Options) Compile() (Compiled, error) {
	var errs []error
	if o.CompressionFormat != FormatGZIP {
		errs = append(errs, pipeline.OptionErrorf("compression_format", "%q is not supported; the only format is %s", o.CompressionFormat, FormatGZIP))
	}
	if o.MaxDecompressedBytes <= 0 || o.MaxDecompressedBytes > maxMaxDecompressedBytes {
		errs = append(errs, pipeline.OptionErrorf("max_decompressed_bytes", "%d is not between 1 and %d", o.MaxDecompressedBytes, maxMaxDecompressedBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return Compiled{}, err
	}
	return Compiled{max: o.MaxDecompressedBytes, extract: o.CloudWatchLogs.DataMessageExtraction}, nil
}
