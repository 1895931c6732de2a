package assemble

import (
	"context"
	"fmt"
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
	return g.buf.Append(ctx, recs)
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
