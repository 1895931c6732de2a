package elasticsearch

import "github.com/sluice-dev/sluice/pipeline"

// DescriptionKey is the member of Firehose's DestinationDescription the
// destination fills.
const DescriptionKey = "AmazonopensearchserviceDestinationDescription"

type (
	description struct {
		ClusterEndpoint          string            `json:"ClusterEndpoint"`
		IndexName                string            `json:"IndexName"`
		TypeName                 string            `json:"TypeName,omitempty"`
		IndexRotationPeriod      string            `json:"IndexRotationPeriod"`
		BufferingHints           bufferingHints    `json:"BufferingHints"`
		RetryOptions             retryOptions      `json:"RetryOptions"`
		S3BackupMode             string            `json:"S3BackupMode"`
		S3DestinationDescription any               `json:"S3DestinationDescription,omitempty"`
		DocumentIdOptions        documentIDOptions `json:"DocumentIdOptions"`
		RoleARN                  string            `json:"RoleARN,omitempty"`
		CloudWatchLoggingOptions cloudWatch        `json:"CloudWatchLoggingOptions"`
	}
	bufferingHints struct {
		SizeInMBs         int `json:"SizeInMBs"`
		IntervalInSeconds int `json:"IntervalInSeconds"`
	}
	retryOptions struct {
		DurationInSeconds int `json:"DurationInSeconds"`
	}
	documentIDOptions struct {
		DefaultDocumentIdFormat string `json:"DefaultDocumentIdFormat"`
	}
	cloudWatch struct {
		Enabled bool `json:"Enabled"`
	}
)

// Describe returns Firehose's AmazonopensearchserviceDestinationDescription
// (the first address as ClusterEndpoint; never a credential). Firehose's
// S3BackupMode here is FailedDocumentsOnly or AllDocuments.
func (d *Destination) Describe(in pipeline.DescribeInput) pipeline.Description {
	mode := "FailedDocumentsOnly"
	if in.BackupMode == pipeline.BackupAllData {
		mode = "AllDocuments"
	}
	idFormat := DocumentIDNone
	if d.cfg.firehoseIDs {
		idFormat = DocumentIDFirehose
	}
	return pipeline.Description{DescriptionKey: description{
		ClusterEndpoint:          d.cfg.addresses[0],
		IndexName:                d.cfg.index,
		TypeName:                 d.cfg.typeName,
		IndexRotationPeriod:      d.cfg.rotation,
		BufferingHints:           bufferingHints{SizeInMBs: in.BufferingSizeMiB, IntervalInSeconds: in.BufferingIntervalSeconds},
		RetryOptions:             retryOptions{DurationInSeconds: in.RetryDurationSeconds},
		S3BackupMode:             mode,
		S3DestinationDescription: in.Backup,
		DocumentIdOptions:        documentIDOptions{DefaultDocumentIdFormat: idFormat},
		RoleARN:                  in.RoleARN,
	}}
}
