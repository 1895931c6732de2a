package disk_test

import (
	"bytes"
	"context"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/disk/vfs"
	"github.com/sluice-dev/sluice/pipeline"
)

// faultEnv is a log on a Faulty in-memory filesystem.
type faultEnv struct {
	t    *testing.T
	mem  *vfs.Mem
	f    *vfs.Faulty
	reg  *prometheus.Registry
	m    *disk.Metrics
	logs *lockedBuffer
	opts disk.Options
}

func newFaultEnv(t *testing.T, backoff time.Duration) *faultEnv {
	e := &faultEnv{t: t, mem: vfs.NewMem(), reg: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	e.f = vfs.NewFaulty(e.mem)
	e.m = newMetrics(t, e.reg)
	e.opts = disk.Options{Dir: "/data/buffer/s", Stream: "s", FS: e.f, Metrics: e.m, ReopenBackoff: backoff,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil))}
	return e
}

func (e *faultEnv) open() *disk.Log {
	e.t.Helper()
	l, err := disk.Open(e.opts)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return l
}

// crash crashes the filesystem and reopens the log on what survived,
// without faults.
func (e *faultEnv) crash(l *disk.Log) *disk.Log {
	e.t.Helper()
	snap := e.mem.Crash(nil)
	_ = l.Close()
	e.mem = snap
	e.f = vfs.NewFaulty(snap)
	e.opts.FS = e.f
	return e.open()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func records(prefix string, n int) []pipeline.Record {
	recs := make([]pipeline.Record, n)
	for i := range recs {
		recs[i].Data = []byte(fmt.Sprintf("%s-%d", prefix, i))
	}
	return recs
}

// readAllRecs reads every undelivered record.
func readAllRecs(t *testing.T, l *disk.Log) []pipeline.Record {
	t.Helper()
	recs, next, err := l.Read(context.Background(), l.State().Committed, 0, 0, 0)
	if err != nil || next != l.State().Head {
		t.Fatalf("Read: next %d, head %d, %v", next, l.State().Head, err)
	}
	return recs
}

// checkAcked fails unless every acked record is in got, with its ID.
func checkAcked(t *testing.T, got []pipeline.Record, acked ...[]pipeline.Record) {
	t.Helper()
	have := map[string]string{}
	for _, r := range got {
		have[r.ID] = string(r.Data)
	}
	for _, recs := range acked {
		for _, r := range recs {
			if d, ok := have[r.ID]; !ok || d != string(r.Data) {
				t.Fatalf("acknowledged record %s %q missing (have %v)", r.ID, r.Data, have)
			}
		}
	}
}

// mustAppend appends recs, which must be acknowledged.
func mustAppend(t *testing.T, l *disk.Log, recs []pipeline.Record) {
	t.Helper()
	if err := l.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// failingAppend injects faults, then appends recs, which must not be
// acknowledged.
func (e *faultEnv) failingAppend(t *testing.T, l *disk.Log, recs []pipeline.Record, faults ...vfs.Fault) {
	t.Helper()
	for _, f := range faults {
		e.f.Inject(f)
	}
	if err := l.Append(context.Background(), recs); err == nil {
		t.Fatalf("Append acknowledged despite %v", faults)
	}
}

func TestFailedFsyncIsNeverAcknowledged(t *testing.T) {
	ctx := context.Background()
	e := newFaultEnv(t, time.Hour)
	l := e.open()
	a := records("a", 3)
	mustAppend(t, l, a)
	e.f.Inject(vfs.Fault{Op: vfs.OpSync, Name: "*.seg"})
	b := records("b", 2)
	if err := l.Append(ctx, b); err == nil {
		t.Fatal("Append whose fsync failed was acknowledged")
	}
	if b[0].ID != "" {
		t.Fatalf("failed Append set IDs: %q", b[0].ID)
	}
	herr := l.Healthy()
	if herr == nil || !strings.Contains(herr.Error(), "sync") {
		t.Fatalf("Healthy after a failed fsync: %v", herr)
	}
	if v := gaugeValue(t, e.reg, "sluice_buffer_healthy"); v != 0 {
		t.Fatalf("sluice_buffer_healthy %v after a failed fsync", v)
	}
	// Until the writer recovers, appends are refused at once.
	if err := l.Append(ctx, records("c", 1)); err == nil || err.Error() != herr.Error() {
		t.Fatalf("Append while failed: %v, want %v", err, herr)
	}
	if s := l.State(); s.Bytes != 3*(17+3) {
		t.Fatalf("state after the failure %+v: only the first append is stored", s)
	}
	l = e.crash(l)
	defer l.Close()
	got := readAllRecs(t, l)
	checkAcked(t, got, a)
	for _, r := range got {
		if strings.HasPrefix(string(r.Data), "c-") {
			t.Fatalf("a refused record was stored: %q", r.Data)
		}
	}
}

func TestRecoversFromFailedFsyncInANewSegment(t *testing.T) {
	ctx := context.Background()
	e := newFaultEnv(t, time.Nanosecond) // the next append may retry at once
	l := e.open()
	a := records("a", 3)
	mustAppend(t, l, a)
	e.failingAppend(t, l, records("b", 2), vfs.Fault{Op: vfs.OpSync, Name: "*.seg"})
	// The next append makes the writer reopen: new segment, accepted.
	c := records("c", 2)
	if err := l.Append(ctx, c); err != nil {
		t.Fatalf("Append after the failure: %v", err)
	}
	if err := l.Healthy(); err != nil {
		t.Fatalf("Healthy after recovering: %v", err)
	}
	if v := gaugeValue(t, e.reg, "sluice_buffer_healthy"); v != 1 {
		t.Fatalf("sluice_buffer_healthy %v after recovering", v)
	}
	if v := counterValue(t, e.reg, "sluice_buffer_reopens_total"); v != 1 {
		t.Fatalf("sluice_buffer_reopens_total %v", v)
	}
	d := records("d", 4)
	mustAppend(t, l, d)
	if late := e.f.WritesAfterFailedSync(); len(late) != 0 {
		t.Fatalf("acknowledged appends were written into the file whose fsync failed: %v", late)
	}
	if p := idPos(t, c[0].ID); p != idPos(t, a[2].ID)+17+3 {
		t.Fatalf("first record after recovering at %d, want right after the last acknowledged one", p)
	}
	got := readAllRecs(t, l)
	if len(got) != 9 {
		t.Fatalf("read %d records before the crash, want 9", len(got))
	}
	checkAcked(t, got, a, c, d)
	// Everything acknowledged survives a power loss: the lying fsyncs of
	// the failed file (see vfs.Faulty) were never relied on.
	l = e.crash(l)
	defer l.Close()
	got = readAllRecs(t, l)
	if len(got) != 9 {
		t.Fatalf("read %d records after the crash, want 9", len(got))
	}
	checkAcked(t, got, a, c, d)
	if !strings.Contains(e.logs.String(), "recovered from the failed sync") {
		t.Fatalf("recovery not logged:\n%s", e.logs)
	}
}

func TestRecoversFromFailedFsyncInTheBackground(t *testing.T) {
	ctx := context.Background()
	e := newFaultEnv(t, time.Millisecond)
	l := e.open()
	defer l.Close()
	e.f.Inject(vfs.Fault{Op: vfs.OpSync, Name: "*.seg"})
	// The first segment is empty when its fsync fails: it is replaced.
	if err := l.Append(ctx, records("b", 2)); err == nil {
		t.Fatal("Append whose fsync failed was acknowledged")
	}
	waitHealthy(t, l)
	c := records("c", 2)
	mustAppend(t, l, c)
	if late := e.f.WritesAfterFailedSync(); len(late) != 0 {
		t.Fatalf("writes into the file whose fsync failed: %v", late)
	}
	if got := readAllRecs(t, l); len(got) != 2 {
		t.Fatalf("read %d records", len(got))
	}
}

func TestFailedRecoveryIsRetried(t *testing.T) {
	ctx := context.Background()
	e := newFaultEnv(t, time.Nanosecond)
	l := e.open()
	a := records("a", 1)
	mustAppend(t, l, a)
	e.failingAppend(t, l, records("b", 1), vfs.Fault{Op: vfs.OpSync, Name: "*.seg"},
		vfs.Fault{Op: vfs.OpCreate, Name: "*.seg", Times: -1}) // recovering fails
	// Appends fail while recovery attempts (theirs or the writer's own)
	// fail: the sync and at least two segment creations.
	for i := 0; e.f.Injected() < 3; i++ {
		if i == 1e6 {
			t.Fatalf("recovery never attempted: %d faults injected", e.f.Injected())
		}
		if err := l.Append(ctx, records("c", 1)); err == nil {
			t.Fatal("Append accepted although recovering fails")
		}
	}
	if err := l.Healthy(); err == nil {
		t.Fatal("healthy although recovering fails")
	}
	if !strings.Contains(e.logs.String(), "recovering from the failed sync failed") {
		t.Fatalf("failed recovery not logged:\n%s", e.logs)
	}
	e.f.Clear()
	waitHealthy(t, l)
	d := records("d", 1)
	if err := l.Append(ctx, d); err != nil {
		t.Fatalf("Append after recovering: %v", err)
	}
	l = e.crash(l)
	defer l.Close()
	got := readAllRecs(t, l)
	checkAcked(t, got, a, d)
	if len(got) != 2 {
		t.Fatalf("%d records after the crash, want the 2 acknowledged", len(got))
	}
}

func TestFailedWriteIsCutOff(t *testing.T) {
	e := newFaultEnv(t, time.Hour)
	l := e.open()
	a := records("a", 2)
	mustAppend(t, l, a)
	e.failingAppend(t, l, records("b", 4), vfs.Fault{Op: vfs.OpWrite, Name: "*.seg"})
	// A failed write is cut off and not sticky.
	if err := l.Healthy(); err != nil {
		t.Fatalf("Healthy after a failed write: %v", err)
	}
	c := records("c", 2)
	mustAppend(t, l, c)
	got := readAllRecs(t, l)
	if len(got) != 4 || string(got[2].Data) != "c-0" {
		t.Fatalf("read %d records: the partial write was not cut off", len(got))
	}
	l = e.crash(l)
	defer l.Close()
	if got := readAllRecs(t, l); len(got) != 4 {
		t.Fatalf("after a crash: %d records", len(got))
	}
	if v := counterValue(t, e.reg, "sluice_buffer_write_errors_total"); v != 1 {
		t.Fatalf("write errors %v", v)
	}
}

func TestFailedCursorWriteKeepsThePreviousCursor(t *testing.T) {
	ctx := context.Background()
	for _, fault := range []vfs.Fault{
		{Op: vfs.OpCreate, Name: "cursor.tmp"},
		{Op: vfs.OpWrite, Name: "cursor.tmp"},
		{Op: vfs.OpSync, Name: "cursor.tmp"},
		{Op: vfs.OpRename, Name: "cursor"},
		{Op: vfs.OpSyncDir, Name: "s"},
	} {
		t.Run(string(fault.Op), func(t *testing.T) {
			e := newFaultEnv(t, time.Hour)
			l := e.open()
			if err := l.Append(ctx, records("a", 9)); err != nil {
				t.Fatal(err)
			}
			ids, _ := readBatchIDs(t, l, 3, 3)
			if err := l.MarkInflight(ctx, ids[0]); err != nil {
				t.Fatal(err)
			}
			if err := l.MarkInflight(ctx, ids[1]); err != nil {
				t.Fatal(err)
			}
			before := l.State()
			e.f.Inject(fault)
			if err := l.MarkInflight(ctx, ids[2]); err == nil {
				t.Fatal("MarkInflight whose cursor write failed succeeded")
			}
			e.f.Inject(fault)
			if err := l.Commit(ctx, ids[0].End); err == nil {
				t.Fatal("Commit whose cursor write failed succeeded")
			}
			if s := l.State(); s.Committed != before.Committed || !slices.Equal(s.Inflight, before.Inflight) {
				t.Fatalf("failed cursor writes changed the state: %+v -> %+v", before, s)
			}
			if e.f.Injected() != 2 {
				t.Fatalf("%d faults injected, want 2", e.f.Injected())
			}
			// After a power loss the previous cursor is whole.
			l = e.crash(l)
			defer l.Close()
			if s := l.State(); s.Committed != before.Committed || !slices.Equal(s.Inflight, before.Inflight) {
				t.Fatalf("after a crash: %+v, want %+v", s, before)
			}
			if v := counterValue(t, e.reg, "sluice_buffer_cursor_recoveries_total"); v != 0 {
				t.Fatalf("the cursor was lost: %v recoveries", v)
			}
			// And the next writes work.
			if err := l.MarkInflight(ctx, ids[2]); err != nil {
				t.Fatal(err)
			}
			if err := l.Commit(ctx, ids[0].End); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func readBatchIDs(t *testing.T, l *disk.Log, n, per int) ([]pipeline.BatchID, pipeline.Position) {
	t.Helper()
	from := l.State().Committed
	var ids []pipeline.BatchID
	for i := 0; i < n; i++ {
		_, next, err := l.Read(context.Background(), from, 0, per, 0)
		if err != nil || next == from {
			t.Fatalf("Read at %d: next %d, %v", from, next, err)
		}
		ids = append(ids, pipeline.BatchID{First: from, End: next})
		from = next
	}
	return ids, from
}

func TestLostCursorIsRecoveredAndCounted(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		reason string
		damage func(e *faultEnv) error
	}{
		{"missing", func(e *faultEnv) error { return e.mem.Remove("/data/buffer/s/cursor") }},
		{"corrupt", func(e *faultEnv) error {
			return e.mem.Damage("/data/buffer/s/cursor", func(b []byte) []byte { b[20] ^= 1; return b })
		}},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			e := newFaultEnv(t, time.Hour)
			l := e.open()
			a := records("a", 5)
			if err := l.Append(ctx, a); err != nil {
				t.Fatal(err)
			}
			if err := l.MarkInflight(ctx, pipeline.BatchID{First: 0, End: l.State().Head}); err != nil {
				t.Fatal(err)
			}
			l.Close()
			if err := tc.damage(e); err != nil {
				t.Fatal(err)
			}
			l = e.open()
			defer l.Close()
			got := readAllRecs(t, l)
			if len(got) != 5 || string(got[0].Data) != "a-0" {
				t.Fatalf("after losing the cursor: %d records", len(got))
			}
			if got[0].ID == a[0].ID {
				t.Fatal("redelivered records kept their IDs: the log id must change")
			}
			if s := l.State(); s.Committed != 0 || len(s.Inflight) != 0 {
				t.Fatalf("state %+v: want everything redelivered", s)
			}
			if v := counterValue(t, e.reg, "sluice_buffer_cursor_recoveries_total"); v != 1 {
				t.Fatalf("cursor recoveries %v", v)
			}
			if v := labelledCounter(t, e.reg, "sluice_buffer_cursor_recoveries_total", "reason", tc.reason); v != 1 {
				t.Fatalf("cursor recoveries{reason=%q} %v", tc.reason, v)
			}
			if v := counterValue(t, e.reg, "sluice_buffer_corrupt_truncations_total"); v != 0 {
				t.Fatalf("a lost cursor counted as a tail truncation: %v", v)
			}
			if !strings.Contains(e.logs.String(), "level=ERROR") || !strings.Contains(e.logs.String(), "cursor file "+tc.reason) {
				t.Fatalf("not logged as an error:\n%s", e.logs)
			}
		})
	}
}

func labelledCounter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestOpenMakesItsDirectoriesDurable(t *testing.T) {
	e := newFaultEnv(t, time.Hour)
	l := e.open()
	a := records("a", 2)
	mustAppend(t, l, a)
	l = e.crash(l)
	checkAcked(t, readAllRecs(t, l), a)
	l.Close()

	// A failed directory sync fails Open.
	e = newFaultEnv(t, time.Hour)
	e.f.Inject(vfs.Fault{Op: vfs.OpSyncDir, Name: "data"})
	if _, err := disk.Open(e.opts); err == nil {
		t.Fatal("Open succeeded although syncing /data failed")
	}
}

// gateFS blocks large reads until the gate opens.
type gateFS struct {
	vfs.FS
	entered chan struct{}
	gate    chan struct{}
}

type gateFile struct {
	vfs.File
	fs *gateFS
}

func (g *gateFS) OpenFile(name string, flag int, perm iofs.FileMode) (vfs.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return gateFile{f, g}, nil
}

func (f gateFile) ReadAt(p []byte, off int64) (int, error) {
	if len(p) > 64 {
		select {
		case f.fs.entered <- struct{}{}:
		default:
		}
		<-f.fs.gate
	}
	return f.File.ReadAt(p, off)
}

func TestStateDoesNotWaitForRead(t *testing.T) {
	ctx := context.Background()
	g := &gateFS{FS: vfs.NewMem(), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	l, err := disk.Open(disk.Options{Dir: "/s", FS: g, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append(ctx, records("a", 100)); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, _, err := l.Read(ctx, 0, 0, 0, 0)
		read <- err
	}()
	<-g.entered // the Read is in its ReadAt
	state := make(chan struct{})
	go func() {
		s := l.State()
		if s.Oldest.IsZero() || s.Head == 0 {
			t.Errorf("state %+v", s)
		}
		close(state)
	}()
	select {
	case <-state:
	case <-time.After(10 * time.Second):
		t.Fatal("State waited for the Read")
	}
	close(g.gate)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
}

// waitHealthy waits for the log's writer to recover by itself (it signals
// Notify when it has).
func waitHealthy(t *testing.T, l *disk.Log) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for l.Healthy() != nil {
		select {
		case <-l.Notify():
		case <-timeout:
			t.Fatalf("not recovered: %v", l.Healthy())
		}
	}
}
