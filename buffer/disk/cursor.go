package disk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/internal/marks"
	"github.com/sluice-dev/sluice/pipeline"
)

// MarkInflight durably adds the batch about to be delivered to the
// in-flight set (one atomic replacement of the cursor file). Only the
// range is kept (Part and Round are derived again by the runner). Marking
// a batch already in flight again is a no-op; a batch that is empty,
// outside [committed, head], that starts before the end of the last batch
// in flight, or that would make more than buffer.MaxInflight, is refused.
// On error the set is unchanged.
func (l *Log) MarkInflight(ctx context.Context, id pipeline.BatchID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id = id.Range()
	l.smu.Lock()
	defer l.smu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return pipeline.ErrClosed
	}
	c := l.cursorLocked()
	head := l.head
	l.mu.Unlock()
	if err := marks.Check(c.inflight, c.committed, head, id); err != nil {
		if errors.Is(err, marks.ErrMarked) {
			return nil
		}
		return fmt.Errorf("disk buffer %s: mark inflight %s: %w", l.stream, id, err)
	}
	c.inflight = marks.Add(c.inflight, id)
	if err := l.writeCursor(c); err != nil {
		return fmt.Errorf("disk buffer %s: mark inflight %s: %w", l.stream, id, err)
	}
	l.mu.Lock()
	l.inflight = c.inflight
	l.mu.Unlock()
	return nil
}

// Commit durably records that everything before upTo is delivered and drops
// the in-flight marks that end at or before it (one atomic replacement of
// the cursor file), then deletes the segments that lie entirely before it
// (the active segment is kept until the log rolls past it).
func (l *Log) Commit(ctx context.Context, upTo pipeline.Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.smu.Lock()
	defer l.smu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return pipeline.ErrClosed
	}
	if upTo > l.head {
		err := fmt.Errorf("disk buffer %s: commit %d: beyond head %d", l.stream, upTo, l.head)
		l.mu.Unlock()
		return err
	}
	if upTo <= l.committed {
		l.mu.Unlock()
		return nil
	}
	c := l.cursorLocked()
	l.mu.Unlock()
	c.committed = upTo
	c.inflight = marks.Commit(c.inflight, upTo)
	if err := l.writeCursor(c); err != nil {
		return fmt.Errorf("disk buffer %s: commit: %w", l.stream, err)
	}
	l.mu.Lock()
	l.committed = upTo
	l.inflight = c.inflight
	l.mu.Unlock()
	return l.reclaim(upTo)
}

// reclaim deletes the segments that end at or before upTo. A deletion lost
// to a crash is redone by the next Open.
func (l *Log) reclaim(upTo pipeline.Position) error {
	l.mu.Lock()
	keep := 0
	for keep+1 < len(l.segs) && l.segs[keep+1].base <= upTo {
		keep++
	}
	if keep == 0 {
		l.mu.Unlock()
		return nil
	}
	first := l.segs[keep].base
	l.mu.Unlock()
	// The positions of the records about to be deleted must be saved
	// first: they are the source's checkpoint.
	if err := l.savePositions(first); err != nil {
		return fmt.Errorf("disk buffer %s: before deleting committed segments: %w", l.stream, err)
	}
	l.mu.Lock()
	var dead []*segment
	for len(l.segs) > 1 && l.segs[1].base <= upTo {
		dead = append(dead, l.segs[0])
		l.segs[0] = nil
		l.segs = l.segs[1:]
	}
	n := len(l.segs)
	l.mu.Unlock()
	if len(dead) == 0 {
		return nil
	}
	l.m.segments.Set(float64(n))
	// Wait for reads that may still use the files before closing them.
	l.fmu.Lock()
	for _, s := range dead {
		_ = s.f.Close()
	}
	l.fmu.Unlock()
	for _, s := range dead {
		if err := l.removeSegment(s.base); err != nil {
			return fmt.Errorf("disk buffer %s: delete committed segment: %w", l.stream, err)
		}
	}
	l.measureFree()
	return nil
}

// State reports the cursors and usage. Records is -1 (not tracked: that
// would take memory growing with the backlog). Oldest reads the header of
// the oldest undelivered record (cached per position); State never waits
// for a Read in progress, nor for a segment deletion (it then reports the
// last arrival time it knew).
func (l *Log) State() buffer.State {
	l.mu.Lock()
	s := buffer.State{
		Committed: l.committed,
		Head:      l.head,
		Inflight:  slices.Clone(l.inflight),
		Bytes:     int64(l.head - l.committed),
		Records:   -1,
	}
	closed := l.closed
	l.mu.Unlock()
	if s.Head > s.Committed && !closed {
		s.Oldest = l.oldestAt(s.Committed)
	}
	return s
}

func (l *Log) oldestAt(pos pipeline.Position) time.Time {
	l.omu.Lock()
	defer l.omu.Unlock()
	if l.oldestPos == pos && !l.oldest.IsZero() {
		return l.oldest
	}
	if !l.fmu.TryRLock() {
		// Files are being closed (segment deletion, Close): do not wait.
		return l.oldest
	}
	defer l.fmu.RUnlock()
	l.mu.Lock()
	if l.closed || len(l.segs) == 0 {
		l.mu.Unlock()
		return time.Time{}
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > pos }) - 1
	if i < 0 {
		l.mu.Unlock()
		return time.Time{}
	}
	seg := l.segs[i]
	l.mu.Unlock()
	t, err := readArrived(seg.f, int64(pos-seg.base))
	if err != nil {
		return l.oldest
	}
	l.oldestPos, l.oldest = pos, t
	return t
}
