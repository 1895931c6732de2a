package object

import "github.com/sluice-dev/sluice/pipeline"

// Firehose's DescribeDeliveryStream members of an object destination, as
// the real service shows an Extended S3 destination: the
// ExtendedS3DestinationDescription and its S3DestinationDescription copy.

// BufferingHints is Firehose's BufferingHints.
type BufferingHints struct {
	SizeInMBs         int
	IntervalInSeconds int
}

// EncryptionConfiguration is Firehose's EncryptionConfiguration.
type EncryptionConfiguration struct {
	NoEncryptionConfig string
}

// CloudWatchLoggingOptions is Firehose's CloudWatchLoggingOptions.
type CloudWatchLoggingOptions struct {
	Enabled bool
}

// S3DestinationDescription is Firehose's S3DestinationDescription.
type S3DestinationDescription struct {
	RoleARN                  string
	BucketARN                string
	Prefix                   string `json:",omitempty"`
	ErrorOutputPrefix        string `json:",omitempty"`
	BufferingHints           BufferingHints
	CompressionFormat        string
	EncryptionConfiguration  EncryptionConfiguration
	CloudWatchLoggingOptions CloudWatchLoggingOptions
}

// ExtendedS3DestinationDescription is Firehose's
// ExtendedS3DestinationDescription (the members Sluice shows).
type ExtendedS3DestinationDescription struct {
	S3DestinationDescription
	S3BackupMode string
}

// Firehose's defaults when a stream's buffering hints are not set.
const (
	defaultBufferingSizeMiB     = 5
	defaultBufferingIntervalSec = 300
)

// Describe returns the ExtendedS3DestinationDescription and the
// S3DestinationDescription of the writer as the destination of in's
// stream (S3BackupMode "Disabled": the writer is its own error output).
func (w *Writer) Describe(in pipeline.DescribeInput) pipeline.Description {
	plain := w.S3DestinationDescription(in)
	return pipeline.Description{
		"ExtendedS3DestinationDescription": ExtendedS3DestinationDescription{S3DestinationDescription: plain, S3BackupMode: "Disabled"},
		"S3DestinationDescription":         plain,
	}
}

// S3DestinationDescription describes the writer alone, e.g. as the error
// output (S3 backup) of another destination, which Firehose shows inside
// that destination's description (HttpEndpointDestinationDescription's
// S3DestinationDescription).
func (w *Writer) S3DestinationDescription(in pipeline.DescribeInput) S3DestinationDescription {
	size := in.BufferingSizeMiB
	if size <= 0 {
		size = defaultBufferingSizeMiB
	}
	interval := in.BufferingIntervalSeconds
	if interval < 0 || (interval == 0 && in.BufferingSizeMiB == 0) {
		interval = defaultBufferingIntervalSec
	}
	return S3DestinationDescription{
		RoleARN:                  in.RoleARN,
		BucketARN:                w.loc.BucketARN,
		Prefix:                   w.cfg.prefix,
		ErrorOutputPrefix:        w.cfg.errorPrefix,
		BufferingHints:           BufferingHints{SizeInMBs: size, IntervalInSeconds: interval},
		CompressionFormat:        w.cfg.compression,
		EncryptionConfiguration:  EncryptionConfiguration{NoEncryptionConfig: "NoEncryption"},
		CloudWatchLoggingOptions: CloudWatchLoggingOptions{Enabled: false},
	}
}
