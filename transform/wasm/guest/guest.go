package guest

import "strconv"

// Status is a record's result, as in Firehose's Lambda contract.
type Status uint8

// The result codes of ABI.md §2.2.
const (
	// Ok delivers the record with its (possibly new) data and partition
	// keys.
	Ok Status = 0
	// Dropped removes the record; it counts as a success.
	Dropped Status = 1
	// ProcessingFailed sends the record, with its original data, to the
	// error output (Lambda.ProcessingFailedStatus).
	ProcessingFailed Status = 2
)

// String returns the Firehose name of the status.
func (s Status) String() string {
	switch s {
	case Ok:
		return "Ok"
	case Dropped:
		return "Dropped"
	case ProcessingFailed:
		return "ProcessingFailed"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Invocation describes the host call a record belongs to (Firehose's
// invocation event fields). Its strings alias the input buffer: valid during
// the handler call only.
type Invocation struct {
	// ID is unique per call attempt (a retry gets a new one).
	ID string
	// DeliveryStreamARN is
	// "arn:aws:firehose:<region>:000000000000:deliverystream/<stream>".
	DeliveryStreamARN string
	// Region is the processor's region option.
	Region string
	// SourceKinesisStreamARN is empty unless the source is a Kinesis
	// stream.
	SourceKinesisStreamARN string
}

// Record is one input record. Everything in it aliases the host's input
// buffer or SDK buffers reused across records: it is valid only during the
// handler call (see the package documentation).
type Record struct {
	// ID is the Firehose recordId.
	ID string
	// ArrivalMillis is the approximate arrival time, Unix epoch
	// milliseconds.
	ArrivalMillis int64
	// Data is the payload. The handler may modify it in place.
	Data []byte
	// Meta is the source metadata (for a Kinesis data stream: shardId,
	// partitionKey, approximateArrivalTimestamp, sequenceNumber,
	// subsequenceNumber); nil when the record has none (Direct PUT). The
	// map is reused for the next record.
	Meta map[string]string
	// Invocation describes the call; it is shared by the call's records.
	Invocation *Invocation
}

// Result is the outcome of one record. The zero Result is Ok with empty
// data: use Pass to keep the data unchanged.
type Result struct {
	// Status is Ok, Dropped or ProcessingFailed.
	Status Status
	// Keep, for Ok, keeps the input data unchanged (Data is ignored): the
	// host then copies nothing, the cheapest pass-through.
	Keep bool
	// Data is the new data of an Ok result without Keep (nil or empty: an
	// empty record). It may alias Record.Data or a buffer the handler
	// reuses.
	Data []byte
	// PartitionKeys are metadata.partitionKeys, for the prefix expressions
	// !{partitionKeyFromLambda:<key>}; used for Ok only. An empty key makes
	// the record ProcessingFailed. The map may be reused by the handler.
	PartitionKeys map[string]string
	// Error is the message of a ProcessingFailed result (may be empty);
	// ignored otherwise.
	Error string
}

// Pass returns an Ok result keeping the record's data unchanged.
func Pass() Result { return Result{Keep: true} }

// Replace returns an Ok result with new data.
func Replace(data []byte) Result { return Result{Data: data} }

// Drop returns a Dropped result.
func Drop() Result { return Result{Status: Dropped} }

// Fail returns a ProcessingFailed result with an error message.
func Fail(msg string) Result { return Result{Status: ProcessingFailed, Error: msg} }

// WithKeys returns r with its partition keys set to keys.
func (r Result) WithKeys(keys map[string]string) Result {
	r.PartitionKeys = keys
	return r
}

// Handler transforms one record.
type Handler func(Record) Result

// module is the registered module: the one global the reactor's exports
// need, since the host calls them with no other context.
var module transformer

// Handle registers the module's record handler. Call it exactly once, from
// an init function (main is never called in a reactor); it panics when
// called twice or with nil.
func Handle(f Handler) {
	if f == nil {
		panic("guest: Handle called with a nil handler")
	}
	if module.handler != nil {
		panic("guest: Handle called twice")
	}
	module.handler = f
}

// OnInit registers a function the SDK calls once per instance with the
// processor's config option (ABI.md §5: a YAML string verbatim, any other
// value as JSON, empty when absent), before any record. A non-nil error
// makes the instance unusable: the processor fails to start. Call it at most
// once, from an init function.
func OnInit(f func(config []byte) error) {
	if f == nil {
		panic("guest: OnInit called with a nil function")
	}
	if module.onInit != nil {
		panic("guest: OnInit called twice")
	}
	module.onInit = f
}

// Config returns the processor's config option as given to sluice_init
// (nil when absent or before initialisation). The slice is the SDK's copy:
// do not modify it.
func Config() []byte { return module.config }
