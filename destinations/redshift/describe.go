package redshift

import (
	"strings"

	"github.com/sluice-dev/sluice/destinations/format/compress"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/s3store"
	"github.com/sluice-dev/sluice/pipeline"
)

// DescriptionKey is the member of Firehose's DestinationDescription the
// destination fills.
const DescriptionKey = "RedshiftDestinationDescription"

// Firehose's buffering defaults, shown when the stream sets none.
const (
	defaultBufferingSizeMiB     = 5
	defaultBufferingIntervalSec = 300
)

type (
	// Description is Firehose's RedshiftDestinationDescription (the
	// members Sluice shows; never the password or access keys).
	Description struct {
		RoleARN                  string                          `json:"RoleARN,omitempty"`
		ClusterJDBCURL           string                          `json:"ClusterJDBCURL"`
		CopyCommand              CopyCommand                     `json:"CopyCommand"`
		Username                 string                          `json:"Username,omitempty"`
		RetryOptions             RetryOptions                    `json:"RetryOptions"`
		S3DestinationDescription object.S3DestinationDescription `json:"S3DestinationDescription"`
		S3BackupMode             string                          `json:"S3BackupMode"`
		S3BackupDescription      any                             `json:"S3BackupDescription,omitempty"`
		CloudWatchLoggingOptions object.CloudWatchLoggingOptions `json:"CloudWatchLoggingOptions"`
	}
	// CopyCommand is Firehose's CopyCommand.
	CopyCommand struct {
		DataTableName    string `json:"DataTableName"`
		DataTableColumns string `json:"DataTableColumns,omitempty"`
		CopyOptions      string `json:"CopyOptions,omitempty"`
	}
	// RetryOptions is Firehose's RedshiftRetryOptions.
	RetryOptions struct {
		DurationInSeconds int `json:"DurationInSeconds"`
	}
)

// Describe returns a RedshiftDestinationDescription: the cluster as a
// jdbc:redshift: URL and the user (never the password), the table, its
// columns and the COPY parameters after MANIFEST (the format, GZIP and
// copy_options: what Firehose's CopyOptions holds), the retry duration,
// the staging bucket, and the stream's error output as the S3 backup.
func (d *Destination) Describe(in pipeline.DescribeInput) pipeline.Description {
	endpoint, user := d.cfg.conn.Endpoint()
	url := ""
	if endpoint != "" {
		url = "jdbc:redshift://" + endpoint
	}
	size := in.BufferingSizeMiB
	if size <= 0 {
		size = defaultBufferingSizeMiB
	}
	interval := in.BufferingIntervalSeconds
	if interval < 0 || (interval == 0 && in.BufferingSizeMiB == 0) {
		interval = defaultBufferingIntervalSec
	}
	// Firehose's Redshift S3BackupMode is Enabled (every source record
	// is also written to the backup bucket: backup mode AllData) or
	// Disabled; the error output is shown as the backup either way.
	mode := "Disabled"
	if in.BackupMode == pipeline.BackupAllData {
		mode = "Enabled"
	}
	return pipeline.Description{DescriptionKey: Description{
		RoleARN:        in.RoleARN,
		ClusterJDBCURL: url,
		CopyCommand: CopyCommand{DataTableName: d.cfg.tableName, DataTableColumns: strings.Join(d.cfg.columns, ","),
			CopyOptions: d.cfg.loadOptions()},
		Username:     user,
		RetryOptions: RetryOptions{DurationInSeconds: in.RetryDurationSeconds},
		S3DestinationDescription: object.S3DestinationDescription{
			RoleARN:                  in.RoleARN,
			BucketARN:                s3store.BucketARN(d.cfg.store.Bucket),
			Prefix:                   d.cfg.prefix,
			BufferingHints:           object.BufferingHints{SizeInMBs: size, IntervalInSeconds: interval},
			CompressionFormat:        compress.GZIP,
			EncryptionConfiguration:  object.EncryptionConfiguration{NoEncryptionConfig: "NoEncryption"},
			CloudWatchLoggingOptions: object.CloudWatchLoggingOptions{Enabled: false},
		},
		S3BackupMode:        mode,
		S3BackupDescription: in.Backup,
	}}
}
