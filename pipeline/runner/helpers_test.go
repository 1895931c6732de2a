package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/destinations/file"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

// env is one stream under test: a buffer, a file destination writing to
// root, metrics in their own registry.
type env struct {
	t       *testing.T
	stream  string
	root    string
	buf     buffer.Buffer
	file    *object.Writer
	reg     *prometheus.Registry
	metrics *Metrics
}

func newEnv(t *testing.T, mods ...func(*object.Options)) *env {
	t.Helper()
	e := &env{t: t, stream: "s", root: t.TempDir(), reg: prometheus.NewRegistry()}
	e.buf = memory.New(memory.Options{})
	t.Cleanup(func() { _ = e.buf.Close() })
	d, err := newFile(e.root, e.stream, mods...)
	if err != nil {
		t.Fatal(err)
	}
	e.file = d
	m, err := NewMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	e.metrics = m
	return e
}

// newFile is a file destination writing to root.
func newFile(root, stream string, mods ...func(*object.Options)) (*object.Writer, error) {
	o := file.DefaultOptions()
	o.Path = root
	for _, m := range mods {
		m(&o.Options)
	}
	cfg, err := file.Compile(o)
	if err != nil {
		return nil, err
	}
	return file.New(context.Background(), cfg, stream, pipeline.Deps{})
}

// opts returns runner options with fast backoffs, delivering to the file
// destination (dead letters too).
func (e *env) opts() Options {
	return Options{
		Stream:          e.stream,
		Buffer:          e.buf,
		Destination:     e.file,
		DestinationName: "file",
		ErrorOutput:     e.file,
		SizeBytes:       1 << 20,
		Interval:        time.Hour,
		RetryDuration:   time.Minute,
		BackoffBase:     time.Millisecond,
		BackoffMax:      5 * time.Millisecond,
		Metrics:         e.metrics,
	}
}

// running is a Runner started in a goroutine.
type running struct {
	r      *Runner
	cancel context.CancelFunc
	done   chan error
}

func (e *env) start(o Options) *running {
	e.t.Helper()
	r, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-rn.done:
		case <-time.After(10 * time.Second):
			e.t.Error("runner did not stop within 10s of cancellation")
		}
	})
	return rn
}

// wait returns Run's result, failing the test after timeout.
func (rn *running) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-rn.done:
		rn.done <- err // for the cleanup
		return err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %v", timeout)
		return nil
	}
}

func (e *env) append(datas ...[]byte) []pipeline.Record {
	e.t.Helper()
	recs := make([]pipeline.Record, len(datas))
	for i, d := range datas {
		recs[i] = pipeline.Record{Data: d}
	}
	if err := e.buf.Append(context.Background(), recs); err != nil {
		e.t.Fatalf("Append: %v", err)
	}
	return recs
}

// objects returns the data objects (outside errors/), keyed by key.
func (e *env) objects() map[string][]byte {
	e.t.Helper()
	out := map[string][]byte{}
	for k, v := range readTree(e.t, e.root) {
		if !strings.HasPrefix(k, file.DefaultErrorOutputPrefix) {
			out[k] = v
		}
	}
	return out
}

// deadLetters returns the parsed error records under errors/<outType>/.
func (e *env) deadLetters(outType string) []errorRecord {
	e.t.Helper()
	return parseDeadLetters(e.t, readTree(e.t, e.root), file.DefaultErrorOutputPrefix+outType+"/")
}

func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			return nil // temporary file being written
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type errorRecord struct {
	AttemptsMade           int    `json:"attemptsMade"`
	ArrivalTimestamp       int64  `json:"arrivalTimestamp"`
	ErrorCode              string `json:"errorCode"`
	ErrorMessage           string `json:"errorMessage"`
	AttemptEndingTimestamp int64  `json:"attemptEndingTimestamp"`
	RawData                string `json:"rawData"`
}

func parseDeadLetters(t *testing.T, tree map[string][]byte, prefix string) []errorRecord {
	t.Helper()
	var out []errorRecord
	keys := slices.Sorted(mapKeys(tree))
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(tree[k]))
		dec.DisallowUnknownFields()
		for dec.More() {
			var r errorRecord
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			out = append(out, r)
		}
	}
	return out
}

func (r errorRecord) data(t *testing.T) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(r.RawData)
	if err != nil {
		t.Fatalf("rawData %q: %v", r.RawData, err)
	}
	return string(b)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// eventually polls cond until it holds or the timeout expires.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// committedAll reports whether everything appended is committed.
func (e *env) committedAll() bool {
	st := e.buf.State()
	return st.Committed == st.Head
}

// metric returns the value of the series of name with the given labels
// (0 if absent).
func (e *env) metric(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// scripted wraps a destination: each call is answered by the next step
// (nil step or no step left: pass through to the wrapped destination).
type scripted struct {
	next  pipeline.Destination
	mu    sync.Mutex
	steps []func(ctx context.Context, b pipeline.Batch) error
	calls []pipeline.Batch // copies of the delivered batches
	times []time.Time
	n     atomic.Int32
}

func (s *scripted) Deliver(ctx context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	cp := b
	cp.Records = nil
	for _, r := range b.Records {
		r.Data = bytes.Clone(r.Data)
		cp.Records = append(cp.Records, r)
	}
	s.calls = append(s.calls, cp)
	s.times = append(s.times, time.Now())
	var step func(context.Context, pipeline.Batch) error
	if len(s.steps) > 0 {
		step, s.steps = s.steps[0], s.steps[1:]
	}
	s.mu.Unlock()
	s.n.Add(1)
	if step != nil {
		return step(ctx, b)
	}
	return s.next.Deliver(ctx, b)
}

func (s *scripted) Close(ctx context.Context) error { return s.next.Close(ctx) }
func (s *scripted) Limits() pipeline.Limits         { return s.next.Limits() }
func (s *scripted) Ready(ctx context.Context) error { return s.next.Ready(ctx) }
func (s *scripted) Describe(in pipeline.DescribeInput) pipeline.Description {
	return s.next.Describe(in)
}

func (s *scripted) batches() []pipeline.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// codedError is an error with a Firehose-style code.
type codedError struct{ code string }

func (e *codedError) Error() string     { return "failure " + e.code }
func (e *codedError) ErrorCode() string { return e.code }

var errTest = errors.New("test failure")

func records(n, size int, fill func(i int) byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{fill(i)}, size)
	}
	return out
}

func concat(datas [][]byte) []byte { return bytes.Join(datas, nil) }
