package assemble

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/pipeline"
)

// router is the Appender the API writes to: each stream's records go
// through its gate to its buffer. A reload adds and removes gates, and
// swaps a gate's buffer when a stream's buffer options change; the
// streams it leaves alone keep their gates, so their appends never wait
// for it.
type router struct {
	mu    sync.RWMutex
	gates map[string]*gate
}

// gate is one stream's way into its buffer. Appends hold it shared; a
// buffer swap holds it exclusively, so it waits for the appends in
// progress and the next ones wait for the new buffer (a pause, not an
// error).
type gate struct {
	mu  sync.RWMutex
	buf buffer.Buffer // nil once the stream is removed

	// Replays (`sluice dlq replay`) of the stream append one at a time,
	// so that checking what a run stored and storing the rest is atomic.
	replayMu sync.Mutex
	replayed map[string]uint64 // the last seq stored per run, for a buffer without positions
}

func newRouter() *router { return &router{gates: map[string]*gate{}} }

func (r *router) Append(ctx context.Context, stream string, recs []pipeline.Record) error {
	r.mu.RLock()
	g := r.gates[stream]
	r.mu.RUnlock()
	if g == nil {
		return fmt.Errorf("no buffer for stream %q", stream)
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.buf == nil {
		return fmt.Errorf("stream %q was removed by a reload", stream)
	}
	if len(recs) > 0 && recs[0].Meta[pipeline.MetaReplayID] != "" {
		return g.appendReplay(ctx, recs)
	}
	return g.buf.Append(ctx, recs)
}

// positioned is a buffer that tracks record positions (the disk buffer:
// for a DirectPut stream, the replay runs' numbers).
type positioned interface{ Positions() map[string]string }

// appendReplay stores the records of a replay run it does not hold yet:
// their numbers are consecutive, so those it holds (at or below the last
// number it stored for the run) are a prefix, skipped with their IDs left
// empty. A disk buffer knows the last number from its records, durably,
// whatever crashed; a memory buffer, which loses its records on a
// restart anyway, from memory.
func (g *gate) appendReplay(ctx context.Context, recs []pipeline.Record) error {
	g.replayMu.Lock()
	defer g.replayMu.Unlock()
	run := recs[0].Meta[pipeline.MetaReplayID]
	last, have := g.replayed[run]
	if p, ok := g.buf.(positioned); ok {
		if v, found := p.Positions()[run]; found {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("replay run %s: stored position %q: %w", run, v, err)
			}
			last, have = n, true
		}
	}
	skip := 0
	for have && skip < len(recs) {
		n, err := strconv.ParseUint(recs[skip].Meta[pipeline.MetaReplaySeq], 10, 64)
		if err != nil {
			return fmt.Errorf("replay run %s: record number: %w", run, err)
		}
		if n > last {
			break
		}
		skip++
	}
	if skip == len(recs) {
		return nil
	}
	if err := g.buf.Append(ctx, recs[skip:]); err != nil {
		return err
	}
	if _, ok := g.buf.(positioned); !ok {
		n, _ := strconv.ParseUint(recs[len(recs)-1].Meta[pipeline.MetaReplaySeq], 10, 64)
		if g.replayed == nil {
			g.replayed = map[string]uint64{}
		}
		g.replayed[run] = n
	}
	return nil
}

// add routes stream to buf.
func (r *router) add(stream string, buf buffer.Buffer) {
	r.mu.Lock()
	r.gates[stream] = &gate{buf: buf}
	r.mu.Unlock()
}

// remove stops routing to stream and returns once no append to its
// buffer is in progress.
func (r *router) remove(stream string) {
	r.mu.Lock()
	g := r.gates[stream]
	delete(r.gates, stream)
	r.mu.Unlock()
	if g != nil {
		g.mu.Lock()
		g.buf = nil
		g.mu.Unlock()
	}
}

// pause holds stream's appends (those in progress finish first) until
// the returned function is called with the buffer to resume with.
func (r *router) pause(stream string) (resume func(buffer.Buffer)) {
	r.mu.RLock()
	g := r.gates[stream]
	r.mu.RUnlock()
	if g == nil {
		return func(buffer.Buffer) {}
	}
	g.mu.Lock()
	return func(b buffer.Buffer) {
		g.buf = b
		g.mu.Unlock()
	}
}
