// Package pipeline is Sluice's vocabulary: the records and batches that flow
// between packages, the small interfaces components implement, the error kinds
// destinations use to tell the runner what happened, and the dependencies
// (logger, metrics registerer, data directory) injected into every component.
//
// It depends on the standard library and client_golang only; it starts no
// goroutines and does no I/O.
package pipeline

import (
	"fmt"
	"time"
)

// Record is one producer record as it moves through a stream.
type Record struct {
	// ID is the Firehose RecordId. The buffer derives it from the record's
	// position, so it is stable across redeliveries.
	ID string
	// Data is the record payload exactly as the producer sent it (after
	// base64 decoding) or as a processor rewrote it.
	Data []byte
	// Arrived is the approximate arrival time: when the buffer accepted it.
	Arrived time.Time
	// Keys holds partition keys set by processors (dynamic partitioning).
	Keys map[string]string
	// Meta holds source metadata (shard, sequence number, partition key).
	Meta map[string]string
}

// Keys of Record.Meta for records read from a Kinesis data stream: the
// members of Firehose's kinesisRecordMetadata that transforms receive, the
// stream's ARN, and what KPL de-aggregation adds to each sub-record. One
// vocabulary for the source that sets them (ingest/kinesis) and the
// processors that read them (transform/wasm, transform/deaggregate).
const (
	MetaShardID                = "shardId"
	MetaPartitionKey           = "partitionKey"
	MetaSequenceNumber         = "sequenceNumber"
	MetaApproximateArrival     = "approximateArrivalTimestamp" // Unix epoch milliseconds
	MetaSourceKinesisStreamARN = "sourceKinesisStreamArn"
	MetaExplicitHashKey        = "explicitHashKey"
	MetaSubSequenceNumber      = "subsequenceNumber" // Firehose's Lambda event spelling
)

// Keys of Record.Meta for records put back by `sluice dlq replay`: the
// replay run and the record's number in it. A disk buffer tracks them
// like a source position, so that the daemon stores each record of a run
// once however often the run resends it.
const (
	MetaReplayID  = "sluiceReplayId"
	MetaReplaySeq = "sluiceReplaySeq"
)

// Position is a record's place in a stream's buffer: a logical byte offset
// that only grows and is never reused, even after segments are reclaimed.
type Position uint64

// BatchID is the stable identity of a batch: the half-open range of buffer
// positions [First, End) it covers. It is recorded durably before delivery,
// so a redelivery after a crash rebuilds exactly the same batch, and
// destinations derive idempotent names (object keys, document ids, ledger
// rows, request ids) from it.
//
// A batch the runner splits to fit a destination's limits is delivered as
// parts 1, 2, ... of the same range (Part); a retry of the records of a
// partially failed delivery is round 1, 2, ... (Round). Both are zero for
// a batch delivered whole at the first attempt, and both are derived again
// identically when a batch is rebuilt after a crash.
type BatchID struct {
	First Position
	End   Position
	Part  uint32
	Round uint32
}

// String renders the identity in a form usable in file names:
// "<first>-<end>" in 16 hex digits each, then "-p<part>" and "-r<round>"
// when they are not zero.
func (id BatchID) String() string {
	s := fmt.Sprintf("%016x-%016x", uint64(id.First), uint64(id.End))
	if id.Part != 0 {
		s += fmt.Sprintf("-p%d", id.Part)
	}
	if id.Round != 0 {
		s += fmt.Sprintf("-r%d", id.Round)
	}
	return s
}

// Range returns the identity of the whole buffer range (Part and Round
// cleared).
func (id BatchID) Range() BatchID { return BatchID{First: id.First, End: id.End} }

// Batch is a group of records of one stream delivered together.
type Batch struct {
	Stream  string
	Records []Record
	// Bytes is the sum of len(Records[i].Data).
	Bytes int
	ID    BatchID
}

// Oldest returns the earliest arrival time in the batch (zero for an empty
// batch). Object layouts (yyyy/MM/dd/HH/) are computed from it.
func (b Batch) Oldest() time.Time {
	var t time.Time
	for i := range b.Records {
		if a := b.Records[i].Arrived; t.IsZero() || a.Before(t) {
			t = a
		}
	}
	return t
}
