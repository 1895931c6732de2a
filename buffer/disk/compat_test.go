package disk_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/pipeline"
)

// v1LogID is the log id of testdata/v1-inflight.
const v1LogID = "07755b3e4442f137"

// copyV1Fixture copies testdata/v1-inflight to <tmp>/buffer/v1 and returns
// that directory.
func copyV1Fixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "buffer", "v1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"00000000000000000000.seg", "cursor"} {
		b, err := os.ReadFile(filepath.Join("testdata", "v1-inflight", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestOpensVersion1Directory opens a directory written by the release
// before cursor format 2, with one batch in flight.
func TestOpensVersion1Directory(t *testing.T) {
	ctx := context.Background()
	dir := copyV1Fixture(t)
	l, err := disk.Open(disk.Options{Dir: dir, Stream: "v1", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want := pipeline.BatchID{First: 0, End: 1200}
	s := l.State()
	if s.Committed != 0 || s.Head != 3000 || !slices.Equal(s.Inflight, []pipeline.BatchID{want}) {
		t.Fatalf("state %+v, want committed 0, head 3000, in flight [%v]", s, want)
	}
	if !s.Oldest.Equal(time.Unix(1767225600, 0)) {
		t.Fatalf("Oldest %v", s.Oldest)
	}
	check := func(recs []pipeline.Record, from int) {
		t.Helper()
		for i, r := range recs {
			n := from + i
			if d := fmt.Sprintf("v1-record-%03d", n); string(r.Data) != d {
				t.Fatalf("record %d: data %q, want %q", n, r.Data, d)
			}
			if id := fmt.Sprintf("%s-%016x", v1LogID, 30*n); r.ID != id {
				t.Fatalf("record %d: ID %q, want %q", n, r.ID, id)
			}
			if !r.Arrived.Equal(time.Unix(1767225600+int64(n), 0)) {
				t.Fatalf("record %d: arrived %v", n, r.Arrived)
			}
		}
	}
	batch, next, err := l.Read(ctx, want.First, 0, 0, want.End)
	if err != nil || len(batch) != 40 || next != want.End {
		t.Fatalf("rebuilding the in-flight batch: %d records, next %d, %v", len(batch), next, err)
	}
	check(batch, 0)
	rest, next, err := l.Read(ctx, want.End, 0, 0, 0)
	if err != nil || len(rest) != 60 || next != 3000 {
		t.Fatalf("reading the rest: %d records, next %d, %v", len(rest), next, err)
	}
	check(rest, 40)

	// Appends go after the old records, in the same log.
	recs := []pipeline.Record{{Data: []byte("v2-record-000")}}
	if err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if id := v1LogID + "-" + fmt.Sprintf("%016x", 3000); recs[0].ID != id {
		t.Fatalf("new record ID %q, want %q", recs[0].ID, id)
	}
	// The next cursor write is in format 2, and keeps the old batch.
	second := pipeline.BatchID{First: 1200, End: 3000}
	if err := l.MarkInflight(ctx, second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cursor"))
	if err != nil || len(b) != 36+2*16 || b[4] != 2 {
		t.Fatalf("cursor after a mark: %d bytes, version %v, %v", len(b), b[4:5], err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = disk.Open(disk.Options{Dir: dir, Stream: "v1", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if s := l.State(); !slices.Equal(s.Inflight, []pipeline.BatchID{want, second}) || s.Head != 3000+30 {
		t.Fatalf("after reopen: %+v", s)
	}
	all, _, err := l.Read(ctx, 0, 0, 0, 0)
	if err != nil || len(all) != 101 || string(all[100].Data) != "v2-record-000" {
		t.Fatalf("after reopen: %d records, %v", len(all), err)
	}
	check(all[:100], 0)
}

func TestOpenLocksTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "buffer", "s")
	open := func(owner string) (*disk.Log, error) {
		return disk.Open(disk.Options{Dir: dir, Stream: "s", Owner: owner, Logger: testLogger()})
	}
	l, err := open("listen 127.0.0.1:4195")
	if err != nil {
		t.Fatal(err)
	}
	_, err = open("second")
	var le *disk.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second Open: %v, want a *LockedError", err)
	}
	holder := fmt.Sprintf("pid %d listen 127.0.0.1:4195", os.Getpid())
	if le.Holder != holder || !strings.Contains(err.Error(), holder) || le.Path != filepath.Join(dir, "lock") {
		t.Fatalf("second Open: %v (holder %q, path %q), want holder %q", err, le.Holder, le.Path, holder)
	}
	if _, err := disk.Inspect(dir); !errors.As(err, &le) {
		t.Fatalf("Inspect of an open log: %v, want a *LockedError", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = open("third")
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// The same lock, on a file of the caller's choice.
	name := filepath.Join(t.TempDir(), "sluice.lock")
	dl, err := disk.Lock(name, "daemon")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := disk.Lock(name, "other"); !errors.As(err, &le) || !strings.Contains(le.Holder, "daemon") {
		t.Fatalf("second Lock: %v", err)
	}
	if err := dl.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestInspect(t *testing.T) {
	ctx := context.Background()
	dir := copyV1Fixture(t)
	before := dirContent(t, dir)
	b, err := disk.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := disk.Backlog{Committed: 0, Head: 3000, Inflight: []pipeline.BatchID{{First: 0, End: 1200}},
		Bytes: 3000, Records: -1, Oldest: time.Unix(1767225600, 0), Segments: 1}
	if fmt.Sprint(b) != fmt.Sprint(want) || !b.Oldest.Equal(want.Oldest) {
		t.Fatalf("Inspect: %+v\nwant %+v", b, want)
	}
	if after := dirContent(t, dir); !maps.Equal(before, after) {
		t.Fatalf("Inspect modified the directory: %v -> %v", before, after)
	}

	l, err := disk.Open(disk.Options{Dir: dir, Stream: "v1", SegmentBytes: 1000, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, 1200); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "x", 40, 50) // rolls segments
	st := l.State()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = disk.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Committed != 1200 || b.Head != st.Head || b.Bytes != st.Bytes || len(b.Inflight) != 0 ||
		!b.Oldest.Equal(time.Unix(1767225600+40, 0)) || b.Segments < 2 || b.CursorLost {
		t.Fatalf("Inspect after a commit: %+v (state was %+v)", b, st)
	}

	// A drained directory has no backlog; a lost cursor means everything.
	l, err = disk.Open(disk.Options{Dir: dir, Stream: "v1", SegmentBytes: 1000, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, st.Head); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if b, err := disk.Inspect(dir); err != nil || b.Bytes != 0 || b.Head != st.Head || !b.Oldest.IsZero() {
		t.Fatalf("Inspect of a drained directory: %+v, %v", b, err)
	}
	if err := os.Remove(filepath.Join(dir, "cursor")); err != nil {
		t.Fatal(err)
	}
	if b, err := disk.Inspect(dir); err != nil || !b.CursorLost || b.Bytes != int64(b.Head-b.Committed) || b.Head != st.Head {
		t.Fatalf("Inspect without a cursor: %+v, %v", b, err)
	}
	if _, err := disk.Inspect(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Inspect of a missing directory: %v", err)
	}
}

func dirContent(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := e.Info()
		out[e.Name()] = fmt.Sprintf("%x %v", b, info.ModTime())
	}
	return out
}
