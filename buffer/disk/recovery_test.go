package disk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/disk/vfs"
	"github.com/sluice-dev/sluice/pipeline"
)

type env struct {
	t   *testing.T
	fs  *vfs.Mem
	reg *prometheus.Registry
	m   *disk.Metrics
	seg int64
}

func newEnv(t *testing.T, seg int64) *env {
	reg := prometheus.NewRegistry()
	m, err := disk.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, fs: vfs.NewMem(), reg: reg, m: m, seg: seg}
}

func (e *env) open() *disk.Log {
	e.t.Helper()
	l, err := disk.Open(disk.Options{Dir: "/s", FS: e.fs, Stream: "s", SegmentBytes: e.seg, Metrics: e.m, Logger: testLogger()})
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return l
}

func (e *env) segments() []string {
	var segs []string
	for name := range e.fs.Files() {
		if strings.HasSuffix(name, ".seg") {
			segs = append(segs, name)
		}
	}
	sort.Strings(segs)
	return segs
}

func appendN(t *testing.T, l *disk.Log, prefix string, n, size int) []pipeline.Record {
	t.Helper()
	recs := make([]pipeline.Record, n)
	for i := range recs {
		recs[i].Data = append([]byte(fmt.Sprintf("%s-%03d-", prefix, i)), bytes.Repeat([]byte{'x'}, size)...)
	}
	if err := l.Append(context.Background(), recs); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return recs
}

func readIDs(t *testing.T, l *disk.Log) ([]string, pipeline.Position) {
	t.Helper()
	var ids []string
	from := l.State().Committed
	for {
		recs, next, err := l.Read(context.Background(), from, 0, 0, 0)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		for _, r := range recs {
			ids = append(ids, string(r.Data[:strings.IndexByte(string(r.Data), 'x')]))
		}
		if next == from {
			return ids, next
		}
		from = next
	}
}

func TestTornTailTruncated(t *testing.T) {
	e := newEnv(t, 1<<20)
	l := e.open()
	appendN(t, l, "a", 10, 50)
	head := l.State().Head
	l.Close()
	segs := e.segments()
	last := segs[len(segs)-1]
	for i, damage := range []func([]byte) []byte{
		func(b []byte) []byte { return append(b, 0x20, 0, 0, 0, 1, 2) },                 // torn header
		func(b []byte) []byte { return append(b, b[:40]...) },                           // torn frame (length says more)
		func(b []byte) []byte { return append(b, make([]byte, 4096)...) },               // zero fill
		func(b []byte) []byte { c := append(b, b[:67]...); c[len(c)-1] ^= 1; return c }, // bad CRC
	} {
		if err := e.fs.Damage(last, damage); err != nil {
			t.Fatal(err)
		}
		l = e.open()
		if s := l.State(); s.Head != head {
			t.Fatalf("damage %d: head %d after recovery, want %d", i, s.Head, head)
		}
		if got := counterValue(t, e.reg, "sluice_buffer_corrupt_truncations_total"); got != float64(i+1) {
			t.Fatalf("damage %d: truncations counter %v", i, got)
		}
		ids, _ := readIDs(t, l)
		if len(ids) != 10 || ids[9] != "a-009-" {
			t.Fatalf("damage %d: read %v", i, ids)
		}
		l.Close()
	}
	// The log goes on after the truncation point.
	l = e.open()
	appendN(t, l, "b", 3, 10)
	ids, _ := readIDs(t, l)
	if len(ids) != 13 || ids[12] != "b-002-" {
		t.Fatalf("after appending: %v", ids)
	}
	l.Close()
	if got := counterValue(t, e.reg, "sluice_buffer_corrupt_truncations_total"); got != 4 {
		t.Fatalf("clean reopen counted a truncation: %v", got)
	}
}

func TestCorruptOlderSegmentSkipped(t *testing.T) {
	e := newEnv(t, 1000)
	l := e.open()
	for i := 0; i < 6; i++ {
		appendN(t, l, fmt.Sprintf("s%d", i), 4, 200) // ~900 bytes: one segment each
	}
	l.Close()
	segs := e.segments()
	if len(segs) < 6 {
		t.Fatalf("want >= 6 segments, have %v", segs)
	}
	// Flip a byte in the data of the second record of the second segment.
	if err := e.fs.Damage(segs[1], func(b []byte) []byte { b[230+30] ^= 0xff; return b }); err != nil {
		t.Fatal(err)
	}
	l = e.open()
	defer l.Close()
	ids, end := readIDs(t, l)
	if end != l.State().Head {
		t.Fatalf("reading stopped at %d, head %d", end, l.State().Head)
	}
	want := []string{"s0-000-", "s0-001-", "s0-002-", "s0-003-", "s1-000-"}
	for i := 2; i < 6; i++ {
		for j := 0; j < 4; j++ {
			want = append(want, fmt.Sprintf("s%d-%03d-", i, j))
		}
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("read %v\nwant %v", ids, want)
	}
	if got := counterValue(t, e.reg, "sluice_buffer_corrupt_skips_total"); got != 1 {
		t.Fatalf("skips counter %v", got)
	}
	if got := counterValue(t, e.reg, "sluice_buffer_corrupt_truncations_total"); got != 0 {
		t.Fatalf("truncations counter %v", got)
	}
}

func TestCommitDeletesSegmentsAndPositionsPersist(t *testing.T) {
	e := newEnv(t, 1000)
	l := e.open()
	for i := 0; i < 5; i++ {
		appendN(t, l, "c", 4, 200)
	}
	if n := len(e.segments()); n != 5 {
		t.Fatalf("%d segments", n)
	}
	head := l.State().Head
	if err := l.Commit(context.Background(), head); err != nil {
		t.Fatal(err)
	}
	if segs := e.segments(); len(segs) != 1 {
		t.Fatalf("after committing everything: %v", segs)
	}
	l.Close()
	l = e.open()
	defer l.Close()
	if s := l.State(); s.Head != head || s.Committed != head {
		t.Fatalf("after reopen: %+v, want head %d", s, head)
	}
	recs := appendN(t, l, "d", 1, 1)
	if p := idPos(t, recs[0].ID); p != head {
		t.Fatalf("new record at %d, want %d", p, head)
	}
	if segs := e.segments(); len(segs) != 1 {
		t.Fatalf("segments %v: want only the active one", segs)
	}
}

// slowFS delays every Sync, as a disk does.
type slowFS struct {
	vfs.FS
	delay time.Duration
}

type slowFile struct {
	vfs.File
	delay time.Duration
}

func (s slowFS) OpenFile(name string, flag int, perm iofs.FileMode) (vfs.File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return slowFile{f, s.delay}, nil
}

func (f slowFile) Sync() error { time.Sleep(f.delay); return f.File.Sync() }

func TestGroupCommit(t *testing.T) {
	reg := prometheus.NewRegistry()
	l, err := disk.Open(disk.Options{Dir: "/g", FS: slowFS{vfs.NewMem(), 2 * time.Millisecond}, Metrics: newMetrics(t, reg), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const writers, calls = 8, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < calls; c++ {
				if err := l.Append(context.Background(), []pipeline.Record{{Data: []byte("x")}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	fsyncs := counterValue(t, reg, "sluice_buffer_fsyncs_total")
	if fsyncs == 0 || fsyncs > writers*calls/2 {
		t.Fatalf("%v fsyncs for %d appends: no group commit", fsyncs, writers*calls)
	}
	if got := counterValue(t, reg, "sluice_buffer_appended_records_total"); got != writers*calls {
		t.Fatalf("appended records counter %v", got)
	}
}

// syncGate blocks segment Syncs, once armed, until released, and says
// when one is waiting.
type syncGate struct {
	vfs.FS
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

type syncGateFile struct {
	vfs.File
	g *syncGate
}

func newSyncGate(fs vfs.FS) *syncGate {
	return &syncGate{FS: fs, entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (g *syncGate) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *syncGate) OpenFile(name string, flag int, perm iofs.FileMode) (vfs.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".seg") {
		return f, err
	}
	return syncGateFile{f, g}, nil
}

func (f syncGateFile) Sync() error {
	f.g.mu.Lock()
	armed := f.g.armed
	f.g.mu.Unlock()
	if armed {
		select {
		case f.g.entered <- struct{}{}:
		default:
		}
		<-f.g.release
	}
	return f.File.Sync()
}

func TestCloseAnswersPendingAppends(t *testing.T) {
	fs := vfs.NewMem()
	gate := newSyncGate(fs)
	l, err := disk.Open(disk.Options{Dir: "/c", FS: gate, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]bool{}
	firstAck := make(chan struct{})
	var once sync.Once
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; ; c++ {
				recs := []pipeline.Record{{Data: []byte(fmt.Sprintf("%d-%d", w, c))}}
				err := l.Append(context.Background(), recs)
				if errors.Is(err, pipeline.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[string(recs[0].Data)] = true
				mu.Unlock()
				once.Do(func() { close(firstAck) })
			}
		}()
	}
	<-firstAck
	// Hold the writer in a sync with a group in hand, close, and only
	// then let the sync finish: the group and what queued behind it must
	// still be answered.
	gate.arm()
	<-gate.entered
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	for l.Healthy() == nil { // Close has begun once Healthy says closed
		runtime.Gosched()
	}
	close(gate.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("appenders still blocked after Close")
	}
	l, err = disk.Open(disk.Options{Dir: "/c", FS: fs, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recs, _, err := l.Read(context.Background(), 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range recs {
		got[string(r.Data)] = true
	}
	for k := range acked {
		if !got[k] {
			t.Fatalf("acknowledged record %q missing after Close and reopen", k)
		}
	}
}

// doneWatch is a context that reports when Done is first called: Append
// calls it only to wait for room in the writer's queue.
type doneWatch struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func (c *doneWatch) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

func TestPendingBytesBounded(t *testing.T) {
	// With MaxPendingBytes smaller than two appends, a second appender waits
	// for the first group and gives up when its context ends.
	gate := newSyncGate(vfs.NewMem())
	l, err := disk.Open(disk.Options{Dir: "/p", FS: gate, MaxPendingBytes: 1500, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	big := func() []pipeline.Record { return []pipeline.Record{{Data: make([]byte, 1000)}} }
	gate.arm()
	first := make(chan error, 1)
	go func() { first <- l.Append(context.Background(), big()) }()
	<-gate.entered // the first append's 1017 bytes are pending
	cctx, cancel := context.WithCancel(context.Background())
	ctx := &doneWatch{Context: cctx, waiting: make(chan struct{})}
	second := make(chan error, 1)
	go func() { second <- l.Append(ctx, big()) }()
	select {
	case <-ctx.waiting:
	case err := <-second:
		t.Fatalf("second append over the pending bound returned %v without waiting", err)
	case <-time.After(10 * time.Second):
		t.Fatal("second append over the pending bound neither waits nor returns")
	}
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("second append over the pending bound: %v, want its context's error", err)
	}
	close(gate.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), big()); err != nil {
		t.Fatalf("append after the writer caught up: %v", err)
	}
	if s := l.State(); s.Bytes != 2*(1000+17) {
		t.Fatalf("state %+v: want two records", s)
	}
}

func TestCorruptRegionAtCursorDoesNotStall(t *testing.T) {
	e := newEnv(t, 1000)
	l := e.open()
	appendN(t, l, "a", 4, 200) // fills the first segment
	appendN(t, l, "b", 2, 200) // second (active) segment
	l.Close()
	segs := e.segments()
	if len(segs) != 2 {
		t.Fatalf("segments %v", segs)
	}
	// Corrupt the first record of the first segment: everything in it is
	// lost, the second segment is still delivered.
	if err := e.fs.Damage(segs[0], func(b []byte) []byte { b[30] ^= 1; return b }); err != nil {
		t.Fatal(err)
	}
	l = e.open()
	defer l.Close()
	ids, _ := readIDs(t, l)
	if strings.Join(ids, ",") != "b-000-,b-001-" {
		t.Fatalf("read %v", ids)
	}
	// Now corrupt the head of the active segment too, with the cursor there.
	head := l.State().Head
	if err := l.Commit(context.Background(), head); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "c", 1, 10)
	l.Close()
	segs = e.segments()
	last := segs[len(segs)-1]
	l = e.open()
	defer l.Close()
	if err := e.fs.Damage(last, func(b []byte) []byte { b[len(b)-3] ^= 1; return b }); err != nil {
		t.Fatal(err)
	}
	recs, next, err := l.Read(context.Background(), head, 0, 0, 0)
	if err != nil || len(recs) != 0 || next != l.State().Head {
		t.Fatalf("read over the corrupt record: %d records, next %d, head %d, %v", len(recs), next, l.State().Head, err)
	}
	if s := l.State(); s.Committed != s.Head {
		t.Fatalf("the cursor did not move past the corrupt region: %+v", s)
	}
}

// TestInflightMarksClippedToALostTail: when a tail holding in-flight
// batches is lost (mode os after a power loss, or cut as corrupt), the
// marks are clipped to the recovered head or dropped, so that the batches
// appended afterwards can still be marked.
func TestInflightMarksClippedToALostTail(t *testing.T) {
	e := newEnv(t, 1<<20)
	l := e.open()
	appendN(t, l, "a", 10, 50)
	recs, mid, err := l.Read(context.Background(), 0, 0, 6, 0)
	if err != nil || len(recs) != 6 {
		t.Fatalf("Read: %d, %v", len(recs), err)
	}
	head := l.State().Head
	for _, id := range []pipeline.BatchID{{First: 0, End: mid}, {First: mid, End: head}} {
		if err := l.MarkInflight(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	// Lose the last records: cut the segment inside the first batch.
	last := e.segments()[len(e.segments())-1]
	if err := e.fs.Damage(last, func(b []byte) []byte { return b[:int(mid)/2] }); err != nil {
		t.Fatal(err)
	}
	l = e.open()
	defer l.Close()
	st := l.State()
	if len(st.Inflight) != 1 || st.Inflight[0].First != 0 || st.Inflight[0].End != st.Head || st.Head >= mid {
		t.Fatalf("after the lost tail: head %d, in flight %v; want the first batch clipped to the head", st.Head, st.Inflight)
	}
	appendN(t, l, "b", 3, 10)
	if err := l.MarkInflight(context.Background(), pipeline.BatchID{First: st.Head, End: l.State().Head}); err != nil {
		t.Fatalf("a batch appended after the lost tail cannot be marked: %v", err)
	}
}

// TestInflightClippedToTornTail: a tail cut inside the last in-flight
// batch clips it to the head, durably, so the next batch can be marked
// (found by FuzzRecover: the clipped set was dropped when no batch was).
func TestInflightClippedToTornTail(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	open := func() *disk.Log {
		t.Helper()
		l, err := disk.Open(disk.Options{Dir: "/d", FS: fs, Stream: "s", Durability: buffer.DurabilityOS, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open()
	for _, d := range []string{"a", "b", "c"} {
		if err := l.Append(ctx, []pipeline.Record{{Data: []byte(d)}}); err != nil {
			t.Fatal(err)
		}
	}
	end := l.State().Head
	if err := l.MarkInflight(ctx, pipeline.BatchID{First: 0, End: end}); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if err := fs.Damage("/d/00000000000000000000.seg", func(b []byte) []byte { return b[:len(b)-3] }); err != nil {
		t.Fatal(err)
	}
	for range 2 { // and again after a clean reopen: the clip is durable
		l = open()
		st := l.State()
		if len(st.Inflight) != 1 || st.Inflight[0].End != st.Head || st.Head >= end {
			t.Fatalf("in flight %v, head %d (was %d)", st.Inflight, st.Head, end)
		}
		_ = l.Close()
	}
	l = open()
	defer l.Close()
	head := l.State().Head
	if err := l.Append(ctx, []pipeline.Record{{Data: []byte("d")}}); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkInflight(ctx, pipeline.BatchID{First: head, End: l.State().Head}); err != nil {
		t.Fatalf("the next batch after the clipped one: %v", err)
	}
}
