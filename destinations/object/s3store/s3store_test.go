package s3store

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

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
		{mk(404, "NotFound", nil), CodeNoSuchBucket, false, 0}, // HeadBucket
		{mk(403, "Forbidden", nil), CodeAccessDenied, false, 0},
		{errors.New("dial tcp: connection refused"), CodeConnectionFailed, true, 0},
	} {
		code, _, retry, after := classifyError(tc.err)
		if code != tc.code || retry != tc.retry || after != tc.after {
			t.Errorf("%v: code %q retry %v after %v; want %q %v %v", tc.err, code, retry, after, tc.code, tc.retry, tc.after)
		}
	}
}

func s3rverConfig(t *testing.T, bucket string) Config {
	t.Helper()
	endpoint, _ := testpeers.StartS3rver(t, "sluice-test")
	c := DefaultConfig()
	c.Bucket, c.Region, c.Endpoint, c.ForcePathStyle = bucket, "us-east-1", endpoint, true
	c.AccessKeyID, c.SecretAccessKey = testpeers.S3rverAccessKey, testpeers.S3rverSecretKey
	c.MaxAttempts = 1
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func code(err error) string {
	var c interface{ ErrorCode() string }
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return ""
}

// TestReadyHeadsTheBucket: Ready is HeadBucket, with the store's error
// classification.
func TestReadyHeadsTheBucket(t *testing.T) {
	for bucket, want := range map[string]string{"sluice-test": "", "no-such-bucket": CodeNoSuchBucket} {
		s, err := New(context.Background(), s3rverConfig(t, bucket), nil)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Ready(context.Background())
		if want == "" && err != nil || want != "" && (err == nil || code(err) != want || pipeline.IsRetryable(err)) {
			t.Errorf("%s: Ready = %v (code %q), want code %q", bucket, err, code(err), want)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// TestObjectCommitAbort: an object is visible after Commit only, Abort
// after Commit does nothing, and a Write after the end fails.
func TestObjectCommitAbort(t *testing.T) {
	s, err := New(context.Background(), s3rverConfig(t, "sluice-test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o, err := s.Create(ctx, "k/aborted", object.Meta{ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Write([]byte("never")); err != nil {
		t.Fatal(err)
	}
	o.Abort()
	if _, err := o.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	o, err = s.Create(ctx, "k/committed", object.Meta{ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	o.Abort()
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range out.Contents {
		keys = append(keys, *c.Key)
	}
	if strings.Join(keys, ",") != "k/committed" {
		t.Errorf("keys %v, want only k/committed", keys)
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Bucket = "ok-bucket"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.SSE = SSEOptions{Type: SSEAES256, KMSKeyID: "k"}
	c.SessionToken = "t"
	err := c.Validate()
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var oe *pipeline.OptionError
		if !errors.As(e, &oe) {
			t.Fatalf("%v is not an OptionError", e)
		}
		keys = append(keys, oe.Key)
	}
	if strings.Join(keys, ",") != "session_token,sse.kms_key_id" && strings.Join(keys, ",") != "sse.kms_key_id,session_token" {
		t.Errorf("keys %v", keys)
	}
}
