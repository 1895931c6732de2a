// Package buffer defines the contract of a stream's buffer: the durable
// (buffer/disk) or in-memory (buffer/memory) log that sits between the
// sources that accept records and the runner that delivers them.
//
// One Buffer holds one stream. Positions are logical byte offsets that only
// grow. Producers append; one runner reads batches from the committed cursor,
// records the batch identity it is about to deliver (MarkInflight), delivers,
// and commits. buffer/buffertest is a conformance suite every implementation
// passes.
package buffer

import (
	"context"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// Buffer is one stream's log. All methods are safe for concurrent use;
// Append is called by many producers at once, the read side (Read,
// MarkInflight, Commit) by one runner.
type Buffer interface {
	// Append stores recs and returns once they are durable according to the
	// buffer's durability mode (for buffer/disk in mode fsync: after the
	// fsync of the group that holds them). It sets recs[i].ID to a RecordId
	// unique in the stream forever (derived from the record's position) and,
	// when recs[i].Arrived is zero, sets it to the time of the append.
	// Append is all or nothing: on error no record of recs is stored.
	// It returns pipeline.ErrFull, without blocking, when the records do not
	// fit in the quota. It must not retain recs or their Data after
	// returning: callers reuse both.
	Append(ctx context.Context, recs []pipeline.Record) error

	// Read returns the records stored from position from onwards, stopping
	// before the first record that would take the payload bytes past
	// maxBytes (at least one record is returned when any is available),
	// after maxRecords records, or at position end when end is non-zero.
	// It does not block: with nothing stored at from it returns no records
	// and next == from. The records' Data must not be retained after the
	// next Read. next is the position after the last record returned.
	Read(ctx context.Context, from pipeline.Position, maxBytes, maxRecords int, end pipeline.Position) (recs []pipeline.Record, next pipeline.Position, err error)

	// Notify returns a channel that receives a value (non-blocking send,
	// capacity 1) after appends, so a reader waiting for data can wake up.
	Notify() <-chan struct{}

	// MarkInflight durably records the identity of the batch about to be
	// delivered, so that after a crash State reports it and the runner
	// rebuilds exactly the same batch.
	MarkInflight(ctx context.Context, id pipeline.BatchID) error

	// Commit durably records that every record before upTo has been
	// delivered or dead-lettered, clears the in-flight mark it covers and
	// lets the space be reclaimed (for buffer/disk: fully committed
	// segments are deleted).
	Commit(ctx context.Context, upTo pipeline.Position) error

	// State reports the buffer's cursors and usage.
	State() State

	// Close stops the buffer's goroutines and releases its files. Appends
	// waiting for durability are answered first.
	Close() error
}

// State is a snapshot of a buffer's cursors and usage.
type State struct {
	// Committed is the position up to which everything is delivered.
	Committed pipeline.Position
	// Head is the position after the last durable record.
	Head pipeline.Position
	// Inflight is the batch marked for delivery and not yet committed; its
	// End is zero when there is none.
	Inflight pipeline.BatchID
	// Bytes is the storage held by undelivered records (frames included),
	// the number compared with the quota.
	Bytes int64
	// Records is the number of undelivered records, when known (-1 if not).
	Records int64
	// Oldest is the arrival time of the oldest undelivered record (zero if
	// none): the basis of the DataFreshness metric.
	Oldest time.Time
}

// Durability says when an append is acknowledged.
type Durability string

const (
	// DurabilityFsync acknowledges after fsync: the record survives kill -9
	// and power loss. The default.
	DurabilityFsync Durability = "fsync"
	// DurabilityOS acknowledges after write(2): the record survives a crash
	// of the process but not of the machine.
	DurabilityOS Durability = "os"
	// DurabilityMemory keeps records in memory only (buffer/memory): lossy
	// on any crash, documented as such.
	DurabilityMemory Durability = "memory"
)
