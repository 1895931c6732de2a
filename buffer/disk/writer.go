package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
)

// request is one Append handed to the writer goroutine.
type request struct {
	buf  *[]byte // encoded frames, from l.pool
	n    int64
	nrec int
	pos  pipeline.Position
	// track holds the tracked key-value pairs of the records, in order
	// (Options.Track), applied once they are durable.
	track []string
	done  chan error
}

// maxPooled is the largest encode buffer kept for reuse.
const maxPooled = 8 << 20

// Append encodes recs in the caller's goroutine, hands them to the writer
// and waits until the group that holds them is written (and, in mode fsync,
// synced). It sets IDs and missing arrival times only on success.
//
// ctx bounds the wait for room in the writer's queue; once queued, Append
// waits for the group's outcome, which Close also delivers.
func (l *Log) Append(ctx context.Context, recs []pipeline.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	now := l.now().UnixNano()
	bp := l.getBuf()
	buf := (*bp)[:0]
	var err error
	for i := range recs {
		arrived := now
		if !recs[i].Arrived.IsZero() {
			arrived = recs[i].Arrived.UnixNano()
		}
		if buf, err = frame.AppendReserved(buf, &recs[i], arrived, l.reserve()); err != nil {
			*bp = buf
			l.putBuf(bp)
			return fmt.Errorf("append record %d: %w", i, err)
		}
	}
	*bp = buf
	req := &request{buf: bp, n: int64(len(buf)), nrec: len(recs), track: l.trackRecs(recs), done: make(chan error, 1)}
	if err := l.enqueue(ctx, req); err != nil {
		l.putBuf(bp)
		return err
	}
	err = <-req.done
	if err == nil {
		l.setIDs(recs, req, now)
	}
	l.putBuf(bp)
	return err
}

// reserve is the room each frame keeps for its encryption tag.
func (l *Log) reserve() int {
	if !l.keys.Sealing() {
		return 0
	}
	return sealReserve
}

func (l *Log) getBuf() *[]byte {
	if bp, ok := l.pool.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (l *Log) putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooled {
		l.pool.Put(bp)
	}
}

// setIDs sets the IDs (one string allocation for the whole call) and the
// missing arrival times of acknowledged records.
func (l *Log) setIDs(recs []pipeline.Record, req *request, now int64) {
	ids := make([]byte, 0, len(recs)*frame.IDLen)
	pos := req.pos
	for i := range recs {
		ids = frame.AppendID(ids, l.logHex, pos)
		pos += pipeline.Position(frame.Size(&recs[i]) + l.reserve())
	}
	s := string(ids)
	t := time.Unix(0, now)
	for i := range recs {
		recs[i].ID = s[i*frame.IDLen : (i+1)*frame.IDLen]
		if recs[i].Arrived.IsZero() {
			recs[i].Arrived = t
		}
	}
}

// enqueue checks the quota, waits for room in the writer's queue, assigns
// the request its position and queues it.
func (l *Log) enqueue(ctx context.Context, req *request) error {
	l.mu.Lock()
	for {
		switch {
		case l.closed:
			l.mu.Unlock()
			return pipeline.ErrClosed
		case l.failed != nil && time.Now().Before(l.nextTry):
			// The writer retries at nextTry; until then appends are
			// refused at once. After it, they are queued: the writer
			// tries to reopen before writing them.
			err := l.failed
			l.mu.Unlock()
			return err
		case int64(l.tail-l.committed)+req.n > l.maxBytes:
			l.mu.Unlock()
			l.m.full.Inc()
			return pipeline.ErrFull
		case l.spacer != nil && l.free.Load()-l.pending-req.n < l.minFree:
			// The disk itself is (nearly) full: throttle rather than fill
			// it, so that the cursor can still be written and segments
			// reclaimed when delivery resumes.
			l.mu.Unlock()
			l.m.full.Inc()
			l.m.diskFull.Inc()
			return pipeline.ErrFull
		}
		if l.pending == 0 || l.pending+req.n <= l.maxPend {
			break
		}
		freed := l.freed
		l.mu.Unlock()
		select {
		case <-freed:
		case <-l.stop:
		case <-ctx.Done():
			return ctx.Err()
		}
		l.mu.Lock()
	}
	req.pos = l.tail
	l.tail += pipeline.Position(req.n)
	l.pending += req.n
	l.queue = append(l.queue, req)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// writer is the single goroutine that writes and syncs groups of requests.
// After a failed fsync it also retries to reopen the log (see reopen), at
// the backoff's pace or when an append asks for it.
func (l *Log) writer() {
	defer close(l.done)
	for {
		select {
		case <-l.wake:
		case <-l.retry.C:
		case <-l.stop:
			l.retry.Stop()
			// Closed: no new requests can be queued; write what is left.
			for l.writeQueued() {
			}
			return
		}
		l.mu.Lock()
		due := l.failed != nil && !time.Now().Before(l.nextTry)
		l.mu.Unlock()
		if due {
			l.reopen()
		}
		for l.writeQueued() {
		}
		l.mu.Lock()
		failed, next := l.failed != nil, l.nextTry
		l.mu.Unlock()
		if failed {
			l.retry.Reset(time.Until(next))
		}
	}
}

// writeQueued writes everything queued as one group. It reports whether
// there was anything to write.
func (l *Log) writeQueued() bool {
	l.mu.Lock()
	group := l.queue
	l.queue = l.spare[:0]
	l.mu.Unlock()
	if len(group) == 0 {
		l.spare = group
		return false
	}
	l.writeGroup(group)
	clear(group)
	l.spare = group[:0]
	return true
}

// writeGroup writes group, rolling to a new segment where the active one is
// full: one vectored write and one sync per segment touched.
func (l *Log) writeGroup(group []*request) {
	for len(group) > 0 {
		l.mu.Lock()
		failed, due := l.failed, l.failed != nil && !time.Now().Before(l.nextTry)
		l.mu.Unlock()
		if due {
			// Appends queued after the retry time were accepted to be
			// written after a reopen: try it now, whichever way the writer
			// got here (a group may follow the one that failed at once).
			l.reopen()
			l.mu.Lock()
			failed = l.failed
			l.mu.Unlock()
		}
		if failed != nil {
			l.fail(group, failed)
			return
		}
		l.mu.Lock()
		seg := l.segs[len(l.segs)-1]
		l.mu.Unlock()
		// Take the requests that fit in the active segment (at least one
		// when it is empty).
		n, bytes := 0, int64(0)
		for n < len(group) && (seg.size+bytes == 0 || seg.size+bytes+group[n].n <= l.segBytes) {
			bytes += group[n].n
			n++
		}
		if n == 0 {
			if err := l.roll(seg); err != nil {
				l.fail(group, err)
				return
			}
			continue
		}
		if err := l.flush(seg, group[:n], bytes); err != nil {
			l.fail(group, err)
			return
		}
		group = group[n:]
	}
}

// roll syncs the full active segment and starts the next one.
func (l *Log) roll(seg *segment) error {
	if !l.fsync {
		// In mode fsync every group is synced already.
		if err := seg.f.Sync(); err != nil {
			return l.setFailed(fmt.Errorf("sync segment %s: %w", segName(seg.base), err))
		}
	}
	base := seg.base + pipeline.Position(seg.size)
	if err := l.newSegment(base); err != nil {
		return l.setFailed(err)
	}
	if err := l.savePositions(base); err != nil {
		// Not fatal: Commit saves them before deleting a segment.
		l.log.Warn("disk buffer: saving source positions at segment roll", "err", err)
	}
	return nil
}

// flush writes reqs at the end of seg, syncs it (mode fsync), then
// publishes the new head and answers the requests.
func (l *Log) flush(seg *segment, reqs []*request, bytes int64) error {
	if want := seg.base + pipeline.Position(seg.size); reqs[0].pos != want {
		return l.setFailed(fmt.Errorf("internal error: group at %d, segment ends at %d", reqs[0].pos, want))
	}
	l.iov = l.iov[:0]
	nrec := 0
	for _, r := range reqs {
		if l.keys.Sealing() {
			if seg.c == nil {
				return l.setFailed(fmt.Errorf("internal error: sealed frames for the plain segment %s", segName(seg.base)))
			}
			sealRequest(seg.c, *r.buf, r.pos)
		}
		l.iov = append(l.iov, *r.buf)
		nrec += r.nrec
	}
	_, err := seg.f.WritevAt(l.iov, seg.size)
	clear(l.iov)
	if err != nil {
		l.m.writeErrors.Inc()
		// Cut the partial write off; if that fails too, give up on the log.
		if terr := seg.f.Truncate(seg.size); terr != nil {
			return l.setFailed(fmt.Errorf("write segment %s: %w (truncate: %v)", segName(seg.base), err, terr))
		}
		l.log.Error("disk buffer: write failed", "segment", segName(seg.base), "err", err)
		if seg.c != nil {
			// Sealed frames are never written twice at one position of a
			// segment: continue in a new one (a new salt), after a reopen.
			return l.setFailed(fmt.Errorf("write segment %s: %w", segName(seg.base), err))
		}
		return fmt.Errorf("write segment %s: %w", segName(seg.base), err)
	}
	if l.fsync {
		start := time.Now()
		err := seg.f.Sync()
		l.m.fsyncSeconds.Observe(time.Since(start).Seconds())
		l.m.fsyncs.Inc()
		if err != nil {
			l.m.writeErrors.Inc()
			// After a failed fsync the kernel may have dropped the dirty
			// pages: nothing written since the last good sync can be
			// trusted until the log is reopened and recovered.
			return l.setFailed(fmt.Errorf("sync segment %s: %w", segName(seg.base), err))
		}
	}
	seg.size += bytes
	l.measureFree()
	l.m.groupRecords.Observe(float64(nrec))
	l.m.groupBytes.Observe(float64(bytes))
	l.m.appendedRecords.Add(float64(nrec))
	l.m.appendedBytes.Add(float64(bytes))

	l.mu.Lock()
	l.head = seg.base + pipeline.Position(seg.size)
	for _, r := range reqs {
		for i := 0; i+1 < len(r.track); i += 2 {
			l.positions[r.track[i]] = r.track[i+1]
		}
	}
	l.pending -= bytes
	close(l.freed)
	l.freed = make(chan struct{})
	l.mu.Unlock()
	for _, r := range reqs {
		r.done <- nil
	}
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return nil
}

// setFailed puts the log in the failed state, in which appends are refused
// until the writer has reopened it.
func (l *Log) setFailed(err error) error {
	l.mu.Lock()
	if l.failed == nil {
		l.failed = fmt.Errorf("disk buffer %s refuses appends until it recovers from: %w", l.stream, err)
		l.nextTry = time.Now().Add(l.backoff)
	}
	l.mu.Unlock()
	l.m.healthy.Set(0)
	l.log.Error("disk buffer: sync failed; appends are refused until the writer recovers", "err", err, "retry_in", l.backoff)
	return err
}

// fail answers group and everything queued after it with err: their
// positions follow the failed write, so they are all given back.
func (l *Log) fail(group []*request, err error) {
	l.mu.Lock()
	queued := l.queue
	l.queue = nil
	var n int64
	for _, r := range group {
		n += r.n
	}
	for _, r := range queued {
		n += r.n
	}
	l.pending -= n
	l.tail = l.head
	close(l.freed)
	l.freed = make(chan struct{})
	l.mu.Unlock()
	if errors.Is(err, pipeline.ErrClosed) {
		err = pipeline.ErrClosed
	}
	for _, r := range group {
		r.done <- err
	}
	for _, r := range queued {
		r.done <- err
	}
}

// reopen recovers the writer after a failed sync (or roll), as Open would
// but without closing the log. After a failed fsync the state of the
// active segment's unsynced pages is unknown (the kernel may have dropped
// them and marked them clean, and will not report it again), so that file
// is never written again: its unacknowledged tail is cut, its acknowledged
// part scanned again, and a new segment is started at the head. On success
// appends are accepted again; on failure the next attempt waits twice as
// long, up to 64 times the first wait and at most a minute.
func (l *Log) reopen() {
	l.mu.Lock()
	seg := l.segs[len(l.segs)-1]
	l.mu.Unlock()
	err := l.replaceActive(seg)
	l.mu.Lock()
	if err != nil {
		l.backoff = min(2*l.backoff, 64*l.backoff0, maxReopenBackoff)
		l.nextTry = time.Now().Add(l.backoff)
		l.mu.Unlock()
		l.log.Error("disk buffer: recovering from the failed sync failed", "err", err, "retry_in", l.backoff)
		return
	}
	l.failed = nil
	l.backoff = l.backoff0
	head := l.head
	l.mu.Unlock()
	l.m.reopens.Inc()
	l.m.healthy.Set(1)
	l.log.Warn("disk buffer: recovered from the failed sync; appends are accepted again in a new segment", "position", head)
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// replaceActive starts a new active segment after seg, which is not
// written again.
func (l *Log) replaceActive(seg *segment) error {
	base := seg.base + pipeline.Position(seg.size)
	if seg.size == 0 {
		// Nothing acknowledged in it: replace the file itself, since
		// the new segment has the same name.
		name := filepath.Join(l.dir, segName(seg.base))
		if err := l.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove segment: %w", err)
		}
		f, c, err := l.createSegment(base)
		if err != nil {
			return err
		}
		l.fmu.Lock()
		l.mu.Lock()
		old := seg.f
		seg.f, seg.c = f, c
		l.mu.Unlock()
		l.fmu.Unlock()
		_ = old.Close()
		return nil
	}
	// Best effort: reads of seg stop at the next segment's base anyway.
	if err := seg.f.Truncate(seg.size); err != nil {
		l.log.Warn("disk buffer: cutting the unacknowledged tail of the failed segment", "segment", segName(seg.base), "err", err)
	}
	good, err := scan(seg.f, seg.size)
	switch {
	case err != nil:
		l.log.Warn("disk buffer: scanning the failed segment", "segment", segName(seg.base), "err", err)
	case good < seg.size:
		// Read will meet the damage, skip it and count it.
		l.log.Error("disk buffer: acknowledged records of the failed segment are unreadable",
			"segment", segName(seg.base), "position", seg.base+pipeline.Position(good), "bytes", seg.size-good)
	}
	return l.newSegment(base)
}
