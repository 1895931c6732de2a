package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
)

// Read returns durable records from position from onwards (see
// buffer.Buffer). maxBytes <= 0 and maxRecords <= 0 mean no limit.
//
// The records and their memory belong to the caller: their Data alias one
// buffer allocated for this Read (sized from maxBytes; it grows only when
// the frames do not fit), their IDs share one string, the slice is
// allocated to size, and Meta maps are allocated only for records that
// carry metadata. No later Read touches them.
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
	l.fmu.RLock()
	recs, next, err := l.read(from, maxBytes, maxRecords, end)
	l.fmu.RUnlock()
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

// read does Read's work with l.rmu and l.fmu (shared) held.
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

	est := readEstimate(limit-from, maxBytes, l.chunk)
	r := reader{l: l, buf: l.bufs.take(est, min(est, l.chunk)), sc: &l.unseal}
	r.held = append(r.held, r.buf)
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
	if len(l.rrecs) == 0 {
		l.bufs.give(r.held)
		return nil, next, nil
	}
	recs := make([]pipeline.Record, len(l.rrecs))
	copy(recs, l.rrecs)
	clear(l.rrecs) // drop the scratch's references to the caller's memory
	l.bufs.lend(recs, r.held)
	ids := string(l.idbuf)
	for i := range recs {
		recs[i].ID = ids[i*frame.IDLen : (i+1)*frame.IDLen]
	}
	return recs, next, nil
}

// readEstimate is the initial size of a Read's buffer: the frames of
// maxBytes of payload when records are not tiny, bounded by what is there.
func readEstimate(span pipeline.Position, maxBytes, chunk int) int {
	est := chunk
	if maxBytes > 0 {
		est = maxBytes + maxBytes/16 + 4<<10
	}
	return int(min(int64(est), int64(span)))
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

// reader fetches frames of one segment into a buffer handed out to the
// caller. Bytes handed out are never overwritten: when the buffer must
// grow, the unread part is copied into a new one and the old one stays
// with the records that alias it.
type reader struct {
	l      *Log
	seg    *segment
	buf    []byte
	r      int      // next unread byte in buf
	off    int64    // segment offset of buf[r]
	endOff int64    // segment offset of the end of the readable range
	held   [][]byte // every buffer this Read's records may alias
	sc     *unsealScratch
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
	rest := r.endOff - fileOff
	if need := n - have; cap(r.buf)-len(r.buf) < need {
		// Double (bounded by what is left to read): the estimate was
		// short, records are smaller than they were assumed to be.
		nb := r.l.bufs.take(int(min(int64(max(2*cap(r.buf), have+need)), int64(have)+rest)), have+need)[:have]
		copy(nb, r.buf[r.r:])
		r.buf, r.r = nb, 0
		r.held = append(r.held, nb)
	}
	// Read a chunk ahead, within the buffer's room and the range.
	want := int(min(int64(max(n-have, r.l.chunk)), int64(cap(r.buf)-len(r.buf)), rest))
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
	raw := r.buf[r.r : r.r+n]
	fr, err := frame.Decode(raw)
	if err != nil {
		return frame.Frame{}, err
	}
	if fr.Sealed() {
		if fr, err = unseal(r.seg.c, r.seg, fr, raw, r.seg.base+pipeline.Position(r.off), r.sc); err != nil {
			return frame.Frame{}, err
		}
	}
	r.r += n
	r.off += int64(n)
	return fr, nil
}
