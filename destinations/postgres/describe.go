package postgres

import (
	"strings"

	"github.com/sluice-dev/sluice/pipeline"
)

// DescriptionKey is the member of Firehose's DestinationDescription the
// destination fills: Firehose has no Postgres destination, and its
// Redshift one is the same COPY-into-a-table shape (its ClusterJDBCURL
// pattern admits jdbc:postgresql:), so tools that read Redshift
// descriptions read this one.
const DescriptionKey = "RedshiftDestinationDescription"

type (
	description struct {
		ClusterJDBCURL           string        `json:"ClusterJDBCURL"`
		CopyCommand              copyCommand   `json:"CopyCommand"`
		Username                 string        `json:"Username,omitempty"`
		RetryOptions             retryOptions  `json:"RetryOptions"`
		RoleARN                  string        `json:"RoleARN,omitempty"`
		S3BackupMode             string        `json:"S3BackupMode,omitempty"`
		S3BackupDescription      any           `json:"S3BackupDescription,omitempty"`
		S3DestinationDescription any           `json:"S3DestinationDescription,omitempty"`
		CloudWatchLoggingOptions cloudWatchOff `json:"CloudWatchLoggingOptions"`
	}
	copyCommand struct {
		DataTableName    string `json:"DataTableName"`
		DataTableColumns string `json:"DataTableColumns,omitempty"`
		CopyOptions      string `json:"CopyOptions,omitempty"`
	}
	retryOptions struct {
		DurationInSeconds int `json:"DurationInSeconds"`
	}
	cloudWatchOff struct {
		Enabled bool `json:"Enabled"`
	}
)

// Describe returns a RedshiftDestinationDescription: the server as a
// jdbc:postgresql: URL and user (never the password), the table and its
// columns, the retry duration, and the error output as the backup.
func (d *Destination) Describe(in pipeline.DescribeInput) pipeline.Description {
	endpoint, user := d.cfg.conn.Endpoint()
	url := ""
	if endpoint != "" {
		url = "jdbc:postgresql://" + endpoint
	}
	return pipeline.Description{DescriptionKey: description{
		ClusterJDBCURL:           url,
		CopyCommand:              copyCommand{DataTableName: d.cfg.table.Sanitize(), DataTableColumns: strings.Join(d.cfg.columns, ",")},
		Username:                 user,
		RetryOptions:             retryOptions{DurationInSeconds: in.RetryDurationSeconds},
		RoleARN:                  in.RoleARN,
		S3BackupMode:             in.BackupMode,
		S3BackupDescription:      in.Backup,
		S3DestinationDescription: in.Backup,
	}}
}
