package assemble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Readiness: every stream's buffer must accept appends and its destination
// and error output must be reachable. Probes run in the background, every
// probeInterval, each bounded by probeTimeout and all streams at once, so
// /readyz answers from the last results without doing I/O and one slow
// destination delays no other stream.
const (
	probeInterval = 2 * time.Second
	probeTimeout  = 2 * time.Second
)

// probe is one readiness check of a stream.
type probe struct {
	what  string // "buffer", "destination", "error output"
	check func(ctx context.Context) error
}

// health holds the last result of every stream's probes.
type health struct {
	log     *slog.Logger
	metrics *healthMetrics

	mu      sync.Mutex
	streams map[string][]probe
	checked bool
	failing map[string]string // stream → reason
}

type healthMetrics struct {
	ready *prometheus.GaugeVec
}

func newHealthMetrics(reg prometheus.Registerer) (*healthMetrics, error) {
	m := &healthMetrics{ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_stream_ready",
		Help: "1 when the stream's buffer accepts appends and its destination and error output are reachable, 0 otherwise (see /readyz).",
	}, []string{"stream"})}
	if err := reg.Register(m.ready); err != nil {
		return nil, fmt.Errorf("register readiness metric: %w", err)
	}
	return m, nil
}

func newHealth(log *slog.Logger, m *healthMetrics) *health {
	return &health{log: log, metrics: m, streams: map[string][]probe{}, failing: map[string]string{}}
}

// set makes probes stream's readiness checks (a reload replaces them).
func (h *health) set(stream string, probes []probe) {
	h.mu.Lock()
	h.streams[stream] = probes
	h.mu.Unlock()
}

// remove forgets a stream (removed by a reload).
func (h *health) remove(stream string) {
	h.mu.Lock()
	delete(h.streams, stream)
	delete(h.failing, stream)
	h.mu.Unlock()
	h.metrics.ready.DeleteLabelValues(stream)
}

// run probes every stream until ctx is done.
func (h *health) run(ctx context.Context) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		h.probeAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *health) probeAll(ctx context.Context) {
	var wg sync.WaitGroup
	h.mu.Lock()
	streams := maps.Clone(h.streams)
	h.mu.Unlock()
	for stream, probes := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.record(stream, runProbes(ctx, probes))
		}()
	}
	wg.Wait()
	h.mu.Lock()
	h.checked = true
	h.mu.Unlock()
}

// runProbes returns the first failing probe's reason, or "".
func runProbes(ctx context.Context, probes []probe) string {
	for _, p := range probes {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := p.check(pctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("no answer within %v: %w", probeTimeout, err)
			}
			return p.what + ": " + err.Error()
		}
	}
	return ""
}

func (h *health) record(stream, reason string) {
	h.mu.Lock()
	if _, ok := h.streams[stream]; !ok {
		h.mu.Unlock()
		return // removed while it was probed
	}
	prev, was := h.failing[stream]
	if reason == "" {
		delete(h.failing, stream)
	} else {
		h.failing[stream] = reason
	}
	h.mu.Unlock()
	switch {
	case reason != "" && (!was || prev != reason):
		h.log.Warn("stream not ready", "stream", stream, "reason", reason)
	case reason == "" && was:
		h.log.Info("stream ready again", "stream", stream)
	}
	v := 1.0
	if reason != "" {
		v = 0
	}
	h.metrics.ready.WithLabelValues(stream).Set(v)
}

// reason is why stream is not ready, "" when it is (or not probed yet).
func (h *health) reason(stream string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failing[stream]
}

// ready returns nil when every stream is ready, else an error naming each
// stream that is not and why.
func (h *health) ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.checked {
		return errors.New("readiness not checked yet")
	}
	if len(h.failing) == 0 {
		return nil
	}
	lines := make([]string, 0, len(h.failing))
	for s, r := range h.failing {
		lines = append(lines, "stream "+s+": "+r)
	}
	slices.Sort(lines)
	return errors.New(strings.Join(lines, "\n"))
}
