// Package memory is an in-memory implementation of buffer.Buffer.
//
// It is LOSSY: records live only in the process's memory, so every record
// not yet committed is lost when the process stops or crashes, acknowledged
// or not (durability mode "memory"). Use it for tests and for streams where
// loss is acceptable; use buffer/disk otherwise.
//
// It is bounded by a byte quota counted exactly as buffer/disk counts it
// (the size of each record's on-disk frame), and its positions are the same
// logical byte offsets, so State.Bytes and positions are comparable between
// the two implementations.
package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/buffer/internal/marks"
	"github.com/sluice-dev/sluice/pipeline"
)

// DefaultMaxBytes is the quota used when Options.MaxBytes is zero.
const DefaultMaxBytes = 64 << 20

// Options configure a memory buffer.
type Options struct {
	// MaxBytes is the quota: the frame bytes of undelivered records.
	// Zero means DefaultMaxBytes.
	MaxBytes int64
	// Now returns the arrival time of appended records (default time.Now).
	Now func() time.Time
}

type entry struct {
	pos  pipeline.Position
	size int64
	rec  pipeline.Record
}

// Buffer is an in-memory, lossy buffer.Buffer.
type Buffer struct {
	maxBytes int64
	now      func() time.Time
	logID    string
	notify   chan struct{}

	mu        sync.Mutex
	closed    bool
	entries   []entry // entries[0] is the oldest undelivered record
	head      pipeline.Position
	committed pipeline.Position
	inflight  []pipeline.BatchID // in log order; replaced, never modified
	bytes     int64
}

var _ buffer.Buffer = (*Buffer)(nil)

// New returns an empty buffer.
func New(opts Options) *Buffer {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never returns an error
	return &Buffer{
		maxBytes: opts.MaxBytes,
		now:      opts.Now,
		logID:    hex.EncodeToString(id[:]),
		notify:   make(chan struct{}, 1),
	}
}

// Append stores copies of recs and sets their IDs and arrival times. It
// returns pipeline.ErrFull when they do not all fit in the quota.
func (b *Buffer) Append(ctx context.Context, recs []pipeline.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var total, dataLen int64
	for i := range recs {
		n := frame.Size(&recs[i])
		if n-frame.PrefixSize > frame.MaxBody {
			return fmt.Errorf("record %d: %w: %d bytes", i, frame.ErrTooLarge, len(recs[i].Data))
		}
		total += int64(n)
		dataLen += int64(len(recs[i].Data))
	}
	now := b.now()
	arena := make([]byte, 0, dataLen)
	ids := make([]byte, 0, len(recs)*frame.IDLen)

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return pipeline.ErrClosed
	}
	if b.bytes+total > b.maxBytes {
		return pipeline.ErrFull
	}
	pos := b.head
	for i := range recs {
		ids = frame.AppendID(ids, b.logID, pos)
		pos += pipeline.Position(frame.Size(&recs[i]))
	}
	idStr := string(ids)
	pos = b.head
	for i := range recs {
		r := &recs[i]
		if r.Arrived.IsZero() {
			r.Arrived = now
		}
		r.ID = idStr[i*frame.IDLen : (i+1)*frame.IDLen]
		start := len(arena)
		arena = append(arena, r.Data...)
		stored := pipeline.Record{
			ID:      r.ID,
			Data:    arena[start:len(arena):len(arena)],
			Arrived: r.Arrived,
			Meta:    cloneMeta(r.Meta),
		}
		size := int64(frame.Size(r))
		b.entries = append(b.entries, entry{pos: pos, size: size, rec: stored})
		pos += pipeline.Position(size)
	}
	b.head = pos
	b.bytes += total
	select {
	case b.notify <- struct{}{}:
	default:
	}
	return nil
}

func cloneMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Read returns records from position from onwards (see buffer.Buffer).
// maxBytes <= 0 and maxRecords <= 0 mean no limit. The records belong to
// the caller: their Data are copied into one buffer allocated for this
// Read, so a caller modifying them cannot alter what a redelivery returns;
// Meta maps are shared and must not be modified.
func (b *Buffer) Read(ctx context.Context, from pipeline.Position, maxBytes, maxRecords int, end pipeline.Position) ([]pipeline.Record, pipeline.Position, error) {
	if err := ctx.Err(); err != nil {
		return nil, from, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, from, pipeline.ErrClosed
	}
	i := sort.Search(len(b.entries), func(i int) bool { return b.entries[i].pos >= from })
	if i < len(b.entries) && b.entries[i].pos != from && from < b.head {
		return nil, from, fmt.Errorf("read at position %d: not a record boundary", from)
	}
	first, next := i, from
	payload := 0
	for ; i < len(b.entries); i++ {
		e := &b.entries[i]
		if end != 0 && e.pos >= end {
			break
		}
		if maxRecords > 0 && i-first >= maxRecords {
			break
		}
		if maxBytes > 0 && i > first && payload+len(e.rec.Data) > maxBytes {
			break
		}
		payload += len(e.rec.Data)
		next = e.pos + pipeline.Position(e.size)
	}
	if i == first {
		return nil, next, nil
	}
	recs := make([]pipeline.Record, i-first)
	data := make([]byte, 0, payload)
	for j := range recs {
		recs[j] = b.entries[first+j].rec
		start := len(data)
		data = append(data, recs[j].Data...)
		recs[j].Data = data[start:len(data):len(data)]
	}
	return recs, next, nil
}

// Release does nothing: records read from a memory buffer are copies the
// garbage collector reclaims.
func (b *Buffer) Release([]pipeline.Record) {}

// Notify returns the channel signalled after appends.
func (b *Buffer) Notify() <-chan struct{} { return b.notify }

// MarkInflight adds the batch about to be delivered to the in-flight set
// (in memory only), with the rules of buffer/disk: only the range is kept,
// marking a batch in flight again is a no-op, and a batch that is empty,
// outside [committed, head], out of order, or one too many, is refused.
func (b *Buffer) MarkInflight(ctx context.Context, id pipeline.BatchID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id = id.Range()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return pipeline.ErrClosed
	}
	if err := marks.Check(b.inflight, b.committed, b.head, id); err != nil {
		if errors.Is(err, marks.ErrMarked) {
			return nil
		}
		return fmt.Errorf("memory buffer: mark inflight %s: %w", id, err)
	}
	b.inflight = marks.Add(b.inflight, id)
	return nil
}

// Commit drops every record before upTo.
func (b *Buffer) Commit(ctx context.Context, upTo pipeline.Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return pipeline.ErrClosed
	}
	if upTo > b.head {
		return fmt.Errorf("commit %d: beyond head %d", upTo, b.head)
	}
	if upTo <= b.committed {
		return nil
	}
	i := sort.Search(len(b.entries), func(i int) bool { return b.entries[i].pos >= upTo })
	if i < len(b.entries) && b.entries[i].pos != upTo {
		return fmt.Errorf("commit %d: not a record boundary", upTo)
	}
	for j := 0; j < i; j++ {
		b.bytes -= b.entries[j].size
		b.entries[j] = entry{}
	}
	b.entries = b.entries[i:]
	if cap(b.entries) > 1024 && len(b.entries) < cap(b.entries)/4 {
		b.entries = append([]entry(nil), b.entries...)
	}
	b.committed = upTo
	b.inflight = marks.Commit(b.inflight, upTo)
	return nil
}

// State reports the cursors and usage. Records is exact.
func (b *Buffer) State() buffer.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := buffer.State{
		Committed: b.committed,
		Head:      b.head,
		Inflight:  slices.Clone(b.inflight),
		Bytes:     b.bytes,
		Records:   int64(len(b.entries)),
	}
	if len(b.entries) > 0 {
		s.Oldest = b.entries[0].rec.Arrived
	}
	return s
}

// Healthy reports nil, or pipeline.ErrClosed once closed: a memory buffer
// has no I/O to fail.
func (b *Buffer) Healthy() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("memory buffer: %w", pipeline.ErrClosed)
	}
	return nil
}

// Close releases the records; other methods then return
// pipeline.ErrClosed. Closing twice is harmless.
func (b *Buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.entries = nil
	return nil
}
