package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// flights is one Run: the loop that cuts batches and the batches it has in
// flight. Everything but the delivery goroutines runs in the loop's
// goroutine, so the fields need no lock.
type flights struct {
	r   *Runner
	ctx context.Context // the Run's context; cancelled on a hard stop

	// batches in flight, in log order; done marks those finished but not
	// yet committed because an earlier one is still in flight.
	batches []flight
	results chan flightResult
	wg      sync.WaitGroup

	// The batch being gathered: the records read so far from accFrom (the
	// next batch's start) to accNext, with accPayload payload bytes. Each
	// record is read from the buffer once, however many times the size is
	// probed before the batch is due.
	acc         []pipeline.Record
	accReads    [][]pipeline.Record // the Reads acc was gathered from, to Release
	accFrom     pipeline.Position
	accNext     pipeline.Position
	accPayload  int
	accGathered bool // acc* describe the batch starting at accFrom
	// no size probe before Head reaches probeAt (see the package
	// documentation)
	probeAt pipeline.Position
	// arrival of the record at peekAt, when it is not the committed one
	peekAt   pipeline.Position
	peekTime time.Time
}

type flight struct {
	id   pipeline.BatchID
	done bool
}

type flightResult struct {
	id  pipeline.BatchID
	err error
}

func newFlights(r *Runner, ctx context.Context) *flights {
	return &flights{r: r, ctx: ctx, results: make(chan flightResult, r.opts.MaxInFlight)}
}

// run recovers the batches a previous run left in flight, then cuts and
// delivers batches until drained or stopped. It waits for every delivery
// goroutine before returning.
func (f *flights) run() error {
	ctx, cancel := context.WithCancel(f.ctx)
	defer f.wg.Wait()
	defer cancel()
	f.ctx = ctx
	defer func() { f.release(f.accReads) }()
	if err := f.recover(); err != nil {
		return err
	}
	return f.loop()
}

// next is where the next batch starts: after the last batch in flight, or
// at the committed position.
func (f *flights) next(committed pipeline.Position) pipeline.Position {
	if n := len(f.batches); n > 0 {
		return f.batches[n-1].id.End
	}
	return committed
}

// recover rebuilds the batches marked in flight by a previous run and
// dispatches them again under their identities.
func (f *flights) recover() error {
	r := f.r
	st := r.opts.Buffer.State()
	from := st.Committed
	for _, id := range st.Inflight {
		if id.End <= from {
			continue
		}
		if id.First != from {
			r.log.Warn("in-flight batch does not start where the previous one ended; redelivering from there",
				"inflight", id.String(), "from", uint64(from))
			id.First = from
		}
		var recs []pipeline.Record
		var next pipeline.Position
		err := r.retryForever(f.ctx, "read in-flight batch", func() error {
			var err error
			recs, next, err = r.opts.Buffer.Read(f.ctx, id.First, 0, 0, id.End)
			return err
		})
		if err != nil {
			return err
		}
		if next != id.End {
			// The log no longer holds the whole batch (a torn tail was
			// truncated at recovery). Deliver what is left under the
			// identity of what is left.
			r.log.Warn("in-flight batch only partly present in the buffer", "inflight", id.String(), "next", uint64(next))
			if next == id.First {
				break
			}
			id.End = next
		}
		r.log.Info("redelivering a batch the previous run left in flight", "batch", id.String(), "records", len(recs))
		// Already marked: the buffer holds its mark (clipped to what it
		// still holds, see buffer.Buffer.State).
		if err := f.dispatch(recs, [][]pipeline.Record{recs}, id, false); err != nil {
			return err
		}
		from = id.End
		if len(f.batches) >= r.opts.MaxInFlight {
			// More batches were in flight than this run may have: finish
			// some before rebuilding the others.
			if err := f.await(); err != nil {
				return err
			}
		}
	}
	return nil
}

// release gives the memory of finished Reads back to the buffer.
func (f *flights) release(reads [][]pipeline.Record) {
	for _, recs := range reads {
		f.r.opts.Buffer.Release(recs)
	}
}

// dispatch marks a batch in flight (unless it already is) and starts its
// delivery; reads are the Reads its records came from, released when the
// delivery is over.
func (f *flights) dispatch(recs []pipeline.Record, reads [][]pipeline.Record, id pipeline.BatchID, mark bool) error {
	r := f.r
	if mark {
		if err := r.retryForever(f.ctx, "mark batch in flight", func() error { return r.opts.Buffer.MarkInflight(f.ctx, id) }); err != nil {
			return err
		}
	}
	f.batches = append(f.batches, flight{id: id})
	r.metrics.inflight.Set(float64(len(f.batches)))
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		err := r.handleBatch(f.ctx, recs, id)
		f.release(reads)                            // nothing uses the records any more
		f.results <- flightResult{id: id, err: err} // capacity MaxInFlight: never blocks
	}()
	return nil
}

// await waits for one batch to finish and takes its result.
func (f *flights) await() error {
	select {
	case res := <-f.results:
		return f.finish(res)
	case <-f.ctx.Done():
		return f.ctx.Err()
	}
}

// finish records a finished batch and commits up to the end of the
// longest finished prefix of the batches in flight.
func (f *flights) finish(res flightResult) error {
	if res.err != nil {
		return res.err
	}
	n := 0
	for i := range f.batches {
		if f.batches[i].id == res.id {
			f.batches[i].done = true
		}
	}
	for n < len(f.batches) && f.batches[n].done {
		n++
	}
	if n == 0 {
		return nil
	}
	upTo := f.batches[n-1].id.End
	r := f.r
	if err := r.retryForever(f.ctx, "commit", func() error { return r.opts.Buffer.Commit(f.ctx, upTo) }); err != nil {
		return err
	}
	f.batches = append(f.batches[:0], f.batches[n:]...)
	r.metrics.inflight.Set(float64(len(f.batches)))
	return nil
}

// startGathering makes the batch starting at cursor the one gathered.
func (f *flights) startGathering(cursor pipeline.Position) {
	if f.accGathered && f.accFrom == cursor {
		return
	}
	f.release(f.accReads)
	f.acc, f.accReads, f.accFrom, f.accNext, f.accPayload, f.accGathered = nil, nil, cursor, cursor, 0, true
	f.probeAt = cursor + pipeline.Position(f.r.opts.SizeBytes)
}

// gather reads what the log holds after the records gathered so far, up
// to the size hint, and reports whether the batch is full: the hint is
// reached, or the log holds more than fits.
func (f *flights) gather(head pipeline.Position) (full bool, err error) {
	size := f.r.opts.SizeBytes
	remaining := size - f.accPayload
	if remaining <= 0 {
		return true, nil
	}
	if f.accNext >= head {
		return false, nil
	}
	recs, next, err := f.r.opts.Buffer.Read(f.ctx, f.accNext, remaining, 0, 0)
	if err != nil {
		return false, err
	}
	p := payloadBytes(recs)
	if len(f.acc) > 0 && p > remaining {
		// A single record that does not fit: the batch is full without
		// it (it starts the next one).
		f.r.opts.Buffer.Release(recs)
		return true, nil
	}
	f.acc = append(f.acc, recs...)
	f.accReads = append(f.accReads, recs)
	f.accNext, f.accPayload = next, f.accPayload+p
	if f.accPayload >= size || next < head {
		return true, nil
	}
	f.probeAt = estimateProbe(f.accFrom, next, f.accPayload, size)
	return false, nil
}

// oldest returns the arrival time of the record at pos, the start of the
// next batch: the buffer's oldest undelivered record when nothing is in
// flight, the first record gathered, or else read from the log (once per
// position).
func (f *flights) oldest(pos pipeline.Position, committed pipeline.Position, stOldest time.Time) (time.Time, error) {
	if pos == committed && !stOldest.IsZero() {
		return stOldest, nil
	}
	if f.accGathered && f.accFrom == pos && len(f.acc) > 0 && !f.acc[0].Arrived.IsZero() {
		return f.acc[0].Arrived, nil
	}
	if f.peekAt == pos && !f.peekTime.IsZero() {
		return f.peekTime, nil
	}
	recs, _, err := f.r.opts.Buffer.Read(f.ctx, pos, 1, 1, 0)
	if err != nil {
		return time.Time{}, err
	}
	t := time.Now()
	if len(recs) > 0 && !recs[0].Arrived.IsZero() {
		t = recs[0].Arrived
	}
	f.r.opts.Buffer.Release(recs)
	f.peekAt, f.peekTime = pos, t
	return t, nil
}

// loop waits for a batch to be due and a slot to be free, dispatches the
// batch, and repeats.
func (f *flights) loop() error {
	r := f.r
	var (
		drainAt    pipeline.Position
		draining   bool
		stopping   bool
		timer      = time.NewTimer(time.Hour)
		interval   = r.opts.Interval
		buf        = r.opts.Buffer
		notify     = buf.Notify()
		readErrors = 0
	)
	timer.Stop()
	defer timer.Stop()
	readFailed := func(what string, err error, args ...any) error {
		if f.ctx.Err() != nil {
			return f.ctx.Err()
		}
		if errors.Is(err, pipeline.ErrClosed) {
			return fmt.Errorf("read buffer: %w", err)
		}
		r.logError("read", what, err, args...)
		if err := r.sleep(f.ctx, r.backoff(readErrors, 0)); err != nil {
			return err
		}
		readErrors++
		return nil
	}
	for {
		if err := f.ctx.Err(); err != nil {
			return err
		}
		// Take the results that are in without waiting.
		for len(f.results) > 0 {
			if err := f.finish(<-f.results); err != nil {
				return err
			}
		}
		st := buf.State()
		cursor := f.next(st.Committed)
		if !stopping && r.stopping() {
			// Stopping is draining up to the end of what is in flight.
			stopping, draining, drainAt = true, true, cursor
			r.log.Info("stopping: finishing the batches in flight", "in_flight", len(f.batches), "backlog_bytes", st.Bytes)
		}
		if !draining && r.draining() {
			draining, drainAt = true, st.Head
			r.log.Info("draining", "backlog_bytes", st.Bytes, "until", uint64(drainAt), "in_flight", len(f.batches))
		}
		if draining && len(f.batches) == 0 && st.Committed >= drainAt {
			return nil
		}
		f.startGathering(cursor)
		var wait time.Duration = -1
		free := len(f.batches) < r.opts.MaxInFlight
		if free && st.Head > cursor && !(draining && cursor >= drainAt) {
			oldest, err := f.oldest(cursor, st.Committed, st.Oldest)
			if err != nil {
				if err := readFailed("reading the buffer failed", err); err != nil {
					return err
				}
				continue
			}
			dueAt := oldest.Add(interval)
			due := draining || interval == 0 || !time.Now().Before(dueAt)
			if due || st.Head >= f.probeAt {
				full, err := f.gather(st.Head)
				if err != nil {
					if err := readFailed("reading the buffer failed", err); err != nil {
						return err
					}
					continue
				}
				readErrors = 0
				due = due || full
			}
			if due {
				if len(f.acc) == 0 || f.accNext <= cursor {
					// State and Read disagree; should not happen. Back off
					// rather than spin.
					if err := readFailed("buffer returned no records below its head", errEmptyRead,
						"from", uint64(cursor), "head", uint64(st.Head)); err != nil {
						return err
					}
					continue
				}
				recs, reads, id := f.acc, f.accReads, pipeline.BatchID{First: cursor, End: f.accNext}
				f.acc, f.accReads, f.accGathered = nil, nil, false
				if err := f.dispatch(recs, reads, id, true); err != nil {
					return err
				}
				continue
			}
			wait = max(time.Until(dueAt), time.Millisecond)
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-f.ctx.Done():
			return f.ctx.Err()
		case res := <-f.results:
			if err := f.finish(res); err != nil {
				return err
			}
		case <-f.notifyWake(notify, free):
		case <-timer.C:
		case <-r.drainWake(draining):
		case <-r.stopWake(stopping):
		}
		timer.Stop()
	}
}

// notifyWake returns the buffer's notification channel while a batch could
// be dispatched; when every slot is taken only completions matter (a
// notification left pending would make the wait spin).
func (f *flights) notifyWake(notify <-chan struct{}, free bool) <-chan struct{} {
	if free {
		return notify
	}
	return nil
}

// stopWake is drainWake for Stop.
func (r *Runner) stopWake(stopping bool) <-chan struct{} {
	if stopping {
		return nil
	}
	return r.stopCh
}

// drainWake returns the drain channel until draining has started, then nil
// (a closed channel would make the wait spin).
func (r *Runner) drainWake(draining bool) <-chan struct{} {
	if draining {
		return nil
	}
	return r.drainCh
}
