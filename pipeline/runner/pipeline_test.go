package runner

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/pipeline"
)

// gate is a destination whose deliveries each wait for a release (or pass
// at once when open), recording what it saw. It stands for any
// destination: the runner's contract with it is the interface.
type gate struct {
	limits pipeline.Limits

	mu       sync.Mutex
	open     bool
	release  map[pipeline.Position]chan struct{} // by batch First
	started  []pipeline.BatchID
	done     []pipeline.BatchID
	data     map[pipeline.BatchID][]string
	inflight int
	peak     int
	arrived  chan pipeline.BatchID
}

func newGate() *gate {
	return &gate{release: map[pipeline.Position]chan struct{}{}, data: map[pipeline.BatchID][]string{},
		arrived: make(chan pipeline.BatchID, 1024)}
}

func (g *gate) ch(first pipeline.Position) chan struct{} {
	c, ok := g.release[first]
	if !ok {
		c = make(chan struct{})
		g.release[first] = c
	}
	return c
}

// let releases the delivery of the batch starting at first.
func (g *gate) let(first pipeline.Position) {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.ch(first))
}

func (g *gate) openAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
	for _, c := range g.release {
		select {
		case <-c:
		default:
			close(c)
		}
	}
}

func (g *gate) Deliver(ctx context.Context, b pipeline.Batch) error {
	g.mu.Lock()
	g.started = append(g.started, b.ID)
	g.inflight++
	g.peak = max(g.peak, g.inflight)
	var wait chan struct{}
	if !g.open {
		wait = g.ch(b.ID.First)
	}
	g.mu.Unlock()
	g.arrived <- b.ID
	defer func() {
		g.mu.Lock()
		g.inflight--
		g.mu.Unlock()
	}()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var lines []string
	for _, r := range b.Records {
		lines = append(lines, string(r.Data))
	}
	g.data[b.ID] = lines
	g.done = append(g.done, b.ID)
	return nil
}

func (g *gate) Limits() pipeline.Limits                              { return g.limits }
func (g *gate) Ready(context.Context) error                          { return nil }
func (g *gate) Describe(pipeline.DescribeInput) pipeline.Description { return nil }
func (g *gate) Close(context.Context) error                          { return nil }
func (g *gate) snapshot() (started, done []pipeline.BatchID, peak int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.started), slices.Clone(g.done), g.peak
}

// memOutput is an error output keeping what it is given.
type memOutput struct {
	mu      sync.Mutex
	dead    []pipeline.DeadLetter
	backups []pipeline.Batch
}

func (o *memOutput) WriteDeadLetters(_ context.Context, _ pipeline.BatchID, _ string, dls []pipeline.DeadLetter) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dead = append(o.dead, dls...)
	return nil
}

func (o *memOutput) Backup(_ context.Context, b pipeline.Batch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	cp := b
	cp.Records = slices.Clone(b.Records)
	o.backups = append(o.backups, cp)
	return nil
}
func (o *memOutput) Ready(context.Context) error { return nil }
func (o *memOutput) Close(context.Context) error { return nil }

// pipeEnv is a memory buffer, a gate destination and runner options for
// pipelining tests: one record per batch (SizeBytes 1), zero interval.
type pipeEnv struct {
	t   *testing.T
	buf *memory.Buffer
	g   *gate
	out *memOutput
	m   *Metrics
}

func newPipeEnv(t *testing.T) *pipeEnv {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	buf := memory.New(memory.Options{})
	t.Cleanup(func() { _ = buf.Close() })
	return &pipeEnv{t: t, buf: buf, g: newGate(), out: &memOutput{}, m: m}
}

func (e *pipeEnv) opts(inflight int) Options {
	return Options{
		Stream: "s", Buffer: e.buf, Destination: e.g, DestinationName: "gate", ErrorOutput: e.out,
		SizeBytes: 1, Interval: 0, MaxInFlight: inflight, RetryDuration: time.Minute,
		BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond, Metrics: e.m,
	}
}

func (e *pipeEnv) run(o Options) (cancel func(), done chan error) {
	r, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		<-done
	})
	return cancel, done
}

func (e *pipeEnv) appendN(prefix string, n int) {
	for i := range n {
		if err := e.buf.Append(context.Background(), []pipeline.Record{{Data: fmt.Appendf(nil, "%s%d", prefix, i)}}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// arrivals waits for n deliveries to start and returns their identities.
func (e *pipeEnv) arrivals(n int) []pipeline.BatchID {
	e.t.Helper()
	var ids []pipeline.BatchID
	for range n {
		select {
		case id := <-e.g.arrived:
			ids = append(ids, id)
		case <-time.After(10 * time.Second):
			e.t.Fatalf("only %d of %d deliveries started", len(ids), n)
		}
	}
	return ids
}

// TestPipelinedCommitsOnlyUpToTheLowestUnfinishedBatch: with three
// batches in flight and the first one held, the later two finish but
// nothing is committed; once the first finishes, all three are.
func TestPipelinedCommitsOnlyUpToTheLowestUnfinishedBatch(t *testing.T) {
	e := newPipeEnv(t)
	e.appendN("r", 3)
	e.run(e.opts(3))
	ids := e.arrivals(3) // all three in flight at once
	slices.SortFunc(ids, func(a, b pipeline.BatchID) int { return int(a.First) - int(b.First) })
	e.g.let(ids[1].First)
	e.g.let(ids[2].First)
	eventually(t, 5*time.Second, "batches 2 and 3 delivered", func() bool {
		_, done, _ := e.g.snapshot()
		return len(done) == 2
	})
	st := e.buf.State()
	if st.Committed != 0 {
		t.Fatalf("committed %d while the first batch is still in flight", st.Committed)
	}
	if len(st.Inflight) != 3 {
		t.Fatalf("in flight %v, want the three batches", st.Inflight)
	}
	e.g.let(ids[0].First)
	eventually(t, 5*time.Second, "everything committed", func() bool {
		st := e.buf.State()
		return st.Committed == ids[2].End && len(st.Inflight) == 0
	})
}

// TestMaxInFlightBoundsConcurrency: never more deliveries at once than
// MaxInFlight, and that many are reached.
func TestMaxInFlightBoundsConcurrency(t *testing.T) {
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := newPipeEnv(t)
			e.appendN("r", 12)
			e.run(e.opts(n))
			held := e.arrivals(n) // n deliveries are held at once
			select {
			case id := <-e.g.arrived:
				t.Fatalf("delivery %v started while %d were in flight", id, n)
			case <-time.After(50 * time.Millisecond):
			}
			for _, id := range held {
				e.g.let(id.First)
			}
			e.g.openAll()
			eventually(t, 5*time.Second, "everything committed", func() bool { return e.buf.State().Committed == e.buf.State().Head })
			started, _, peak := e.g.snapshot()
			if peak != n {
				t.Fatalf("peak concurrency %d, want %d", peak, n)
			}
			if n == 1 && !slices.IsSortedFunc(started, func(a, b pipeline.BatchID) int { return int(a.First) - int(b.First) }) {
				t.Fatalf("max_in_flight 1 delivered out of order: %v", started)
			}
		})
	}
}

// TestHardStopRedeliversEveryBatchInFlight: after a hard stop with three
// batches in flight, the next run rebuilds each under its own identity
// with the same records, and delivers nothing twice that was committed.
func TestHardStopRedeliversEveryBatchInFlight(t *testing.T) {
	e := newPipeEnv(t)
	e.appendN("r", 5)
	o := e.opts(3)
	cancel, done := e.run(o)
	first := e.arrivals(3)
	slices.SortFunc(first, func(a, b pipeline.BatchID) int { return int(a.First) - int(b.First) })
	cancel()
	<-done
	done <- nil // for the cleanup
	if got := e.buf.State().Inflight; !slices.Equal(got, first) {
		t.Fatalf("in flight after the hard stop: %v, want %v", got, first)
	}

	e.g.openAll()
	e.run(o)
	eventually(t, 5*time.Second, "everything committed", func() bool { st := e.buf.State(); return st.Committed == st.Head })
	_, delivered, _ := e.g.snapshot()
	for _, id := range first {
		if !slices.Contains(delivered, id) {
			t.Fatalf("batch %v in flight at the stop was not redelivered under its identity (delivered %v)", id, delivered)
		}
	}
	var lines []string
	for _, id := range delivered {
		lines = append(lines, e.g.data[id]...)
	}
	slices.Sort(lines)
	if want := []string{"r0", "r1", "r2", "r3", "r4"}; !slices.Equal(lines, want) {
		t.Fatalf("delivered %v, want %v", lines, want)
	}
}

// TestSplitToDestinationLimits: a batch larger than the destination's
// limits is delivered as parts 1, 2, ... of its identity, in order, each
// within the limits; a record larger than MaxBytes goes alone.
func TestSplitToDestinationLimits(t *testing.T) {
	e := newPipeEnv(t)
	e.g.openAll()
	e.g.limits = pipeline.Limits{MaxRecords: 3, MaxBytes: 10}
	recs := []pipeline.Record{{Data: []byte("aaaa")}, {Data: []byte("bbbb")}, {Data: []byte("cc")}, {Data: []byte("dddddddddddddddd")},
		{Data: []byte("e")}, {Data: []byte("f")}, {Data: []byte("g")}, {Data: []byte("h")}}
	if err := e.buf.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	o := e.opts(1)
	o.SizeBytes = 1 << 20
	e.run(o)
	eventually(t, 5*time.Second, "everything committed", func() bool { st := e.buf.State(); return st.Committed == st.Head })
	_, done, _ := e.g.snapshot()
	var parts [][]string
	for i, id := range done {
		if id.Part != uint32(i+1) || id.First != 0 {
			t.Fatalf("delivery %d has identity %v, want part %d of the batch", i, id, i+1)
		}
		parts = append(parts, e.g.data[id])
	}
	want := [][]string{{"aaaa", "bbbb", "cc"}, {"dddddddddddddddd"}, {"e", "f", "g"}, {"h"}}
	if fmt.Sprint(parts) != fmt.Sprint(want) {
		t.Fatalf("parts %v, want %v", parts, want)
	}
}

// TestBackupAllData: with BackupAll every processed batch is also written
// to the error output's backup, under the batch identity.
func TestBackupAllData(t *testing.T) {
	e := newPipeEnv(t)
	e.g.openAll()
	e.appendN("r", 3)
	o := e.opts(2)
	o.BackupAll = true
	e.run(o)
	eventually(t, 5*time.Second, "everything committed", func() bool { st := e.buf.State(); return st.Committed == st.Head })
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	var got []string
	for _, b := range e.out.backups {
		if b.ID.Part != 0 || b.ID.Round != 0 {
			t.Fatalf("backup under %v, want the batch identity", b.ID)
		}
		for _, r := range b.Records {
			got = append(got, string(r.Data))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"r0", "r1", "r2"}) {
		t.Fatalf("backed up %v", got)
	}
}

func TestSplitToLimitsIsDeterministic(t *testing.T) {
	recs := make([]pipeline.Record, 25)
	for i := range recs {
		recs[i].Data = bytes.Repeat([]byte{'x'}, i%7)
	}
	a := splitToLimits(recs, pipeline.Limits{MaxRecords: 4, MaxBytes: 12})
	b := splitToLimits(slices.Clone(recs), pipeline.Limits{MaxRecords: 4, MaxBytes: 12})
	if len(a) != len(b) {
		t.Fatal("two splits of the same records differ")
	}
	n := 0
	for i := range a {
		if len(a[i]) != len(b[i]) || len(a[i]) > 4 || len(a[i]) == 0 || payloadBytes(a[i]) > 12 && len(a[i]) > 1 {
			t.Fatalf("part %d: %d records, %d bytes", i, len(a[i]), payloadBytes(a[i]))
		}
		n += len(a[i])
	}
	if n != len(recs) {
		t.Fatalf("parts hold %d records of %d", n, len(recs))
	}
}
