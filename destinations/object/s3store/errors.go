package s3store

import (
	"context"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/destinations/internal/retryafter"
	"net/http"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/sluice-dev/sluice/pipeline"
)

// Error codes of failures that no retry fixes (the permanent set). Every
// other S3 error code is reported as "S3.<code>"; connection failures as
// CodeConnectionFailed.
const (
	CodeNoSuchBucket          = "S3.NoSuchBucket"
	CodeAccessDenied          = "S3.AccessDenied"
	CodeInvalidAccessKeyID    = "S3.InvalidAccessKeyId"
	CodeSignatureDoesNotMatch = "S3.SignatureDoesNotMatch"
	CodeConnectionFailed      = "S3.ConnectionFailed"
	CodeWriteFailed           = "S3.WriteFailed"
)

// retryable4xx are S3 error codes answered with a 4xx status that may
// succeed later: throttling, timeouts, clock skew, expired temporary
// credentials (refreshed by the provider), corruption in transit, a
// multipart upload removed under us (the whole object is sent again).
var retryable4xx = map[string]bool{
	"RequestTimeout":            true,
	"RequestTimeTooSkewed":      true,
	"SlowDown":                  true,
	"Throttling":                true,
	"ThrottlingException":       true,
	"TooManyRequests":           true,
	"ExpiredToken":              true,
	"TokenRefreshRequired":      true,
	"OperationAborted":          true,
	"NoSuchUpload":              true,
	"BadDigest":                 true,
	"InvalidDigest":             true,
	"XAmzContentSHA256Mismatch": true,
	"IncompleteBody":            true,
}

// classify turns an SDK error into a pipeline error. A cancelled or
// expired ctx gives an error wrapping ctx.Err() (unmarked: the runner
// stops). 5xx, 429, throttling, timeouts and network errors are retryable,
// honouring Retry-After; other 4xx (no such bucket, access denied, bad
// credentials...) are permanent *pipeline.CodedError. Unrecognised errors
// are retryable: the runner's retry budget bounds them, as Firehose retries
// S3 errors for 24 h.
func (s *Store) classify(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("s3 %s s3://%s/%s: %w", op, s.bucket, key, err)
		}
		return fmt.Errorf("s3 %s s3://%s/%s: %w (%w)", op, s.bucket, key, cerr, err)
	}
	code, status, retry, after := classifyError(err)
	coded := &pipeline.CodedError{
		Code: code,
		Err:  fmt.Errorf("s3 %s s3://%s/%s: %w", op, s.bucket, key, err),
	}
	if !retry {
		s.log.Debug("permanent S3 error", "op", op, "key", key, "code", code, "status", status)
		return coded
	}
	return &pipeline.RetryableError{Err: coded, After: after}
}

// classifyError returns the Firehose-style code of an SDK error, its HTTP
// status (0 when there was no response), whether it is retryable and the
// Retry-After delay asked for.
func classifyError(err error) (code string, status int, retry bool, after time.Duration) {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
		if re.Response != nil {
			after = retryafter.Parse(re.Response.Header.Get("Retry-After"), time.Now())
		}
	}
	var apiErr smithy.APIError
	hasCode := errors.As(err, &apiErr) && apiErr.ErrorCode() != ""
	if hasCode {
		code = "S3." + apiErr.ErrorCode()
	}
	switch {
	case status == 0 && !hasCode:
		// No response: connection refused or reset, DNS, TLS, timeout.
		return CodeConnectionFailed, 0, true, 0
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		if !hasCode {
			code = fmt.Sprintf("S3.HTTP%d", status)
		}
		return code, status, true, after
	case hasCode && retryable4xx[apiErr.ErrorCode()]:
		return code, status, true, after
	case status >= 400:
		if !hasCode || apiErr.ErrorCode() == "NotFound" || apiErr.ErrorCode() == "Forbidden" {
			// No error body: a HEAD (HeadBucket), for which the SDK
			// makes up NotFound / Forbidden from the status.
			code = httpCode(status)
		}
		return code, status, false, 0
	case hasCode:
		// An error without a 4xx status (e.g. a 200 with an error body on
		// CompleteMultipartUpload): S3 asks to retry those.
		return code, status, true, after
	default:
		return CodeWriteFailed, status, true, after
	}
}

// httpCode names a 4xx without an error body (HEAD-style responses).
func httpCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return CodeNoSuchBucket
	case http.StatusForbidden:
		return CodeAccessDenied
	}
	return fmt.Sprintf("S3.HTTP%d", status)
}
