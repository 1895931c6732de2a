package firehoseapi

import (
	"encoding/json"
	"strconv"
)

// DescribeDeliveryStream, built from the configuration.

const destinationID = "destinationId-000000000001"

type bufferingHints struct {
	SizeInMBs         int
	IntervalInSeconds int
}

type encryptionConfig struct {
	NoEncryptionConfig string
}

type loggingOptions struct {
	Enabled bool
}

// s3Description is the plain S3DestinationDescription.
type s3Description struct {
	RoleARN                  string
	BucketARN                string
	Prefix                   string `json:",omitempty"`
	ErrorOutputPrefix        string `json:",omitempty"`
	BufferingHints           bufferingHints
	CompressionFormat        string
	EncryptionConfiguration  encryptionConfig
	CloudWatchLoggingOptions loggingOptions
}

// extendedS3Description is the ExtendedS3DestinationDescription.
type extendedS3Description struct {
	s3Description
	S3BackupMode string
}

type destinationDescription struct {
	DestinationID                    string                 `json:"DestinationId"`
	ExtendedS3DestinationDescription *extendedS3Description `json:",omitempty"`
	S3DestinationDescription         *s3Description         `json:",omitempty"`
}

type kinesisSource struct {
	KinesisStreamARN string
	RoleARN          string
}

type sourceDescription struct {
	DirectPutSourceDescription     *struct{}      `json:",omitempty"`
	KinesisStreamSourceDescription *kinesisSource `json:",omitempty"`
}

type deliveryStreamDescription struct {
	DeliveryStreamName                    string
	DeliveryStreamARN                     string
	DeliveryStreamStatus                  string
	DeliveryStreamType                    string
	VersionId                             string //nolint:revive // AWS member name
	CreateTimestamp                       json.Number
	DeliveryStreamEncryptionConfiguration struct{ Status string }
	Source                                sourceDescription
	Destinations                          []destinationDescription
	HasMoreDestinations                   bool
}

func (h *Handler) describeDeliveryStream(body []byte) (any, *apiError) {
	var in struct {
		DeliveryStreamName          *string
		Limit                       *int
		ExclusiveStartDestinationId *string //nolint:revive // AWS member name
	}
	if e := unmarshalInput(body, &in); e != nil {
		return nil, e
	}
	var v validation
	v.checkLimit(in.Limit, 1, 10000)
	s, e := h.findStream(in.DeliveryStreamName, &v)
	if e != nil {
		return nil, e
	}
	d := deliveryStreamDescription{
		DeliveryStreamName:   s.info.Name,
		DeliveryStreamARN:    s.arn,
		DeliveryStreamStatus: "ACTIVE",
		DeliveryStreamType:   s.info.Type,
		VersionId:            s.info.VersionID,
		CreateTimestamp:      epochSeconds(s.info.Created.UnixMilli()),
		Destinations:         []destinationDescription{},
	}
	d.DeliveryStreamEncryptionConfiguration.Status = "DISABLED"
	if s.info.Type == TypeKinesisStreamAsSource {
		d.Source.KinesisStreamSourceDescription = &kinesisSource{
			KinesisStreamARN: s.info.KinesisStreamARN,
			RoleARN:          h.roleARN(s),
		}
	} else {
		d.Source.DirectPutSourceDescription = &struct{}{}
	}
	// The only destination id is destinationId-000000000001: starting after
	// it (or at anything sorting after it) yields none.
	if in.ExclusiveStartDestinationId == nil || *in.ExclusiveStartDestinationId < destinationID {
		d.Destinations = append(d.Destinations, h.destination(s))
	}
	return struct{ DeliveryStreamDescription deliveryStreamDescription }{d}, nil
}

// epochSeconds renders milliseconds since the epoch as fractional seconds.
func epochSeconds(ms int64) json.Number {
	return json.Number(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64))
}

func (h *Handler) roleARN(s *stream) string {
	return cmp(s.info.Destination.RoleARN, "arn:aws:iam::"+h.account+":role/sluice")
}

// destination describes the stream's destination. Object stores (file, s3)
// are described like an Extended S3 destination: with both
// ExtendedS3DestinationDescription and its S3DestinationDescription copy,
// as the real service does. Other kinds only carry the DestinationId.
func (h *Handler) destination(s *stream) destinationDescription {
	dd := destinationDescription{DestinationID: destinationID}
	di := s.info.Destination
	switch di.Kind {
	case "file", "s3", "":
	default:
		return dd
	}
	size := di.BufferingSizeMiB
	if size <= 0 {
		size = 5
	}
	interval := di.BufferingIntervalSeconds
	if interval < 0 || (interval == 0 && di.BufferingSizeMiB == 0) {
		interval = 300
	}
	base := s3Description{
		RoleARN:                  h.roleARN(s),
		BucketARN:                cmp(di.BucketARN, "arn:aws:s3:::"+s.info.Name),
		Prefix:                   di.Prefix,
		ErrorOutputPrefix:        di.ErrorOutputPrefix,
		BufferingHints:           bufferingHints{SizeInMBs: size, IntervalInSeconds: interval},
		CompressionFormat:        cmp(di.Compression, "UNCOMPRESSED"),
		EncryptionConfiguration:  encryptionConfig{NoEncryptionConfig: "NoEncryption"},
		CloudWatchLoggingOptions: loggingOptions{Enabled: false},
	}
	plain := base
	dd.ExtendedS3DestinationDescription = &extendedS3Description{s3Description: base, S3BackupMode: "Disabled"}
	dd.S3DestinationDescription = &plain
	return dd
}
