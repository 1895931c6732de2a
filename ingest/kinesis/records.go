package kinesis

import (
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluice-dev/sluice/pipeline"
)

// Keys of pipeline.Record.Meta on records read from a Kinesis data stream:
// the members of Firehose's kinesisRecordMetadata that transforms receive
// (transform/wasm), and the stream's ARN (transform/wasm's
// MetaSourceKinesisStreamARN); KPL de-aggregation adds the sub-record's
// keys (transform/deaggregate).
const (
	MetaShardID             = "shardId"
	MetaPartitionKey        = "partitionKey"
	MetaSequenceNumber      = "sequenceNumber"
	MetaApproximateArrival  = "approximateArrivalTimestamp" // Unix epoch milliseconds
	MetaSourceKinesisStream = "sourceKinesisStreamArn"
)

// Records turns a page of shard's records into pipeline records carrying
// their metadata, appended to dst. Data aliases the SDK's: the buffer
// copies it on append.
func Records(dst []pipeline.Record, streamARN, shard string, page []types.Record) []pipeline.Record {
	for _, r := range page {
		meta := map[string]string{
			MetaShardID:        shard,
			MetaPartitionKey:   aws.ToString(r.PartitionKey),
			MetaSequenceNumber: aws.ToString(r.SequenceNumber),
		}
		if r.ApproximateArrivalTimestamp != nil {
			meta[MetaApproximateArrival] = strconv.FormatInt(r.ApproximateArrivalTimestamp.UnixMilli(), 10)
		}
		if streamARN != "" {
			meta[MetaSourceKinesisStream] = streamARN
		}
		dst = append(dst, pipeline.Record{Data: r.Data, Meta: meta})
	}
	return dst
}
