package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
)

// Read returns durable records from position from onwards (see
// buffer.Buffer). maxBytes <= 0 and maxRecords <= 0 mean no limit.
//
// The records' Data alias a read buffer reused by the next Read; their IDs
// share one string allocated per call; Meta maps are allocated only for
// records that carry metadata.
//
// A corrupt frame inside the log (bit rot, or the torn tail of an older
// segment after a power loss in mode os) is logged and counted, and Read
// skips to the next segment boundary: the records in between are lost.
// Read then returns the records after it, or none with next > from when
// nothing readable follows. In that last case, when from is the committed
// position, Read also commits next itself (the skipped bytes hold nothing
// deliverable), so a reader that resumes from State().Committed does not
// stall on the corrupt region.
func (l *Log) Read(ctx context.Context, from pipeline.Position, maxBytes, maxRecords int, end pipeline.Position) ([]pipeline.Record, pipeline.Position, error) {
	if err := ctx.Err(); err != nil {
		return nil, from, err
	}
	l.rmu.Lock()
	recs, next, err := l.read(from, maxBytes, maxRecords, end)
	l.rmu.Unlock()
	if err == nil && len(recs) == 0 && next > from {
		l.mu.Lock()
		atCursor := from == l.committed
		l.mu.Unlock()
		if atCursor {
			l.log.Warn("disk buffer: committing past a corrupt region at the cursor", "from", from, "to", next)
			if cerr := l.Commit(ctx, next); cerr != nil {
				return nil, from, fmt.Errorf("disk buffer %s: skip corrupt region: %w", l.stream, cerr)
			}
		}
	}
	return recs, next, err
}

// read does Read's work with l.rmu held.
func (l *Log) read(from pipeline.Position, maxBytes, maxRecords int, end pipeline.Position) ([]pipeline.Record, pipeline.Position, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, from, pipeline.ErrClosed
	}
	limit := l.head
	l.rsegs = append(l.rsegs[:0], l.segs...)
	l.mu.Unlock()
	if end != 0 && end < limit {
		limit = end
	}
	if from >= limit {
		return nil, from, nil
	}
	if from < l.rsegs[0].base {
		return nil, from, fmt.Errorf("disk buffer %s: read at %d: reclaimed (oldest segment starts at %d)", l.stream, from, l.rsegs[0].base)
	}

	r := reader{l: l, buf: l.rbuf[:0]}
	l.rrecs = l.rrecs[:0]
	l.idbuf = l.idbuf[:0]
	next := from
	payload := 0
	si := sort.Search(len(l.rsegs), func(i int) bool { return l.rsegs[i].base > from }) - 1
	for next < limit && si < len(l.rsegs) {
		seg := l.rsegs[si]
		segEnd := limit
		if si+1 < len(l.rsegs) && l.rsegs[si+1].base < segEnd {
			segEnd = l.rsegs[si+1].base
		}
		r.reset(seg, next, segEnd)
		stop := false
		for next < segEnd {
			fr, err := r.frame()
			if err != nil {
				if !errors.Is(err, frame.ErrCorrupt) && !errors.Is(err, frame.ErrShort) {
					return nil, from, fmt.Errorf("disk buffer %s: read segment %s: %w", l.stream, segName(seg.base), err)
				}
				l.skipped(seg, next, segEnd, err)
				next = segEnd
				break
			}
			if maxRecords > 0 && len(l.rrecs) >= maxRecords ||
				maxBytes > 0 && len(l.rrecs) > 0 && payload+len(fr.Data) > maxBytes {
				stop = true
				break
			}
			payload += len(fr.Data)
			l.idbuf = frame.AppendID(l.idbuf, l.logHex, next)
			l.rrecs = append(l.rrecs, pipeline.Record{
				Data:    fr.Data[:len(fr.Data):len(fr.Data)],
				Arrived: frame.ArrivedTime(fr.Arrived),
				Meta:    frame.DecodeMeta(fr.MetaRaw),
			})
			next += pipeline.Position(fr.Len)
		}
		if stop {
			break
		}
		si++
	}
	if cap(r.buf) > cap(l.rbuf) {
		l.rbuf = r.buf[:0]
	}
	ids := string(l.idbuf)
	for i := range l.rrecs {
		l.rrecs[i].ID = ids[i*frame.IDLen : (i+1)*frame.IDLen]
	}
	return l.rrecs, next, nil
}

func (l *Log) skipped(seg *segment, at, to pipeline.Position, err error) {
	if l.lastSkip == at {
		return
	}
	l.lastSkip = at
	l.log.Error("disk buffer: corrupt frame inside the log; skipping to the next segment boundary",
		"segment", segName(seg.base), "position", at, "skip_to", to, "bytes", to-at, "err", err)
	l.m.corruptSkips.Inc()
	l.m.corruptBytes.Add(float64(to - at))
}

// reader fetches frames of one segment into a growing buffer. Bytes handed
// out are never overwritten during one Read: when the buffer must grow, the
// unread part is copied into a new one.
type reader struct {
	l      *Log
	seg    *segment
	buf    []byte
	r      int   // next unread byte in buf
	off    int64 // segment offset of buf[r]
	endOff int64 // segment offset of the end of the readable range
}

func (r *reader) reset(seg *segment, from, end pipeline.Position) {
	r.seg = seg
	// Keep the bytes already handed out in this Read: append after them.
	r.r = len(r.buf)
	r.off = int64(from - seg.base)
	r.endOff = int64(end - seg.base)
}

// fill makes n bytes available at r.r.
func (r *reader) fill(n int) error {
	have := len(r.buf) - r.r
	if have >= n {
		return nil
	}
	fileOff := r.off + int64(have)
	if r.off+int64(n) > r.endOff {
		return fmt.Errorf("%w: frame crosses the end of the segment", frame.ErrShort)
	}
	want := max(n-have, r.l.chunk)
	if rest := r.endOff - fileOff; int64(want) > rest {
		want = int(rest)
	}
	if cap(r.buf)-len(r.buf) < want {
		// Grow by a quarter, not double: the buffer is kept for the next
		// Read, so its capacity is what a batch costs in memory for good.
		nb := make([]byte, have, max(cap(r.buf)+cap(r.buf)/4, have+want))
		copy(nb, r.buf[r.r:])
		r.buf, r.r = nb, 0
	}
	dst := r.buf[len(r.buf) : len(r.buf)+want]
	m, err := r.seg.f.ReadAt(dst, fileOff)
	r.buf = r.buf[:len(r.buf)+m]
	if m < n-have {
		if err == nil || err == io.EOF {
			return fmt.Errorf("%w: segment file ends early", frame.ErrShort)
		}
		return err
	}
	return nil
}

func (r *reader) frame() (frame.Frame, error) {
	if err := r.fill(frame.HeaderSize); err != nil {
		return frame.Frame{}, err
	}
	n, err := frame.Peek(r.buf[r.r:])
	if err != nil {
		return frame.Frame{}, err
	}
	if err := r.fill(n); err != nil {
		return frame.Frame{}, err
	}
	fr, err := frame.Decode(r.buf[r.r : r.r+n])
	if err != nil {
		return frame.Frame{}, err
	}
	r.r += n
	r.off += int64(n)
	return fr, nil
}

// MarkInflight durably records the batch about to be delivered.
func (l *Log) MarkInflight(ctx context.Context, id pipeline.BatchID) error {
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
	if id.First < l.committed || id.End < id.First || id.End > l.head {
		err := fmt.Errorf("disk buffer %s: mark inflight %s: outside [%d, %d]", l.stream, id, l.committed, l.head)
		l.mu.Unlock()
		return err
	}
	c := l.cursorLocked()
	l.mu.Unlock()
	c.inflight = id
	if err := l.writeCursor(c); err != nil {
		return fmt.Errorf("disk buffer %s: mark inflight: %w", l.stream, err)
	}
	l.mu.Lock()
	l.inflight = id
	l.mu.Unlock()
	return nil
}

// Commit durably records that everything before upTo is delivered, then
// deletes the segments that lie entirely before it (the active segment is
// kept until the log rolls past it).
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
	if c.inflight.End <= upTo {
		c.inflight = pipeline.BatchID{}
	}
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
	l.rmu.Lock()
	defer l.rmu.Unlock()
	l.mu.Lock()
	var dead []*segment
	for len(l.segs) > 1 && l.segs[1].base <= upTo {
		dead = append(dead, l.segs[0])
		l.segs[0] = nil
		l.segs = l.segs[1:]
	}
	n := len(l.segs)
	l.mu.Unlock()
	l.m.segments.Set(float64(n))
	for _, s := range dead {
		_ = s.f.Close()
		if err := l.fs.Remove(filepath.Join(l.dir, segName(s.base))); err != nil {
			return fmt.Errorf("disk buffer %s: delete committed segment: %w", l.stream, err)
		}
	}
	if len(dead) > 0 {
		l.measureFree()
	}
	return nil
}

// State reports the cursors and usage. Records is -1 (not tracked: that
// would take memory growing with the backlog). Oldest reads the header of
// the oldest undelivered record (cached per position).
func (l *Log) State() buffer.State {
	l.mu.Lock()
	s := buffer.State{
		Committed: l.committed,
		Head:      l.head,
		Inflight:  l.inflight,
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
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.oldestPos == pos && !l.oldest.IsZero() {
		return l.oldest
	}
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
	var hdr [frame.HeaderSize]byte
	if _, err := seg.f.ReadAt(hdr[:], int64(pos-seg.base)); err != nil {
		return time.Time{}
	}
	l.oldestPos = pos
	l.oldest = frame.ArrivedTime(int64(binary.LittleEndian.Uint64(hdr[8:16])))
	return l.oldest
}
