package httpendpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/destinations/internal/retryafter"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// Error codes (Firehose's, written into dead letters) and the error output
// type of failed records.
const (
	// CodeDestinationException: the endpoint answered, but not 200
	// (any other 2xx, 3xx, 4xx, 5xx); 413 included, as Firehose reports it.
	CodeDestinationException = "HttpEndpoint.DestinationException"
	// CodeConnectionFailed: no connection (refused, DNS, TLS, unroutable).
	CodeConnectionFailed = "HttpEndpoint.ConnectionFailed"
	// CodeConnectionReset: the connection broke before an answer.
	CodeConnectionReset = "HttpEndpoint.ConnectionReset"
	// CodeRequestTimeout: no complete answer within request_timeout.
	CodeRequestTimeout = "HttpEndpoint.RequestTimeout"
	// CodeResponseTooLarge: a response body over MaxResponseBytes.
	CodeResponseTooLarge = "HttpEndpoint.ResponseTooLarge"
	// CodeInvalidResponse: a 200 whose body is not JSON or whose
	// requestId is not the request's.
	CodeInvalidResponse = "HttpEndpoint.InvalidResponseFromDestination"
	// OutputType is the error output folder of records that could not be
	// delivered.
	OutputType = "http-endpoint-failed"
	// MaxErrorMessage bounds the endpoint's text quoted in an error
	// (Firehose's errorMessage limit).
	MaxErrorMessage = 8192
)

// response is the specification's response body.
type response struct {
	RequestID    *string         `json:"requestId"`
	Timestamp    json.RawMessage `json:"timestamp"`
	ErrorMessage *string         `json:"errorMessage"`
}

// classify judges an endpoint's answer to request id: nil for success,
// otherwise a *pipeline.CodedError, wrapped in a *pipeline.RetryableError
// unless the status is 413.
func classify(status int, h http.Header, body []byte, id string, now time.Time) error {
	if len(body) > MaxResponseBytes {
		return retryable(CodeResponseTooLarge, 0,
			fmt.Errorf("the endpoint answered %d with a body over %d bytes", status, MaxResponseBytes))
	}
	if status != http.StatusOK {
		err := fmt.Errorf("the following response was received from the endpoint destination. %d: %s", status, quote(body))
		if status == http.StatusRequestEntityTooLarge {
			return &pipeline.CodedError{Code: CodeDestinationException, OutputType: OutputType, Err: err}
		}
		var after time.Duration
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			after = retryafter.Parse(h.Get("Retry-After"), now)
		}
		return retryable(CodeDestinationException, after, err)
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return retryable(CodeInvalidResponse, 0,
			fmt.Errorf("the endpoint answered 200 with a body that is not the specification's JSON (%v): %s", err, quote(body)))
	}
	switch {
	case r.RequestID == nil:
		return retryable(CodeInvalidResponse, 0, fmt.Errorf("the endpoint answered 200 without a requestId: %s", quote(body)))
	case *r.RequestID != id:
		return retryable(CodeInvalidResponse, 0,
			fmt.Errorf("the endpoint answered 200 with requestId %q, not the request's %q", truncate(*r.RequestID, 256), id))
	}
	return nil
}

func retryable(code string, after time.Duration, err error) error {
	return &pipeline.RetryableError{Err: &pipeline.CodedError{Code: code, OutputType: OutputType, Err: err}, After: after}
}

// quote renders an endpoint's body for an error message: at most
// MaxErrorMessage bytes of valid UTF-8.
func quote(body []byte) string {
	if len(body) == 0 {
		return "(empty body)"
	}
	return truncate(string(body), MaxErrorMessage)
}

func truncate(s string, n int) string {
	cut := len(s) > n
	if cut {
		s = s[:n]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if cut {
		s += "…"
	}
	return s
}

// transportError classifies an error without a (complete) response. A
// cancelled or expired ctx (the runner's) gives an error wrapping
// ctx.Err(), unmarked: the runner is stopping. The attempt's own deadline
// (actx) is a RequestTimeout.
func (d *Destination) transportError(ctx, actx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return err
		}
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	code := CodeConnectionFailed
	switch {
	case actx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		code = CodeRequestTimeout
		err = fmt.Errorf("no response within request_timeout %v: %w", d.cfg.timeout, err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		code = CodeConnectionReset
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			code = CodeRequestTimeout
		}
	}
	return retryable(code, 0, err)
}
