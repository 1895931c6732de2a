package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/pipeline"
)

func errorCode(err error) string {
	var c interface{ ErrorCode() string }
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return ""
}

// TestNoSuchBucketIsPermanent delivers to a bucket that does not exist,
// as one PutObject and as a multipart upload, on both servers.
func TestNoSuchBucketIsPermanent(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			opts := srv.options()
			opts.Bucket = "no-such-bucket"
			opts.PartSize = MinPartSize
			d := newTestDest(t, opts, "nsb", hooks{})
			small := destinationtest.NewBatch("nsb", 0, time.Now(), []byte("x"))
			big := bigBatch("nsb", small.ID.End, 6)
			for _, b := range []pipeline.Batch{small, big} {
				err := d.Deliver(context.Background(), b)
				if err == nil {
					t.Fatal("Deliver to a missing bucket succeeded")
				}
				if pipeline.IsRetryable(err) {
					t.Errorf("%d bytes: %v is retryable, want permanent", b.Bytes, err)
				}
				if code := errorCode(err); code != CodeNoSuchBucket {
					t.Errorf("%d bytes: code %q, want %s (%v)", b.Bytes, code, CodeNoSuchBucket, err)
				}
			}
		})
	}
}

// TestBadCredentialsArePermanent: s3rver checks access keys (it does not
// verify SigV4 signatures; SignatureDoesNotMatch is in TestClassifyError).
func TestBadCredentialsArePermanent(t *testing.T) {
	srv := startS3rver(t, testBucket)
	for _, tc := range []struct {
		key, secret, code string
	}{
		{"NOTAKEY", srv.secret, CodeInvalidAccessKeyID},
	} {
		opts := srv.options()
		opts.AccessKeyID, opts.SecretAccessKey = tc.key, tc.secret
		d := newTestDest(t, opts, "creds", hooks{})
		err := d.Deliver(context.Background(), destinationtest.NewBatch("creds", 0, time.Now(), []byte("x")))
		if err == nil || pipeline.IsRetryable(err) || errorCode(err) != tc.code {
			t.Errorf("key %q secret %q: Deliver = %v (code %q, retryable %v), want permanent %s",
				tc.key, tc.secret, err, errorCode(err), pipeline.IsRetryable(err), tc.code)
		}
	}
}

// TestServerDownIsRetryable stops the server between two deliveries.
func TestServerDownIsRetryable(t *testing.T) {
	srv := startGofakes3(t, testBucket)
	d := newTestDest(t, srv.options(), "down", hooks{})
	b := destinationtest.NewBatch("down", 0, time.Now(), []byte("x"))
	if err := d.Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	err := d.Deliver(context.Background(), b)
	if !pipeline.IsRetryable(err) || errorCode(err) != CodeConnectionFailed {
		t.Fatalf("Deliver with the server down = %v (code %q), want retryable %s", err, errorCode(err), CodeConnectionFailed)
	}
}

// TestClassifyError checks the classifier on SDK error values shaped like
// the responses S3 sends (SlowDown with Retry-After, 500, ...), which the
// test servers cannot be made to answer.
func TestClassifyError(t *testing.T) {
	mk := func(status int, code string, header http.Header) error {
		resp := &http.Response{StatusCode: status, Header: header}
		var inner error = &smithy.GenericAPIError{Code: code, Message: "m"}
		if code == "" {
			inner = errors.New("no body")
		}
		return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: inner},
		}}
	}
	for _, tc := range []struct {
		err   error
		code  string
		retry bool
		after time.Duration
	}{
		{mk(503, "SlowDown", http.Header{"Retry-After": {"7"}}), "S3.SlowDown", true, 7 * time.Second},
		{mk(500, "InternalError", nil), "S3.InternalError", true, 0},
		{mk(502, "", nil), "S3.HTTP502", true, 0},
		{mk(429, "", http.Header{"Retry-After": {"2"}}), "S3.HTTP429", true, 2 * time.Second},
		{mk(400, "RequestTimeout", nil), "S3.RequestTimeout", true, 0},
		{mk(403, "RequestTimeTooSkewed", nil), "S3.RequestTimeTooSkewed", true, 0},
		{mk(404, "NoSuchUpload", nil), "S3.NoSuchUpload", true, 0},
		{mk(404, "NoSuchBucket", nil), CodeNoSuchBucket, false, 0},
		{mk(403, "AccessDenied", nil), CodeAccessDenied, false, 0},
		{mk(403, "SignatureDoesNotMatch", nil), CodeSignatureDoesNotMatch, false, 0},
		{mk(403, "InvalidAccessKeyId", nil), CodeInvalidAccessKeyID, false, 0},
		{mk(400, "InvalidArgument", nil), "S3.InvalidArgument", false, 0},
		{mk(403, "", nil), CodeAccessDenied, false, 0},
		{errors.New("dial tcp: connection refused"), CodeConnectionFailed, true, 0},
	} {
		code, _, retry, after := classifyError(tc.err)
		if code != tc.code || retry != tc.retry || after != tc.after {
			t.Errorf("%v: code %q retry %v after %v; want %q %v %v", tc.err, code, retry, after, tc.code, tc.retry, tc.after)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"0":                             0,
		"-1":                            0,
		"soon":                          0,
		"Mon, 01 Jan 2024 00:00:30 GMT": 30 * time.Second,
		"Sun, 31 Dec 2023 23:59:00 GMT": 0,
		"999999999":                     24 * time.Hour,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err == nil || !strings.Contains(err.Error(), "bucket: required") {
		t.Errorf("defaults without a bucket: %v", err)
	}
	ok := DefaultOptions()
	ok.Bucket = "my-bucket"
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal options: %v", err)
	}
	bad := ok
	bad.Bucket = "Bad_Bucket"
	bad.Endpoint = "ftp://x"
	bad.AccessKeyID = "only-id"
	bad.SSE = SSEOptions{Type: "aws:kms:x"}
	bad.StorageClass = "COLD"
	bad.Compression = "LZ4"
	bad.PartSize = 1 << 20
	bad.UploadConcurrency = 0
	bad.MaxActivePartitions = 0
	bad.CustomTimeZone = "Mars/Base"
	bad.FileExtension = "gz"
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"bucket:", "endpoint:", "access_key_id", "sse.type", "storage_class", "compression", "part_size", "upload_concurrency", "max_active_partitions", "custom_time_zone", "FileExtension"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	pq := ok
	pq.Format = FormatOptions{Type: FormatParquet}
	pq.Compression = "GZIP"
	err = pq.Validate()
	if err == nil || !strings.Contains(err.Error(), "UNCOMPRESSED") || !strings.Contains(err.Error(), "format.parquet: required") {
		t.Errorf("parquet with GZIP and no schema: %v", err)
	}
	expr := ok
	expr.Prefix = "data/!{timestamp:yyyy}/"
	if err := expr.Validate(); err == nil || !strings.Contains(err.Error(), "error-output-type") {
		t.Errorf("prefix with expressions and a plain error prefix: %v", err)
	}
	expr.ErrorOutputPrefix = "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/"
	if err := expr.Validate(); err != nil {
		t.Errorf("valid expressions: %v", err)
	}
}

// TestPartitionsToMissingBucket: with many partitions written concurrently,
// the first real error (NoSuchBucket) is what Deliver returns, not the
// cancellation it caused in the other partitions' uploads.
func TestPartitionsToMissingBucket(t *testing.T) {
	srv := startGofakes3(t, testBucket)
	opts := srv.options()
	opts.Bucket = "no-such-bucket"
	opts.Prefix = "k=!{partitionKeyFromQuery:k}/"
	opts.ErrorOutputPrefix = "errors/!{firehose:error-output-type}/"
	opts.MaxConcurrentObjects = 8
	d := newTestDest(t, opts, "parts", hooks{})
	var recs [][]byte
	for i := range 64 {
		recs = append(recs, fmt.Appendf(nil, "r%d", i))
	}
	b := destinationtest.NewBatch("parts", 0, time.Now(), recs...)
	for i := range b.Records {
		b.Records[i].Keys = map[string]string{"partitionKeyFromQuery:k": fmt.Sprint(i % 32)}
	}
	err := d.Deliver(context.Background(), b)
	if err == nil || pipeline.IsRetryable(err) || errorCode(err) != CodeNoSuchBucket {
		t.Fatalf("want a permanent %s, got %v", CodeNoSuchBucket, err)
	}
}
