package kinesis

import (
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestRecordsMeta: Firehose's kinesisRecordMetadata names, by value.
func TestRecordsMeta(t *testing.T) {
	at := time.UnixMilli(1764660000123)
	recs := Records(nil, "arn:aws:kinesis:us-east-1:123456789012:stream/clicks", "shardId-000000000001", []types.Record{
		{Data: []byte("a"), PartitionKey: aws.String("k1"), SequenceNumber: aws.String("496"), ApproximateArrivalTimestamp: &at},
		{Data: []byte("b"), PartitionKey: aws.String("k2"), SequenceNumber: aws.String("497")},
	})
	want := map[string]string{"shardId": "shardId-000000000001", "partitionKey": "k1", "sequenceNumber": "496",
		"approximateArrivalTimestamp": "1764660000123", "sourceKinesisStreamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"}
	if len(recs) != 2 || string(recs[0].Data) != "a" || !maps.Equal(recs[0].Meta, want) {
		t.Fatalf("records %+v", recs)
	}
	if _, ok := recs[1].Meta["approximateArrivalTimestamp"]; ok || recs[1].Meta["sequenceNumber"] != "497" {
		t.Fatalf("record without arrival time: %+v", recs[1].Meta)
	}
}
