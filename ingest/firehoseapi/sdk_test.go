package firehoseapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/smithy-go"
)

// The same flows through the real aws-sdk-go-v2 Firehose client: SigV4
// signed with arbitrary credentials, any region, only the endpoint changed.

// authCounter records that requests arrive SigV4-signed.
type authCounter struct {
	next   http.Handler
	signed atomic.Int64
	region atomic.Value
}

func (a *authCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=") {
		a.signed.Add(1)
		a.region.Store(auth)
	}
	a.next.ServeHTTP(w, r)
}

func newSDKClient(t *testing.T, region string, maxAttempts int) (*env, *firehose.Client, *authCounter) {
	t.Helper()
	e := newEnv(t)
	ac := &authCounter{next: e.h}
	e.srv.Config.Handler = ac
	client := firehose.New(firehose.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "not-a-real-secret", "session-token"),
		HTTPClient:       e.srv.Client(),
		RetryMaxAttempts: maxAttempts,
	})
	return e, client, ac
}

func TestSDKPutAndControlPlane(t *testing.T) {
	e, c, ac := newSDKClient(t, "xx-imaginary-7", 1)
	ctx := context.Background()

	out, err := c.PutRecord(ctx, &firehose.PutRecordInput{
		DeliveryStreamName: aws.String("alpha"),
		Record:             &types.Record{Data: []byte("hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.RecordId) == "" || aws.ToBool(out.Encrypted) {
		t.Fatalf("PutRecord output %+v", out)
	}
	recs := make([]types.Record, 500)
	for i := range recs {
		recs[i].Data = bytes.Repeat([]byte{byte(i)}, i)
	}
	bout, err := c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("alpha"), Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(bout.FailedPutCount) != 0 || len(bout.RequestResponses) != 500 {
		t.Fatalf("PutRecordBatch: failed %d, %d responses", aws.ToInt32(bout.FailedPutCount), len(bout.RequestResponses))
	}
	stored := e.stored(t, "alpha")
	if len(stored) != 501 || string(stored[0].Data) != "hello" || stored[0].ID != aws.ToString(out.RecordId) {
		t.Fatalf("stored %d records", len(stored))
	}
	for i := range recs {
		if aws.ToString(bout.RequestResponses[i].RecordId) != stored[i+1].ID || !bytes.Equal(stored[i+1].Data, recs[i].Data) {
			t.Fatalf("record %d mismatch", i)
		}
	}
	if n := ac.signed.Load(); n != 2 {
		t.Fatalf("%d signed requests, want 2", n)
	}
	if auth := ac.region.Load().(string); !strings.Contains(auth, "/xx-imaginary-7/firehose/aws4_request") {
		t.Fatalf("unexpected scope: %s", auth)
	}

	list, err := c.ListDeliveryStreams(ctx, &firehose.ListDeliveryStreamsInput{Limit: aws.Int32(2), ExclusiveStartDeliveryStreamName: aws.String("alpha")})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(list.DeliveryStreamNames, ",") != "beta,broken" || !aws.ToBool(list.HasMoreDeliveryStreams) {
		t.Fatalf("list %+v", list)
	}
	desc, err := c.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("alpha")})
	if err != nil {
		t.Fatal(err)
	}
	d := desc.DeliveryStreamDescription
	if d.DeliveryStreamStatus != types.DeliveryStreamStatusActive || d.DeliveryStreamType != types.DeliveryStreamTypeDirectPut ||
		!d.CreateTimestamp.Equal(e.created) || aws.ToString(d.VersionId) != "3" || len(d.Destinations) != 1 ||
		d.DeliveryStreamEncryptionConfiguration.Status != types.DeliveryStreamEncryptionStatusDisabled {
		t.Fatalf("describe %+v", d)
	}
	x := d.Destinations[0].ExtendedS3DestinationDescription
	if x == nil || d.Destinations[0].S3DestinationDescription == nil || aws.ToInt32(x.BufferingHints.SizeInMBs) != 64 ||
		x.CompressionFormat != types.CompressionFormatGzip || x.EncryptionConfiguration.NoEncryptionConfig != types.NoEncryptionConfigNoEncryption {
		t.Fatalf("destination %+v", d.Destinations[0])
	}
	tags, err := c.ListTagsForDeliveryStream(ctx, &firehose.ListTagsForDeliveryStreamInput{DeliveryStreamName: aws.String("alpha"), Limit: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 2 || aws.ToString(tags.Tags[0].Key) != "cost" || !aws.ToBool(tags.HasMoreTags) {
		t.Fatalf("tags %+v", tags)
	}
}

func TestSDKErrors(t *testing.T) {
	e, c, _ := newSDKClient(t, "us-west-2", 3)
	ctx := context.Background()

	_, err := c.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("nosuch"), Record: &types.Record{Data: []byte("x")}})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) || rnf.ErrorMessage() != "Firehose nosuch under account 123456789012 not found." {
		t.Fatalf("unknown stream: %v", err)
	}
	_, err = c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("kin"), Records: []types.Record{{Data: []byte("x")}}})
	var ia *types.InvalidArgumentException
	if !errors.As(err, &ia) || !strings.Contains(ia.ErrorMessage(), "KinesisStreamAsSource") {
		t.Fatalf("kinesis stream: %v", err)
	}
	big := make([]types.Record, 5)
	for i := range big {
		big[i].Data = make([]byte, 1_000_000)
	}
	_, err = c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("alpha"), Records: big})
	if !errors.As(err, &ia) || ia.ErrorMessage() != "Records size exceeds 4 MB limit" {
		t.Fatalf("4 MiB: %v", err)
	}
	many := make([]types.Record, 501)
	for i := range many {
		many[i].Data = []byte("x")
	}
	_, err = c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("alpha"), Records: many})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" || !strings.Contains(api.ErrorMessage(), "less than or equal to 500") {
		t.Fatalf("501 records: %v", err)
	}
	_, err = c.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("alpha"), Record: &types.Record{Data: make([]byte, 1_024_001)}})
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" || !strings.Contains(api.ErrorMessage(), "'record.data'") {
		t.Fatalf("oversized record: %v", err)
	}
	e.wantStored(t, "alpha", 0)

	// Mutating calls: a modeled, non-retryable InvalidArgumentException
	// (the client is configured for 3 attempts; exactly one is made).
	_, err = c.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("new")})
	if !errors.As(err, &ia) {
		t.Fatalf("create: %v", err)
	}
	_, err = c.TagDeliveryStream(ctx, &firehose.TagDeliveryStreamInput{DeliveryStreamName: aws.String("alpha"), Tags: []types.Tag{{Key: aws.String("k")}}})
	if !errors.As(err, &ia) {
		t.Fatalf("tag: %v", err)
	}
	for _, op := range []string{"CreateDeliveryStream", "TagDeliveryStream"} {
		if n := e.counter(e.metrics.apiRequests, op, "400"); n != 1 {
			t.Fatalf("%s sent %v times", op, n)
		}
	}
}

func TestSDKThrottling(t *testing.T) {
	e, c, _ := newSDKClient(t, "ap-south-1", 2)
	ctx := context.Background()
	recs := []types.Record{{Data: []byte("a")}, {Data: []byte("b")}, {Data: make([]byte, tinyQuota)}}
	out, err := c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("tiny"), Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedPutCount) != 3 || len(out.RequestResponses) != 3 {
		t.Fatalf("FailedPutCount %d", aws.ToInt32(out.FailedPutCount))
	}
	for _, r := range out.RequestResponses {
		if aws.ToString(r.ErrorCode) != "ServiceUnavailableException" || aws.ToString(r.ErrorMessage) != "Slow down." || r.RecordId != nil {
			t.Fatalf("entry %+v", r)
		}
	}
	// PutRecord: 503 ServiceUnavailableException, retried by the SDK
	// (2 attempts configured), then surfaced.
	start := time.Now()
	_, err = c.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("tiny"), Record: &types.Record{Data: make([]byte, tinyQuota)}})
	var su *types.ServiceUnavailableException
	if !errors.As(err, &su) || su.ErrorMessage() != "Slow down." {
		t.Fatalf("PutRecord throttled: %v", err)
	}
	if n := e.counter(e.metrics.apiRequests, "PutRecord", "503"); n != 2 {
		t.Fatalf("PutRecord attempts %v, want 2 (SDK retries 503)", n)
	}
	if n := e.counter(e.metrics.throttledRecords, "tiny"); n != 5 {
		t.Fatalf("throttled records %v, want 5", n)
	}
	t.Logf("throttled PutRecord took %v", time.Since(start))
	e.wantStored(t, "tiny", 0)
}
