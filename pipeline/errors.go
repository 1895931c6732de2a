package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrFull is returned by a buffer (and so by an Appender) when a stream's
// byte quota is exhausted. Producers get ServiceUnavailableException
// "Slow down." and retry.
var ErrFull = errors.New("buffer full")

// ErrClosed is returned by components used after Close.
var ErrClosed = errors.New("closed")

// RecordError reports the failure of one record of a batch, by index.
type RecordError struct {
	Index int
	Err   error
}

// RetryableError marks an error that may succeed if tried again (network
// error, 5xx, 429, serialization failure). After, when non-zero, is the
// earliest time to retry the server asked for.
type RetryableError struct {
	Err   error
	After time.Duration
}

func (e *RetryableError) Error() string { return "retryable: " + e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable wraps err as retryable. It returns nil for a nil err.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err}
}

// PartialError reports that some records of a batch failed while the others
// were delivered. Each failed record's Err is itself classified: a
// RetryableError is retried, anything else is permanent.
type PartialError struct {
	Failed []RecordError
}

func (e *PartialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records failed", len(e.Failed))
	if len(e.Failed) > 0 {
		fmt.Fprintf(&b, " (first: record %d: %v)", e.Failed[0].Index, e.Failed[0].Err)
	}
	return b.String()
}

// IsRetryable reports whether err is marked retryable. Unmarked errors are
// permanent: the runner dead-letters them.
func IsRetryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}

// RetryAfter returns the delay a RetryableError asked for, if any.
func RetryAfter(err error) time.Duration {
	var r *RetryableError
	if errors.As(err, &r) {
		return r.After
	}
	return 0
}

// DeadLetterFielder is implemented by errors whose record's error record
// carries members of its own (DeadLetter.Fields), such as Firehose's
// failed-document fields esDocumentId and esIndexName.
type DeadLetterFielder interface {
	DeadLetterFields() map[string]string
}

// CodedError is an error with a Firehose-style error code (e.g.
// "DataFormatConversion.MissingRequiredField") and the error output type its
// records are dead-lettered under (e.g. "format-conversion-failed"). The
// runner reads both through the ErrorCode and ErrorOutputType methods.
// Unless wrapped in a RetryableError it is permanent.
type CodedError struct {
	Code       string
	OutputType string
	Err        error
	// Fields are extra members of the record's error record (see
	// DeadLetterFielder); nil for none.
	Fields map[string]string
}

func (e *CodedError) Error() string {
	if e.Code == "" {
		return e.Err.Error()
	}
	return e.Code + ": " + e.Err.Error()
}
func (e *CodedError) Unwrap() error           { return e.Err }
func (e *CodedError) ErrorCode() string       { return e.Code }
func (e *CodedError) ErrorOutputType() string { return e.OutputType }

// DeadLetterFields returns Fields.
func (e *CodedError) DeadLetterFields() map[string]string { return e.Fields }

// Coder is implemented by errors that carry a Firehose-style error code
// (e.g. "S3.AccessDenied"); the code is written into dead letters.
type Coder interface {
	ErrorCode() string
}

// OutputTyper is implemented by processors, and by errors (see
// CodedError), whose failed records go to a specific error output type.
// An error's own type wins over its processor's; the defaults are
// OutputProcessingFailed for processors and OutputDeliveryFailed for
// delivery.
type OutputTyper interface {
	ErrorOutputType() string
}

// Error output types and default error codes written into dead letters.
const (
	OutputDeliveryFailed   = "delivery-failed"
	OutputProcessingFailed = "processing-failed"
	CodeDeliveryFailed     = "Delivery.Failed"
	CodeProcessingFailed   = "Processing.Failed"
)

// OptionError is a problem with one option of a component, found by its
// Validate: Key is the option's path in the component's block, dotted for
// nested keys and indexed for lists ("format.parquet.columns[2].type"), so
// the configuration reports it at that key's line and column. Validate
// functions return several joined with errors.Join.
type OptionError struct {
	Key string
	Err error
}

func (e *OptionError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

// OptionKey returns Key; config finds option errors by this method (it
// imports nothing of the project).
func (e *OptionError) OptionKey() string { return e.Key }

// NestOptionErrors puts the errors of a nested block's validation under
// key: an *OptionError's key becomes key.<its key>, any other error is
// keyed key. Joined errors are flattened; nil stays nil.
func NestOptionErrors(key string, err error) error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, sub := range j.Unwrap() {
				walk(sub)
			}
			return
		}
		var oe *OptionError
		if errors.As(e, &oe) {
			out = append(out, &OptionError{Key: key + "." + oe.Key, Err: oe.Err})
			return
		}
		out = append(out, &OptionError{Key: key, Err: e})
	}
	if err != nil {
		walk(err)
	}
	return errors.Join(out...)
}

// OptionErrorf returns an *OptionError for key.
func OptionErrorf(key, format string, args ...any) error {
	return &OptionError{Key: key, Err: fmt.Errorf(format, args...)}
}
