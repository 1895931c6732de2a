package decompress

import (
	"errors"
	"fmt"
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

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var errs []error
	if o.CompressionFormat != FormatGZIP {
		errs = append(errs, fmt.Errorf("compression_format: %q is not supported; the only format is %s", o.CompressionFormat, FormatGZIP))
	}
	if o.MaxDecompressedBytes <= 0 || o.MaxDecompressedBytes > maxMaxDecompressedBytes {
		errs = append(errs, fmt.Errorf("max_decompressed_bytes: %d is not between 1 and %d", o.MaxDecompressedBytes, maxMaxDecompressedBytes))
	}
	return errors.Join(errs...)
}
