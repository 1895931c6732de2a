package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

func TestSizeHintCutsBatches(t *testing.T) {
	e := newEnv(t)
	o := e.opts()
	o.SizeBytes = 1000
	rn := e.start(o)
	datas := records(25, 100, func(i int) byte { return byte('a' + i) })
	e.append(datas...)
	// Two full batches are delivered without waiting for the interval.
	eventually(t, 5*time.Second, "two objects", func() bool { return len(e.objects()) == 2 })
	time.Sleep(50 * time.Millisecond)
	if n := len(e.objects()); n != 2 {
		t.Fatalf("%d objects before the interval, want 2 (the last 5 records wait)", n)
	}
	var got [][]byte
	for _, k := range slices.Sorted(maps.Keys(e.objects())) {
		got = append(got, e.objects()[k])
	}
	rn.r.Drain()
	if err := rn.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Run after Drain = %v", err)
	}
	objs := e.objects()
	if len(objs) != 3 {
		t.Fatalf("%d objects after drain, want 3", len(objs))
	}
	var all [][]byte
	for _, v := range objs {
		all = append(all, v)
	}
	slices.SortFunc(all, func(a, b []byte) int { return bytes.Compare(a[:1], b[:1]) })
	want := [][]byte{concat(datas[0:10]), concat(datas[10:20]), concat(datas[20:25])}
	for i := range want {
		if !bytes.Equal(all[i], want[i]) {
			t.Errorf("object %d: %d bytes %.20q..., want %d bytes %.20q...", i, len(all[i]), all[i], len(want[i]), want[i])
		}
	}
	for _, g := range got {
		if len(g) != 1000 {
			t.Errorf("size-cut object of %d bytes, want 1000", len(g))
		}
	}
	if !e.committedAll() {
		t.Error("not everything committed after drain")
	}
}

// With tiny records the log (frames included) is much larger than the
// payload: batches must still be cut on payload bytes.
func TestSizeHintMeasuresPayload(t *testing.T) {
	e := newEnv(t)
	o := e.opts()
	o.SizeBytes = 100
	e.start(o)
	for i := range 1050 {
		e.append([]byte{byte('0' + i%10)})
	}
	eventually(t, 5*time.Second, "10 objects", func() bool { return len(e.objects()) == 10 })
	time.Sleep(50 * time.Millisecond)
	objs := e.objects()
	if len(objs) != 10 {
		t.Fatalf("%d objects, want 10", len(objs))
	}
	for k, v := range objs {
		if len(v) != 100 {
			t.Errorf("%s: %d bytes, want 100", k, len(v))
		}
	}
	if st := e.buf.State(); st.Records != 50 {
		t.Errorf("%d records left, want 50", st.Records)
	}
}

func TestIntervalCutsBatches(t *testing.T) {
	e := newEnv(t)
	o := e.opts()
	o.Interval = 300 * time.Millisecond
	e.start(o)
	recs := e.append([]byte("a"), []byte("b"))
	e.append([]byte("c"))
	eventually(t, 5*time.Second, "the object", func() bool { return len(e.objects()) == 1 })
	if waited := time.Since(recs[0].Arrived); waited < o.Interval {
		t.Errorf("delivered %v after the oldest arrival, before the %v interval", waited, o.Interval)
	}
	for _, v := range e.objects() {
		if string(v) != "abc" {
			t.Errorf("object %q, want %q", v, "abc")
		}
	}
	eventually(t, time.Second, "commit", e.committedAll)
	// The next record starts a new interval.
	recs = e.append([]byte("d"))
	eventually(t, 5*time.Second, "the second object", func() bool { return len(e.objects()) == 2 })
	if waited := time.Since(recs[0].Arrived); waited < o.Interval {
		t.Errorf("second batch delivered after %v, before the interval", waited)
	}
}

func TestZeroIntervalDeliversImmediately(t *testing.T) {
	e := newEnv(t)
	o := e.opts()
	o.Interval = 0
	e.start(o)
	for i := range 3 {
		recs := e.append(fmt.Appendf(nil, "r%d", i))
		eventually(t, 2*time.Second, "delivery", func() bool { return len(e.objects()) == i+1 })
		if d := time.Since(recs[0].Arrived); d > time.Second {
			t.Errorf("record %d delivered after %v", i, d)
		}
	}
}

func TestDrain(t *testing.T) {
	t.Run("DeliversEverything", func(t *testing.T) {
		e := newEnv(t)
		o := e.opts()
		o.SizeBytes = 4096
		datas := records(50, 1000, func(i int) byte { return byte(i) })
		e.append(datas...)
		rn := e.start(o)
		rn.r.Drain()
		if err := rn.wait(t, 5*time.Second); err != nil {
			t.Fatalf("Run = %v", err)
		}
		var total int
		for _, v := range e.objects() {
			total += len(v)
			if len(v) > 4096 {
				t.Errorf("object of %d bytes above the size hint", len(v))
			}
		}
		if total != 50*1000 || !e.committedAll() {
			t.Errorf("delivered %d bytes (committed all: %v), want 50000", total, e.committedAll())
		}
	})
	t.Run("EmptyBeforeRun", func(t *testing.T) {
		e := newEnv(t)
		r, err := New(e.opts())
		if err != nil {
			t.Fatal(err)
		}
		r.Drain()
		r.Drain() // idempotent
		if err := r.Run(context.Background()); err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
}

func TestHardStopThenRestartRedeliversSameBatch(t *testing.T) {
	e := newEnv(t, func(o *object.Options) { o.Compression = "GZIP" })
	// First run: the object is written, then the "process dies" before
	// the commit (Deliver blocks until the hard stop).
	written := make(chan struct{})
	first := &scripted{next: e.file, steps: []func(context.Context, pipeline.Batch) error{
		func(ctx context.Context, b pipeline.Batch) error {
			if err := e.file.Deliver(ctx, b); err != nil {
				return err
			}
			close(written)
			<-ctx.Done()
			return ctx.Err()
		},
	}}
	o := e.opts()
	o.Destination = first
	o.Interval = 0
	rn := e.start(o)
	e.append([]byte("one"), []byte("two"))
	<-written
	// Records arriving meanwhile must not join the in-flight batch.
	e.append([]byte("three"))
	rn.cancel()
	if err := rn.wait(t, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v, want context.Canceled", err)
	}
	st := e.buf.State()
	if st.Committed != 0 || len(st.Inflight) == 0 {
		t.Fatalf("after the hard stop: %+v, want nothing committed and a batch in flight", st)
	}
	before := e.objects()
	if len(before) != 1 {
		t.Fatalf("%d objects after the first run, want 1", len(before))
	}
	// Restart: a new runner on the same buffer.
	second := &scripted{next: e.file}
	o.Destination = second
	rn2 := e.start(o)
	rn2.r.Drain()
	if err := rn2.wait(t, 5*time.Second); err != nil {
		t.Fatalf("second Run = %v", err)
	}
	calls := second.batches()
	if len(calls) != 2 || calls[0].ID != st.Inflight[0] || len(calls[0].Records) != 2 {
		t.Fatalf("second run delivered %d batches, first %v with %d records; want the in-flight batch %v with 2 records first",
			len(calls), calls[0].ID, len(calls[0].Records), st.Inflight)
	}
	after := e.objects()
	if len(after) != 2 {
		t.Fatalf("%d objects after restart, want 2 (the in-flight one overwritten, not duplicated): %v", len(after), slices.Collect(maps.Keys(after)))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Errorf("object %s changed on redelivery", k)
		}
	}
	if !e.committedAll() {
		t.Error("not committed")
	}
}

func TestRetryableFailureThenSuccess(t *testing.T) {
	e := newEnv(t)
	fail := func(context.Context, pipeline.Batch) error { return pipeline.Retryable(errTest) }
	d := &scripted{next: e.file, steps: []func(context.Context, pipeline.Batch) error{fail, fail, fail}}
	o := e.opts()
	o.Destination = d
	o.Interval = 0
	e.start(o)
	e.append([]byte("x"), []byte("y"))
	eventually(t, 5*time.Second, "commit", func() bool { return len(e.objects()) == 1 && e.committedAll() })
	calls := d.batches()
	if len(calls) != 4 {
		t.Fatalf("%d attempts, want 4", len(calls))
	}
	for _, c := range calls {
		if c.ID != calls[0].ID || len(c.Records) != 2 {
			t.Errorf("retry delivered %v with %d records, want %v with 2", c.ID, len(c.Records), calls[0].ID)
		}
	}
	lbl := map[string]string{"stream": "s", "destination": "file"}
	for name, want := range map[string]float64{
		MetricDeliveryAttempts: 4, MetricDeliverySuccess: 1, MetricDeliveryRetries: 3,
		MetricDeliveryRecords: 2, MetricDeliveryBytes: 2, MetricDeliveryDuration: 4,
	} {
		if got := e.metric(name, lbl); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if dl := e.deadLetters(pipeline.OutputDeliveryFailed); len(dl) != 0 {
		t.Errorf("%d dead letters, want none", len(dl))
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t)
	d := &scripted{next: e.file, steps: []func(context.Context, pipeline.Batch) error{
		func(context.Context, pipeline.Batch) error {
			return &pipeline.RetryableError{Err: errTest, After: 150 * time.Millisecond}
		},
	}}
	o := e.opts()
	o.Destination = d
	o.Interval = 0
	e.start(o)
	e.append([]byte("x"))
	eventually(t, 5*time.Second, "commit", func() bool { return len(e.objects()) == 1 && e.committedAll() })
	d.mu.Lock()
	gap := d.times[1].Sub(d.times[0])
	d.mu.Unlock()
	if gap < 150*time.Millisecond {
		t.Errorf("retried after %v, before the %v the destination asked for", gap, 150*time.Millisecond)
	}
}

func TestRetriesExhaustedAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	d := &scripted{next: e.file}
	for range 1000 {
		d.steps = append(d.steps, func(context.Context, pipeline.Batch) error {
			return pipeline.Retryable(fmt.Errorf("upstream: %w", &codedError{"Test.Unavailable"}))
		})
	}
	o := e.opts()
	o.Destination = d
	o.Interval = 0
	o.RetryDuration = 100 * time.Millisecond
	e.start(o)
	recs := e.append([]byte("payload-1"), []byte{}, []byte{0xff, 0x00})
	start := time.Now()
	eventually(t, 5*time.Second, "commit", e.committedAll)
	// The runner gives up once the next attempt (after its backoff, at most
	// BackoffMax) would end past the retry duration.
	if el := time.Since(start); el < o.RetryDuration-o.BackoffMax {
		t.Errorf("gave up after %v, before the %v retry duration (less one backoff of at most %v)", el, o.RetryDuration, o.BackoffMax)
	}
	attempts := int(d.n.Load())
	if attempts < 3 {
		t.Fatalf("%d attempts within the retry duration, want several", attempts)
	}
	dls := e.deadLetters(pipeline.OutputDeliveryFailed)
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dls))
	}
	for i, dl := range dls {
		if dl.data(t) != string(recs[i].Data) || dl.ErrorCode != "Test.Unavailable" || dl.AttemptsMade != attempts ||
			dl.ArrivalTimestamp != recs[i].Arrived.UnixMilli() || !strings.Contains(dl.ErrorMessage, "upstream") ||
			dl.AttemptEndingTimestamp < dl.ArrivalTimestamp {
			t.Errorf("dead letter %d = %+v; want data %q, code Test.Unavailable, %d attempts, arrival %d",
				i, dl, recs[i].Data, attempts, recs[i].Arrived.UnixMilli())
		}
	}
	if len(e.objects()) != 0 {
		t.Error("an object was delivered")
	}
	if got := e.metric(MetricDeadLetterRecords, map[string]string{"stream": "s", "code": "Test.Unavailable"}); got != 3 {
		t.Errorf("%s = %v, want 3", MetricDeadLetterRecords, got)
	}
}

// A real failure: the prefix's directory is a regular file, so the file
// destination fails with ENOTDIR (permanent) and the records are
// dead-lettered, by the same destination, under errors/.
func TestRealPermanentFailureIsDeadLettered(t *testing.T) {
	e := newEnv(t, func(o *object.Options) { o.Prefix = "blocked/" })
	if err := os.WriteFile(filepath.Join(e.root, "blocked"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o := e.opts()
	o.Interval = 0
	e.start(o)
	recs := e.append([]byte("a"), []byte("b"))
	eventually(t, 5*time.Second, "commit", e.committedAll)
	dls := e.deadLetters(pipeline.OutputDeliveryFailed)
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dls))
	}
	for i, dl := range dls {
		if dl.data(t) != string(recs[i].Data) || dl.ErrorCode != "File.InvalidPath" || dl.AttemptsMade != 1 ||
			!strings.Contains(dl.ErrorMessage, "not a directory") {
			t.Errorf("dead letter %d = %+v", i, dl)
		}
	}
	if got := e.metric(MetricDeliverySuccess, map[string]string{"stream": "s"}); got != 0 {
		t.Errorf("success = %v", got)
	}
	if got := e.metric(MetricDeliveryAttempts, map[string]string{"stream": "s"}); got != 1 {
		t.Errorf("attempts = %v, want 1 (permanent errors are not retried)", got)
	}
}

func TestPartialFailure(t *testing.T) {
	e := newEnv(t)
	d := &scripted{next: e.file}
	// First attempt: record 1 fails retryably, record 3 permanently; the
	// others are stored under the batch's identity.
	d.steps = append(d.steps, func(ctx context.Context, b pipeline.Batch) error {
		ok := b
		ok.Records = []pipeline.Record{b.Records[0], b.Records[2], b.Records[4]}
		if err := e.file.Deliver(ctx, ok); err != nil {
			return err
		}
		return &pipeline.PartialError{Failed: []pipeline.RecordError{
			{Index: 3, Err: &codedError{"Test.Rejected"}},
			{Index: 1, Err: pipeline.Retryable(errTest)},
		}}
	})
	o := e.opts()
	o.Destination = d
	o.Interval = 0
	e.start(o)
	e.append([]byte("r0"), []byte("r1"), []byte("r2"), []byte("r3"), []byte("r4"))
	eventually(t, 5*time.Second, "commit", e.committedAll)
	calls := d.batches()
	if len(calls) != 2 {
		t.Fatalf("%d delivery calls, want 2", len(calls))
	}
	orig, sub := calls[0].ID, calls[1].ID
	if len(calls[1].Records) != 1 || string(calls[1].Records[0].Data) != "r1" {
		t.Errorf("retry delivered %d records, want only r1", len(calls[1].Records))
	}
	if sub.Range() != orig || sub.Round != 1 || sub.String() == orig.String() {
		t.Errorf("retry identity %v for batch %v: want round 1 of the same range", sub, orig)
	}
	var contents []string
	for _, v := range e.objects() {
		contents = append(contents, string(v))
	}
	slices.Sort(contents)
	if want := []string{"r0r2r4", "r1"}; !slices.Equal(contents, want) {
		t.Errorf("objects %q, want %q (no overwrite, no duplicate)", contents, want)
	}
	dls := e.deadLetters(pipeline.OutputDeliveryFailed)
	if len(dls) != 1 || dls[0].data(t) != "r3" || dls[0].ErrorCode != "Test.Rejected" || dls[0].AttemptsMade != 1 {
		t.Errorf("dead letters %+v, want r3 with code Test.Rejected after 1 attempt", dls)
	}
	if got := e.metric(MetricDeliveryRecords, map[string]string{"stream": "s"}); got != 4 {
		t.Errorf("delivered records = %v, want 4", got)
	}
}

func TestRetryRoundIdentities(t *testing.T) {
	id := pipeline.BatchID{First: 100, End: 101}
	seen := map[string]bool{id.String(): true}
	for round := uint32(1); round < 40; round++ {
		s := id
		s.Round = round
		if seen[s.String()] || s.Range() != id {
			t.Fatalf("round %d: %v (seen: %v)", round, s, seen[s.String()])
		}
		seen[s.String()] = true
	}
}

func TestDeadLetterWriterFailureBlocksCommit(t *testing.T) {
	e := newEnv(t, func(o *object.Options) { o.Prefix = "blocked/" })
	if err := os.WriteFile(filepath.Join(e.root, "blocked"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The error output is a real file destination whose error prefix is
	// blocked by a regular file: writing dead letters fails (ENOTDIR).
	dlRoot := t.TempDir()
	if err := os.WriteFile(filepath.Join(dlRoot, "errors"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dlw, err := newFile(dlRoot, "s")
	if err != nil {
		t.Fatal(err)
	}
	var dlCalls atomic.Int32
	o := e.opts()
	o.Interval = 0
	o.ErrorOutput = dlWriterFunc(func(ctx context.Context, id pipeline.BatchID, stream string, dls []pipeline.DeadLetter) error {
		dlCalls.Add(1)
		return dlw.WriteDeadLetters(ctx, id, stream, dls)
	})
	rn := e.start(o)
	e.append([]byte("must not be lost"))
	eventually(t, 5*time.Second, "several dead-letter attempts", func() bool { return dlCalls.Load() >= 5 })
	if st := e.buf.State(); st.Committed != 0 || len(st.Inflight) == 0 {
		t.Fatalf("state %+v while dead letters cannot be written: want nothing committed", st)
	}
	// The error output recovers: the dead letters are written and only
	// then the batch is committed.
	if err := os.Remove(filepath.Join(dlRoot, "errors")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "commit", e.committedAll)
	dls := parseDeadLetters(t, readTree(t, dlRoot), "errors/delivery-failed/")
	if len(dls) != 1 || dls[0].data(t) != "must not be lost" {
		t.Fatalf("dead letters %+v", dls)
	}
	rn.cancel()
	if err := rn.wait(t, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

type dlWriterFunc func(ctx context.Context, id pipeline.BatchID, stream string, dls []pipeline.DeadLetter) error

func (f dlWriterFunc) Backup(context.Context, pipeline.Batch) error { return errors.New("no backup") }
func (f dlWriterFunc) Ready(context.Context) error                  { return nil }
func (f dlWriterFunc) Close(context.Context) error                  { return nil }
func (f dlWriterFunc) WriteDeadLetters(ctx context.Context, id pipeline.BatchID, stream string, dls []pipeline.DeadLetter) error {
	return f(ctx, id, stream, dls)
}

// A hard stop while dead letters cannot be written leaves the batch in
// flight: nothing is committed.
func TestHardStopWhileDeadLettersFail(t *testing.T) {
	e := newEnv(t)
	o := e.opts()
	o.Interval = 0
	o.Destination = &scripted{next: e.file, steps: []func(context.Context, pipeline.Batch) error{
		func(context.Context, pipeline.Batch) error { return errTest },
	}}
	var calls atomic.Int32
	o.ErrorOutput = dlWriterFunc(func(context.Context, pipeline.BatchID, string, []pipeline.DeadLetter) error {
		calls.Add(1)
		return errTest
	})
	rn := e.start(o)
	e.append([]byte("x"))
	eventually(t, 5*time.Second, "dead-letter attempts", func() bool { return calls.Load() >= 3 })
	rn.cancel()
	if err := rn.wait(t, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	if st := e.buf.State(); st.Committed != 0 || len(st.Inflight) == 0 {
		t.Errorf("state %+v: the batch must stay in flight", st)
	}
}

type upperProcessor struct{ failIndex int }

func (p upperProcessor) Process(_ context.Context, b pipeline.Batch) (pipeline.Batch, []pipeline.RecordError, error) {
	out := pipeline.Batch{}
	var errs []pipeline.RecordError
	for i, r := range b.Records {
		if i == p.failIndex {
			errs = append(errs, pipeline.RecordError{Index: i, Err: &codedError{"Lambda.ProcessingFailedStatus"}})
			continue
		}
		r.Data = bytes.ToUpper(r.Data)
		out.Records = append(out.Records, r)
	}
	return out, errs, nil
}

type suffixProcessor string

func (p suffixProcessor) Process(_ context.Context, b pipeline.Batch) (pipeline.Batch, []pipeline.RecordError, error) {
	for i := range b.Records {
		b.Records[i].Data = append(bytes.Clone(b.Records[i].Data), p...)
	}
	return b, nil, nil
}

func TestProcessors(t *testing.T) {
	e := newEnv(t)
	o := e.opts()
	o.Interval = 0
	o.Processors = []pipeline.Processor{upperProcessor{failIndex: 1}, suffixProcessor(";")}
	e.start(o)
	e.append([]byte("a"), []byte("bad"), []byte("c"))
	eventually(t, 5*time.Second, "commit", e.committedAll)
	objs := slices.Collect(maps.Values(e.objects()))
	if len(objs) != 1 || string(objs[0]) != "A;C;" {
		t.Errorf("objects %q, want [\"A;C;\"] (processors applied in order)", objs)
	}
	dls := e.deadLetters(pipeline.OutputProcessingFailed)
	if len(dls) != 1 || dls[0].data(t) != "bad" || dls[0].ErrorCode != "Lambda.ProcessingFailedStatus" {
		t.Errorf("processing-failed dead letters %+v", dls)
	}
}

func TestMetricsFreshnessAndBacklog(t *testing.T) {
	e := newEnv(t)
	e.buf = memory.New(memory.Options{Now: func() time.Time { return time.Now().Add(-20 * time.Second) }})
	o := e.opts()
	o.Buffer = e.buf
	o.Interval = time.Hour
	rn := e.start(o)
	e.append([]byte("old"))
	lbl := map[string]string{"stream": "s", "destination": "file"}
	eventually(t, 5*time.Second, "gauges", func() bool { return e.metric(MetricBacklogBytes, map[string]string{"stream": "s"}) > 0 })
	if f := e.metric(MetricDataFreshness, lbl); f < 20 || f > 60 {
		t.Errorf("freshness %v, want about 20s", f)
	}
	if b := e.metric(MetricBacklogBytes, map[string]string{"stream": "s"}); b != float64(e.buf.State().Bytes) {
		t.Errorf("backlog %v, want %d", b, e.buf.State().Bytes)
	}
	rn.r.Drain()
	eventually(t, 5*time.Second, "drain", e.committedAll)
	if f := e.metric(MetricDataFreshness, lbl); f != 0 {
		t.Errorf("freshness after the flush %v, want 0", f)
	}
	if err := rn.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// A stopped runner's gauges disappear.
	if n := e.metric(MetricBacklogBytes, map[string]string{"stream": "s"}); n != 0 {
		t.Errorf("backlog after stop %v", n)
	}
}

// A stream whose destination hangs does not hold up another stream.
func TestStreamsAreIndependent(t *testing.T) {
	e := newEnv(t)
	hung := &scripted{next: e.file, steps: []func(context.Context, pipeline.Batch) error{
		func(ctx context.Context, _ pipeline.Batch) error { <-ctx.Done(); return ctx.Err() },
	}}
	o := e.opts()
	o.Interval = 0
	o.Destination = hung
	e.start(o)
	e.append([]byte("stuck"))

	other := memory.New(memory.Options{})
	defer other.Close()
	d2, err := newFile(t.TempDir(), "t")
	if err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.Stream, o2.Buffer, o2.Destination, o2.ErrorOutput = "t", other, d2, d2
	e.start(o2)
	if err := other.Append(context.Background(), []pipeline.Record{{Data: []byte("flows")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "stream t delivered", func() bool { st := other.State(); return st.Committed == st.Head })
	if e.committedAll() {
		t.Error("the hung stream committed")
	}
}

func TestNewAndRunErrors(t *testing.T) {
	e := newEnv(t)
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "buffer is required") {
		t.Errorf("New(empty) = %v", err)
	}
	o := e.opts()
	o.Interval = -time.Second
	if _, err := New(o); err == nil {
		t.Error("negative interval accepted")
	}
	e.start(e.opts())
	eventually(t, 5*time.Second, "first runner registered", func() bool {
		g := e.metrics.gauges
		g.mu.Lock()
		defer g.mu.Unlock()
		_, ok := g.streams["s"]
		return ok
	})
	r2, err := New(e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Run(context.Background()); !errors.Is(err, errStreamRunning) {
		t.Errorf("second Run for the same stream = %v, want errStreamRunning", err)
	}
}

func TestBackoff(t *testing.T) {
	e := newEnv(t)
	o := e.opts()
	o.BackoffBase, o.BackoffMax = time.Second, 60*time.Second
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 3, 5, 6, 40, 1000} {
		ceil := min(time.Second<<min(n, 10), 60*time.Second)
		var maxSeen time.Duration
		for range 200 {
			d := r.backoff(n, 0)
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, d, ceil)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceil/2 {
			t.Errorf("backoff(%d): largest of 200 draws %v, want full jitter up to %v", n, maxSeen, ceil)
		}
	}
	if d := r.backoff(0, 90*time.Second); d != 90*time.Second {
		t.Errorf("backoff with Retry-After 90s = %v", d)
	}
}

// abandoning is a scripted destination that records what it is told it
// was given up on (pipeline.Abandoner).
type abandoning struct {
	*scripted
	mu        sync.Mutex
	abandoned []string
	causes    []error
}

func (a *abandoning) Abandon(_ context.Context, b pipeline.Batch, cause error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range b.Records {
		a.abandoned = append(a.abandoned, string(r.Data))
	}
	a.causes = append(a.causes, cause)
	return errors.New("abandon failed too") // logged; dead letters go on
}

func TestAbandonerHearsOfGivenUpRecords(t *testing.T) {
	e := newEnv(t)
	// Record 0 fails permanently; record 1 retryably until the budget is
	// spent; record 2 is delivered.
	step := func(ctx context.Context, b pipeline.Batch) error {
		var failed []pipeline.RecordError
		for i, r := range b.Records {
			switch string(r.Data) {
			case "permanent":
				failed = append(failed, pipeline.RecordError{Index: i, Err: &codedError{"Test.Rejected"}})
			case "retryable":
				failed = append(failed, pipeline.RecordError{Index: i, Err: pipeline.Retryable(errTest)})
			}
		}
		return &pipeline.PartialError{Failed: failed}
	}
	d := &abandoning{scripted: &scripted{next: e.file}}
	for range 20 {
		d.steps = append(d.steps, step)
	}
	o := e.opts()
	o.Destination = d
	o.Interval = 0
	o.RetryDuration = 0 // no retries: the retryable record is given up at once
	e.start(o)
	e.append([]byte("permanent"), []byte("retryable"), []byte("ok"))
	eventually(t, 5*time.Second, "commit", e.committedAll)
	d.mu.Lock()
	got := slices.Clone(d.abandoned)
	d.mu.Unlock()
	slices.Sort(got)
	if !slices.Equal(got, []string{"retryable"}) {
		t.Errorf("abandoned %q, want the record out of retries (a permanent record failure is not a batch given up)", got)
	}
	if dls := e.deadLetters(pipeline.OutputDeliveryFailed); len(dls) != 2 {
		t.Errorf("%d dead letters, want 2 (the failing Abandon does not stop them)", len(dls))
	}
}

func TestAbandonerHearsOfPermanentBatchFailure(t *testing.T) {
	e := newEnv(t)
	d := &abandoning{scripted: &scripted{next: e.file, steps: []func(context.Context, pipeline.Batch) error{
		func(context.Context, pipeline.Batch) error { return &codedError{"Test.Broken"} },
	}}}
	o := e.opts()
	o.Destination = d
	o.Interval = 0
	e.start(o)
	e.append([]byte("a"), []byte("b"))
	eventually(t, 5*time.Second, "commit", e.committedAll)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Equal(d.abandoned, []string{"a", "b"}) || len(d.causes) != 1 || errorCode(d.causes[0]) != "Test.Broken" {
		t.Errorf("abandoned %q with causes %v, want a and b with the Test.Broken failure", d.abandoned, d.causes)
	}
}

func errorCode(err error) string {
	var c pipeline.Coder
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return ""
}

// TestDeadLetterFieldsReachTheErrorRecord: a record error carrying
// dead-letter fields (pipeline.DeadLetterFielder) has them in its error
// record, as Firehose's failed-document records carry esDocumentId.
func TestDeadLetterFieldsReachTheErrorRecord(t *testing.T) {
	e := newEnv(t)
	d := &scripted{next: e.file, steps: []func(context.Context, pipeline.Batch) error{
		func(_ context.Context, b pipeline.Batch) error {
			return &pipeline.PartialError{Failed: []pipeline.RecordError{{Index: 0, Err: &pipeline.CodedError{
				Code: "400", OutputType: "AmazonOpenSearchService-failed", Err: errTest,
				Fields: map[string]string{"esDocumentId": "doc-1", "esIndexName": "idx"}}}}}
		},
	}}
	o := e.opts()
	o.Destination = d
	o.Interval = 0
	e.start(o)
	e.append([]byte(`{"a":1}`))
	eventually(t, 5*time.Second, "commit", e.committedAll)
	var found int
	for k, v := range readTree(t, e.root) {
		if strings.Contains(k, "AmazonOpenSearchService-failed/") {
			var rec map[string]any
			if err := json.Unmarshal(v, &rec); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if rec["esDocumentId"] != "doc-1" || rec["esIndexName"] != "idx" || rec["errorCode"] != "400" {
				t.Errorf("error record %s", v)
			}
			found++
		}
	}
	if found != 1 {
		t.Fatalf("%d error records under AmazonOpenSearchService-failed/, want 1", found)
	}
}

// TestStopHandsOver: Stop lets the batch in flight finish and commit,
// starts no other, and a second runner over the same buffer delivers the
// rest: every record once, none lost (what a configuration reload does).
func TestStopHandsOver(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	started := make(chan struct{})
	first := &scripted{next: e.file, steps: []func(context.Context, pipeline.Batch) error{
		func(ctx context.Context, b pipeline.Batch) error {
			close(started)
			<-release
			return e.file.Deliver(ctx, b)
		},
	}}
	o := e.opts()
	o.Destination, o.SizeBytes, o.Interval = first, 1000, 0
	datas := records(10, 500, func(i int) byte { return 'a' + byte(i) })
	e.append(datas[:2]...)
	rn := e.start(o)
	<-started
	e.append(datas[2:]...)
	rn.r.Stop()
	rn.r.Stop() // idempotent
	close(release)
	if err := rn.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := len(first.batches()); n != 1 {
		t.Fatalf("the stopped runner started %d batches, want only the one in flight", n)
	}
	st := e.buf.State()
	if st.Committed != first.batches()[0].ID.End || st.Committed >= st.Head {
		t.Fatalf("committed %d, batch end %d, head %d", st.Committed, first.batches()[0].ID.End, st.Head)
	}
	o.Destination = e.file
	next := e.start(o)
	next.r.Drain()
	if err := next.wait(t, 5*time.Second); err != nil {
		t.Fatalf("second Run = %v", err)
	}
	// Object names do not sort in log order: compare the bytes as a
	// multiset (each record is 500 copies of its own letter).
	var got []byte
	for _, v := range e.objects() {
		got = append(got, v...)
	}
	want := concat(datas)
	slices.Sort(got)
	if !bytes.Equal(got, want) {
		t.Fatalf("delivered %d bytes, want the %d appended, each once", len(got), len(want))
	}
}
