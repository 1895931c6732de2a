package pipeline

import "context"

// Appender takes records into a stream's buffer. It returns once the
// records are durable (per the buffer's durability mode) and have been given
// their IDs, or with ErrFull when the stream's buffer quota is exhausted.
// It must not retain recs or their Data after returning: callers reuse both.
type Appender interface {
	Append(ctx context.Context, stream string, recs []Record) error
}

// Source produces records into an Appender until ctx is cancelled.
type Source interface {
	Run(ctx context.Context, sink Appender) error
}

// Processor transforms a batch. Records that fail individually are reported
// as RecordErrors (indices into the input batch) and are dead-lettered by
// the runner; a returned error fails the whole call.
type Processor interface {
	Process(ctx context.Context, b Batch) (Batch, []RecordError, error)
}

// Destination delivers batches. It only does I/O: encode, write, classify
// errors (see RetryableError, PartialError). Batching, retries, backoff, dead
// letters and metrics belong to the runner. Deliver must be idempotent for a
// given Batch.ID: a redelivery overwrites or is skipped, it never duplicates.
type Destination interface {
	Deliver(ctx context.Context, b Batch) error
	Close(ctx context.Context) error
}

// DeadLetter is one record that could not be delivered or processed, with
// the reason, in the form written to a stream's error output.
type DeadLetter struct {
	Record   Record
	Attempts int
	// Code is a Firehose-style error code (e.g. "S3.WriteFailed",
	// "Lambda.ProcessingFailedStatus").
	Code    string
	Message string
	// OutputType is the Firehose error-output-type folder name, e.g.
	// "processing-failed", "format-conversion-failed", "delivery-failed".
	OutputType string
}

// DeadLetterWriter stores dead letters durably in a stream's error output.
// WriteDeadLetters must be idempotent for a given batch identity.
type DeadLetterWriter interface {
	WriteDeadLetters(ctx context.Context, id BatchID, stream string, dls []DeadLetter) error
}
