package wasm

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/pipeline"
)

// guests holds the Go test guest (testdata/guest), compiled once per test
// binary run.
var guests = testpeers.NewGuests()

func TestMain(m *testing.M) {
	code := m.Run()
	guests.Remove()
	os.Exit(code)
}

// guestModule returns the path of the Go test guest, compiled for wasip1
// as a reactor.
func guestModule(tb testing.TB) string {
	tb.Helper()
	return guests.Go(tb, "testdata/guest")
}

// sharedCache is a compilation cache directory shared by the tests, so
// that the Go guest is compiled once per run (compiling it under -race
// takes seconds).
func sharedCache(tb testing.TB) string {
	tb.Helper()
	guestModule(tb)
	return filepath.Join(guests.Dir(tb), "cache")
}

// watModule compiles WebAssembly text with wat2wasm.
func watModule(tb testing.TB, name, src string) string {
	tb.Helper()
	return testpeers.WAT(tb, name, src)
}

// watABI is the common part of the WAT guests: memory, version, an
// allocator handing out a fixed region at 64 KiB.
const watABI = `
  (memory (export "memory") 4)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_alloc") (param i32) (result i32) (i32.const 65536))
`

// testEnv is a processor with its own registry and captured log.
type testEnv struct {
	p   *Processor
	reg *prometheus.Registry
	log *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestEnv(tb testing.TB, opts Options) *testEnv {
	tb.Helper()
	env := &testEnv{reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	if opts.CacheDir == "" {
		opts.CacheDir = sharedCache(tb)
	}
	deps := pipeline.Deps{Logger: slog.New(slog.NewTextHandler(env.log, nil)), Registry: env.reg, DataDir: tb.TempDir()}
	p, err := New(compile(tb, opts), deps)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	env.p = p
	return env
}

func compile(tb testing.TB, opts Options) Compiled {
	tb.Helper()
	c, err := opts.Compile()
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return c
}

func testOptions(module string) Options {
	o := DefaultOptions()
	o.Module = module
	o.Instances = 1
	return o
}

// batch makes records whose data are the given strings, with IDs r0, r1…
func batch(data ...string) pipeline.Batch {
	recs := make([]pipeline.Record, len(data))
	arrived := time.UnixMilli(1700000000000)
	for i, d := range data {
		recs[i] = pipeline.Record{ID: fmt.Sprintf("r%d", i), Data: []byte(d), Arrived: arrived}
	}
	return pipeline.Batch{Stream: "s1", Records: recs, ID: pipeline.BatchID{First: 0, End: pipeline.Position(len(data))}}
}

// outcome is what happened to one input record.
type outcome struct {
	ok   *pipeline.Record
	code string
	msg  string
}

// process runs a batch and checks the processor's invariants: every input
// record is either in the output (in input order), in exactly one
// RecordError, or was dropped (returned as neither). It returns the
// outcome per input index (nil ok and empty code: dropped).
func (e *testEnv) process(tb testing.TB, b pipeline.Batch) []outcome {
	tb.Helper()
	orig := make([]string, len(b.Records))
	for i := range b.Records {
		orig[i] = string(b.Records[i].Data)
	}
	out, errs, err := e.p.Process(context.Background(), b)
	if err != nil {
		tb.Fatalf("Process: %v", err)
	}
	for i := range b.Records {
		if string(b.Records[i].Data) != orig[i] {
			tb.Errorf("input record %d changed: %q, was %q", i, b.Records[i].Data, orig[i])
		}
	}
	res := make([]outcome, len(b.Records))
	seen := make([]bool, len(b.Records))
	for _, re := range errs {
		if re.Index < 0 || re.Index >= len(b.Records) || seen[re.Index] {
			tb.Fatalf("bad or repeated RecordError index %d", re.Index)
		}
		seen[re.Index] = true
		ce, ok := re.Err.(*pipeline.CodedError)
		if !ok || ce.OutputType != pipeline.OutputProcessingFailed {
			tb.Fatalf("record %d: error %#v is not a CodedError with output type %s", re.Index, re.Err, pipeline.OutputProcessingFailed)
		}
		res[re.Index] = outcome{code: ce.Code, msg: ce.Err.Error()}
	}
	next := 0
	for j := range out.Records {
		r := &out.Records[j]
		for next < len(b.Records) && b.Records[next].ID != r.ID {
			next++
		}
		if next == len(b.Records) {
			tb.Fatalf("output record %d (%s) is not an input record in order", j, r.ID)
		}
		if seen[next] {
			tb.Fatalf("record %d is both delivered and failed", next)
		}
		seen[next] = true
		res[next].ok = r
		next++
	}
	size := 0
	for i := range out.Records {
		size += len(out.Records[i].Data)
	}
	if out.Bytes != size || out.Stream != b.Stream || out.ID != b.ID {
		tb.Errorf("output batch: Bytes %d Stream %q ID %v, want %d %q %v", out.Bytes, out.Stream, out.ID, size, b.Stream, b.ID)
	}
	return res
}

func (e *testEnv) counter(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	var c prometheus.Counter
	switch name {
	case "calls":
		c = e.p.m.calls.WithLabelValues(labels...)
	case "records":
		c = e.p.m.records.WithLabelValues(labels...)
	case "instances":
		c = e.p.m.instances.WithLabelValues(labels...)
	default:
		tb.Fatalf("unknown counter %s", name)
	}
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
