package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/s3store"
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
			opts.PartSize = s3store.MinPartSize
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
				if code := errorCode(err); code != s3store.CodeNoSuchBucket {
					t.Errorf("%d bytes: code %q, want %s (%v)", b.Bytes, code, s3store.CodeNoSuchBucket, err)
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
		{"NOTAKEY", srv.secret, s3store.CodeInvalidAccessKeyID},
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
	bad.SSE = s3store.SSEOptions{Type: "aws:kms:x"}
	bad.StorageClass = "COLD"
	bad.Compression = "LZ4"
	bad.PartSize = 1 << 20
	bad.UploadConcurrency = 0
	bad.MaxActivePartitions = -1
	bad.MaxConcurrentObjects = 65
	bad.CustomTimeZone = "Mars/Base"
	bad.FileExtension = "gz"
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"bucket:", "endpoint:", "access_key_id", "sse.type", "storage_class", "compression", "part_size", "upload_concurrency", "max_active_partitions", "max_concurrent_objects", "custom_time_zone", "FileExtension"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	pq := ok
	pq.Format = object.FormatOptions{Type: object.FormatParquet}
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
	srv := startS3rver(t, testBucket)
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
	if err == nil || pipeline.IsRetryable(err) || errorCode(err) != s3store.CodeNoSuchBucket {
		t.Fatalf("want a permanent %s, got %v", s3store.CodeNoSuchBucket, err)
	}
}
