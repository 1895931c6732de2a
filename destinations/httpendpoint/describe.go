package httpendpoint

import "github.com/sluice-dev/sluice/pipeline"

// Description members, named as in Firehose's
// HttpEndpointDestinationDescription (DescribeDeliveryStream).
type (
	description struct {
		EndpointConfiguration    endpointDescription  `json:"EndpointConfiguration"`
		BufferingHints           bufferingHints       `json:"BufferingHints"`
		CloudWatchLoggingOptions cloudWatchLogging    `json:"CloudWatchLoggingOptions"`
		RequestConfiguration     requestConfiguration `json:"RequestConfiguration"`
		RoleARN                  string               `json:"RoleARN,omitempty"`
		RetryOptions             retryOptions         `json:"RetryOptions"`
		S3BackupMode             string               `json:"S3BackupMode,omitempty"`
		S3DestinationDescription any                  `json:"S3DestinationDescription,omitempty"`
	}
	endpointDescription struct {
		URL  string `json:"Url"`
		Name string `json:"Name,omitempty"`
	}
	bufferingHints struct {
		SizeInMBs         int `json:"SizeInMBs"`
		IntervalInSeconds int `json:"IntervalInSeconds"`
	}
	cloudWatchLogging struct {
		Enabled bool `json:"Enabled"`
	}
	requestConfiguration struct {
		ContentEncoding  string      `json:"ContentEncoding"`
		CommonAttributes []attribute `json:"CommonAttributes,omitempty"`
	}
	retryOptions struct {
		DurationInSeconds int `json:"DurationInSeconds"`
	}
)

// DescriptionKey is the member of Firehose's DestinationDescription the
// destination fills.
const DescriptionKey = "HttpEndpointDestinationDescription"

// Describe returns Firehose's HttpEndpointDestinationDescription: the URL
// and name (never the access key), the stream's buffering hints and retry
// duration, the request configuration, and the error output as
// S3BackupMode and S3DestinationDescription.
func (d *Destination) Describe(in pipeline.DescribeInput) pipeline.Description {
	return pipeline.Description{DescriptionKey: description{
		EndpointConfiguration:    endpointDescription{URL: d.cfg.url, Name: d.cfg.name},
		BufferingHints:           bufferingHints{SizeInMBs: in.BufferingSizeMiB, IntervalInSeconds: in.BufferingIntervalSeconds},
		RequestConfiguration:     requestConfiguration{ContentEncoding: d.cfg.encoding(), CommonAttributes: d.cfg.attrs},
		RoleARN:                  in.RoleARN,
		RetryOptions:             retryOptions{DurationInSeconds: in.RetryDurationSeconds},
		S3BackupMode:             in.BackupMode,
		S3DestinationDescription: in.Backup,
	}}
}
