package pipeline

import "context"

// Appender takes records into a stream's buffer. It returns once the
// records are durable (per the buffer's durability mode) and have been given
// their IDs, or with ErrFull when the stream's buffer quota is exhausted.
// It must not retain recs or their Data after returning: callers reuse both.
type Appender interface {
	Append(ctx context.Context, stream string, recs []Record) error
}

// Processor transforms a batch. Records that fail individually are reported
// as RecordErrors (indices into the input batch) and are dead-lettered by
// the runner; a returned error fails the whole call. Output records may
// alias the input's Data; neither may be retained after the batch is
// delivered.
type Processor interface {
	Process(ctx context.Context, b Batch) (Batch, []RecordError, error)
}

// Destination delivers batches. It only does I/O: encode, write, classify
// errors (see RetryableError, PartialError). Batching, splitting to the
// destination's limits, retries, backoff, dead letters, in-flight limits
// and metrics belong to the runner. Deliver must be idempotent for a given
// Batch.ID: a redelivery overwrites or is skipped, it never duplicates.
// Deliver is called concurrently for different batches when the stream's
// max_in_flight is above 1. Deliver must not retain the batch's records or
// their Data after it returns: the runner gives their memory back to the
// buffer for reuse.
type Destination interface {
	Deliver(ctx context.Context, b Batch) error
	// Limits are the most one Deliver call accepts; the runner splits
	// larger batches (see BatchID.Part).
	Limits() Limits
	// Ready checks, quickly and without side effects, that the destination
	// can be reached (a HEAD request, a TCP connect, a ping). It backs
	// /readyz; a nil error means ready.
	Ready(ctx context.Context) error
	// Describe returns the destination's members of Firehose's
	// DestinationDescription (DescribeDeliveryStream).
	Describe(in DescribeInput) Description
	// Close releases the destination's resources once deliveries are
	// over; it does not wait past ctx.
	Close(ctx context.Context) error
}

// Abandoner is implemented by destinations that keep something of their
// own for a batch they could not deliver (Redshift writes the batch's COPY
// manifest under errors/ for a manual backfill, as Firehose does). The
// runner calls Abandon with the records it gives up on (out of retries, or
// failed permanently) before it dead-letters them; an error is logged and
// counted, and the records are dead-lettered all the same.
type Abandoner interface {
	Abandon(ctx context.Context, b Batch, cause error) error
}

// Limits bound what one Deliver call receives. Zero means no limit.
type Limits struct {
	// MaxRecords is the most records per call (e.g. 10000 for an HTTP
	// endpoint, a bulk request's document count).
	MaxRecords int
	// MaxBytes is the most payload bytes (sum of len(Data)) per call; a
	// single larger record is delivered alone.
	MaxBytes int
}

// Description is what DescribeDeliveryStream reports of a destination:
// Firehose DestinationDescription members by name (for example
// "HttpEndpointDestinationDescription", "ExtendedS3DestinationDescription")
// with JSON-encodable values.
type Description map[string]any

// DescribeInput is what a destination needs from its stream to describe
// itself the way Firehose does.
type DescribeInput struct {
	Stream    string
	StreamARN string
	RoleARN   string
	// BufferingSizeMiB and BufferingIntervalSeconds are the stream's
	// buffering hints; RetryDurationSeconds its retry duration.
	BufferingSizeMiB         int
	BufferingIntervalSeconds int
	RetryDurationSeconds     int
	// BackupMode is the error output's S3BackupMode (FailedDataOnly or
	// AllData), empty for destinations that are their own error output.
	BackupMode string
	// Backup is the error output's S3DestinationDescription, nil when the
	// destination is its own error output.
	Backup any
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
	// Fields are members the error record carries besides Firehose's
	// common ones (Elasticsearch's esDocumentId, esIndexName, esTypeName),
	// from an error implementing DeadLetterFielder. Nil for none.
	Fields map[string]string
}

// ErrorOutput is a stream's error output (Firehose's S3 backup): an object
// store that keeps dead letters and, in backup mode AllData, a copy of
// every delivered batch. Both writes must be idempotent for a given batch
// identity.
type ErrorOutput interface {
	// WriteDeadLetters stores dls durably.
	WriteDeadLetters(ctx context.Context, id BatchID, stream string, dls []DeadLetter) error
	// Backup stores a copy of b's records (backup mode AllData).
	Backup(ctx context.Context, b Batch) error
	// Ready checks that the store can be reached (see Destination.Ready).
	Ready(ctx context.Context) error
	// Close releases the store's resources.
	Close(ctx context.Context) error
}

// Backup modes of an error output (Firehose's S3BackupMode).
const (
	BackupFailedDataOnly = "FailedDataOnly"
	BackupAllData        = "AllData"
)
