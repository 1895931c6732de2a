package kinesis

import (
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluice-dev/sluice/pipeline"
)

// Records turns a page of shard's records into pipeline records carrying
// their metadata (the pipeline.Meta* keys of kinesisRecordMetadata and the
// stream's ARN), appended to dst. Data aliases the SDK's: the buffer
// copies it on append.
func Records(dst []pipeline.Record, streamARN, shard string, page []types.Record) []pipeline.Record {
	for _, r := range page {
		meta := map[string]string{
			pipeline.MetaShardID:        shard,
			pipeline.MetaPartitionKey:   aws.ToString(r.PartitionKey),
			pipeline.MetaSequenceNumber: aws.ToString(r.SequenceNumber),
		}
		if r.ApproximateArrivalTimestamp != nil {
			meta[pipeline.MetaApproximateArrival] = strconv.FormatInt(r.ApproximateArrivalTimestamp.UnixMilli(), 10)
		}
		if streamARN != "" {
			meta[pipeline.MetaSourceKinesisStreamARN] = streamARN
		}
		dst = append(dst, pipeline.Record{Data: r.Data, Meta: meta})
	}
	return dst
}
