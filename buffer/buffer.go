// Package buffer defines the contract of a stream's buffer: the durable
// (buffer/disk) or in-memory (buffer/memory) log that sits between the
// sources that accept records and the runner that delivers them.
//
// One Buffer holds one stream. Positions are logical byte offsets that only
// grow. Producers append; one runner reads consecutive batches from the
// committed cursor, records the identity of each batch before delivering it
// (MarkInflight; several may be in flight at once), and commits up to the
// end of the lowest batch not yet delivered. buffer/buffertest is a
// conformance suite every implementation passes.
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
	// after maxRecords records (0: no limit), or at position end when end is
	// non-zero. It does not block: with nothing stored at from it returns no
	// records and next == from. The records and their Data belong to the
	// caller: later Reads do not reuse their memory, so several batches can
	// be in flight at once. next is the position after the last record
	// returned.
	Read(ctx context.Context, from pipeline.Position, maxBytes, maxRecords int, end pipeline.Position) (recs []pipeline.Record, next pipeline.Position, err error)

	// Release gives back the memory of the records one Read returned (the
	// slice exactly as returned, not a subslice or a copy) once the caller
	// uses neither the records nor their Data any more, so that later
	// Reads can reuse it instead of allocating. Calling it is optional;
	// memory not released is garbage collected. After it, the records
	// must not be used.
	Release(recs []pipeline.Record)

	// Notify returns a channel that receives a value (non-blocking send,
	// capacity 1) after appends, so a reader waiting for data can wake up.
	Notify() <-chan struct{}

	// MarkInflight durably adds the identity of a batch about to be
	// delivered to the in-flight set, so that after a crash State reports
	// it and the runner rebuilds exactly the same batch. Batches are marked
	// in log order: id.First is at or after the End of every batch already
	// in flight (and at or after the committed position). At most
	// MaxInflight batches are in flight at once.
	MarkInflight(ctx context.Context, id pipeline.BatchID) error

	// Commit durably records that every record before upTo has been
	// delivered or dead-lettered, drops the in-flight marks that end at or
	// before upTo, and lets the space be reclaimed (for buffer/disk: fully
	// committed segments are deleted).
	Commit(ctx context.Context, upTo pipeline.Position) error

	// State reports the buffer's cursors and usage.
	State() State

	// Healthy reports whether the buffer accepts appends: nil, or why not
	// (a failed fsync that needs a reopen, a closed buffer). It backs
	// /readyz and must not block on I/O.
	Healthy() error

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
	// Inflight are the batches marked for delivery and not yet committed,
	// in log order (empty when there is none).
	Inflight []pipeline.BatchID
	// Bytes is the storage held by undelivered records (frames included),
	// the number compared with the quota.
	Bytes int64
	// Records is the number of undelivered records, when known (-1 if not).
	Records int64
	// Oldest is the arrival time of the oldest undelivered record (zero if
	// none): the basis of the DataFreshness metric.
	Oldest time.Time
}

// MaxInflight is the most batches a buffer keeps marked in flight at once
// (the upper bound of a stream's max_in_flight).
const MaxInflight = 64

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
