// Package buffertest is a conformance suite for buffer.Buffer
// implementations. Every implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		buffertest.Run(t, buffertest.Harness{Open: ..., Durable: true})
//	}
package buffertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/pipeline"
)

// Harness opens the implementation under test.
type Harness struct {
	// Open opens a buffer whose storage lives in dir (a fresh directory per
	// test) with a quota of maxBytes. When Durable, opening the same dir
	// again after Close must bring back the records and cursors.
	Open func(t testing.TB, dir string, maxBytes int64) buffer.Buffer
	// Durable says the implementation survives Close and reopen.
	Durable bool
}

// bigQuota is the quota of tests that do not exercise it.
const bigQuota = 64 << 20

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	t.Run("AppendRead", func(t *testing.T) { testAppendRead(t, h) })
	t.Run("ReadLimits", func(t *testing.T) { testReadLimits(t, h) })
	t.Run("Notify", func(t *testing.T) { testNotify(t, h) })
	t.Run("InflightCommit", func(t *testing.T) { testInflightCommit(t, h) })
	t.Run("SeveralInflight", func(t *testing.T) { testSeveralInflight(t, h) })
	t.Run("InflightLimit", func(t *testing.T) { testInflightLimit(t, h) })
	t.Run("ReadOwned", func(t *testing.T) { testReadOwned(t, h) })
	t.Run("Healthy", func(t *testing.T) { testHealthy(t, h) })
	t.Run("Quota", func(t *testing.T) { testQuota(t, h) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, h) })
	t.Run("EmptyRecords", func(t *testing.T) { testEmpty(t, h) })
	t.Run("Close", func(t *testing.T) { testClose(t, h) })
	if h.Durable {
		t.Run("Reopen", func(t *testing.T) { testReopen(t, h) })
	}
}

func open(t *testing.T, h Harness, dir string, quota int64) buffer.Buffer {
	t.Helper()
	b := h.Open(t, dir, quota)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// rec is a copy of what a test expects back.
type rec struct {
	ID      string
	Data    []byte
	Arrived time.Time
	Meta    map[string]string
}

func snapshot(recs []pipeline.Record) []rec {
	out := make([]rec, len(recs))
	for i, r := range recs {
		out[i] = rec{ID: r.ID, Data: bytes.Clone(r.Data), Arrived: r.Arrived, Meta: r.Meta}
		if out[i].Data == nil {
			out[i].Data = []byte{}
		}
	}
	return out
}

func makeRecs(prefix string, n, size int) []pipeline.Record {
	recs := make([]pipeline.Record, n)
	for i := range recs {
		d := []byte(fmt.Sprintf("%s-%d-", prefix, i))
		for len(d) < size {
			d = append(d, byte('a'+(len(d)+i)%26))
		}
		recs[i].Data = d
	}
	return recs
}

// readAll reads every record from from onwards, in calls of at most 7
// records, and returns copies and the final position.
func readAll(t *testing.T, b buffer.Buffer, from, end pipeline.Position) ([]rec, pipeline.Position) {
	t.Helper()
	var out []rec
	for {
		recs, next, err := b.Read(context.Background(), from, 0, 7, end)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(recs) == 0 {
			if next != from {
				t.Fatalf("Read(%d) returned no records and next %d", from, next)
			}
			return out, from
		}
		if next <= from {
			t.Fatalf("Read(%d) returned %d records and next %d", from, len(recs), next)
		}
		out = append(out, snapshot(recs)...)
		from = next
	}
}

func equalRecs(t *testing.T, what string, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || !bytes.Equal(g.Data, w.Data) || !g.Arrived.Equal(w.Arrived) || !equalMeta(g.Meta, w.Meta) {
			t.Fatalf("%s: record %d: got {%q %q %v %v}, want {%q %q %v %v}", what, i,
				g.ID, g.Data, g.Arrived, g.Meta, w.ID, w.Data, w.Arrived, w.Meta)
		}
	}
}

func equalMeta(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func mustAppend(t *testing.T, b buffer.Buffer, recs []pipeline.Record) {
	t.Helper()
	if err := b.Append(context.Background(), recs); err != nil {
		t.Fatalf("Append(%d records): %v", len(recs), err)
	}
}

func testAppendRead(t *testing.T, h Harness) {
	b := open(t, h, t.TempDir(), bigQuota)
	if s := b.State(); s.Head != s.Committed || s.Bytes != 0 {
		t.Fatalf("new buffer state %+v: want empty", s)
	}
	given := time.Unix(1700000000, 123456789)
	var want []rec
	for i, n := range []int{1, 5, 17} {
		recs := makeRecs(fmt.Sprintf("b%d", i), n, 10+i*300)
		recs[0].Arrived = given
		recs[n-1].Meta = map[string]string{"shard": "shardId-000000000001", "sequence": fmt.Sprint(i), "": "empty key"}
		before := time.Now()
		mustAppend(t, b, recs)
		for j, r := range recs {
			if r.ID == "" {
				t.Fatalf("record %d of append %d has no ID", j, i)
			}
			if j == 0 && !r.Arrived.Equal(given) {
				t.Fatalf("given Arrived overwritten: %v", r.Arrived)
			}
			if j > 0 && (r.Arrived.Before(before.Add(-time.Second)) || r.Arrived.After(time.Now().Add(time.Second))) {
				t.Fatalf("record %d Arrived %v, want about now", j, r.Arrived)
			}
		}
		want = append(want, snapshot(recs)...)
	}
	got, next := readAll(t, b, b.State().Committed, 0)
	equalRecs(t, "read", got, want)
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.ID] {
			t.Fatalf("duplicate ID %q", r.ID)
		}
		if len(r.ID) > 48 {
			t.Fatalf("ID %q longer than 48", r.ID)
		}
		seen[r.ID] = true
	}
	s := b.State()
	if next != s.Head {
		t.Fatalf("read ended at %d, head is %d", next, s.Head)
	}
	if s.Bytes <= 0 || s.Records != -1 && s.Records != int64(len(want)) {
		t.Fatalf("state %+v after %d records", s, len(want))
	}
	if !s.Oldest.Equal(given) {
		t.Fatalf("Oldest %v, want %v", s.Oldest, given)
	}
	again, _ := readAll(t, b, s.Committed, 0)
	equalRecs(t, "re-read", again, want)
}

func testReadLimits(t *testing.T, h Harness) {
	ctx := context.Background()
	b := open(t, h, t.TempDir(), bigQuota)
	mustAppend(t, b, makeRecs("r", 10, 100))
	start := b.State().Committed
	check := func(name string, maxBytes, maxRecords int, end pipeline.Position, want int) pipeline.Position {
		t.Helper()
		recs, next, err := b.Read(ctx, start, maxBytes, maxRecords, end)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(recs) != want {
			t.Fatalf("%s: got %d records, want %d", name, len(recs), want)
		}
		for i := range recs {
			if exp := fmt.Sprintf("r-%d-", i); !bytes.HasPrefix(recs[i].Data, []byte(exp)) {
				t.Fatalf("%s: record %d is %q", name, i, recs[i].Data)
			}
		}
		return next
	}
	check("maxBytes 250", 250, 0, 0, 2)
	check("maxBytes 300", 300, 100, 0, 3)
	check("maxBytes 50 returns one", 50, 0, 0, 1)
	check("maxRecords 3", 1<<20, 3, 0, 3)
	check("no limits", 0, 0, 0, 10)
	p4 := check("maxRecords 4", 0, 4, 0, 4)
	check("end", 0, 0, p4, 4)
	check("end and maxRecords", 0, 2, p4, 2)
	head := b.State().Head
	recs, next, err := b.Read(ctx, head, 0, 0, 0)
	if err != nil || len(recs) != 0 || next != head {
		t.Fatalf("Read at head: %d records, next %d (head %d), err %v", len(recs), next, head, err)
	}
}

func testNotify(t *testing.T, h Harness) {
	b := open(t, h, t.TempDir(), bigQuota)
	select {
	case <-b.Notify():
	default:
	}
	woke := make(chan struct{})
	go func() {
		defer close(woke)
		<-b.Notify()
	}()
	select {
	case <-woke:
		t.Fatal("reader woke before any append")
	case <-time.After(20 * time.Millisecond):
	}
	mustAppend(t, b, makeRecs("n", 1, 10))
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify did not wake the reader after Append")
	}
	recs, _, err := b.Read(context.Background(), b.State().Committed, 0, 0, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("after wake-up: %d records, err %v", len(recs), err)
	}
}

func testInflightCommit(t *testing.T, h Harness) {
	ctx := context.Background()
	dir := t.TempDir()
	b := h.Open(t, dir, bigQuota)
	mustAppend(t, b, makeRecs("c", 10, 200))
	all, _ := readAll(t, b, 0, 0)
	s0 := b.State()
	recs, next, err := b.Read(ctx, s0.Committed, 0, 4, 0)
	if err != nil || len(recs) != 4 {
		t.Fatalf("Read: %d records, err %v", len(recs), err)
	}
	batch := snapshot(recs)
	id := pipeline.BatchID{First: s0.Committed, End: next}
	if err := b.MarkInflight(ctx, id); err != nil {
		t.Fatalf("MarkInflight: %v", err)
	}
	if got := b.State().Inflight; !slices.Equal(got, []pipeline.BatchID{id}) {
		t.Fatalf("Inflight %v, want [%v]", got, id)
	}
	if h.Durable {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		b = h.Open(t, dir, bigQuota)
		s := b.State()
		if !slices.Equal(s.Inflight, []pipeline.BatchID{id}) || s.Committed != s0.Committed || s.Head != s0.Head {
			t.Fatalf("after reopen state %+v, want inflight %v committed %d head %d", s, id, s0.Committed, s0.Head)
		}
		rebuilt, _ := readAll(t, b, s.Committed, id.End)
		equalRecs(t, "rebuilt in-flight batch", rebuilt, batch)
	}
	if err := b.Commit(ctx, next); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	s := b.State()
	if s.Committed != next || len(s.Inflight) != 0 || s.Bytes >= s0.Bytes || s.Bytes != int64(s.Head-s.Committed) {
		t.Fatalf("after commit state %+v (before %+v)", s, s0)
	}
	if s.Records != -1 && s.Records != 6 {
		t.Fatalf("Records %d after committing 4 of 10", s.Records)
	}
	rest, _ := readAll(t, b, s.Committed, 0)
	equalRecs(t, "rest after commit", rest, all[4:])
	if h.Durable {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		b = h.Open(t, dir, bigQuota)
		if s2 := b.State(); s2.Committed != next || len(s2.Inflight) != 0 || s2.Head != s.Head {
			t.Fatalf("after reopen state %+v, want committed %d head %d", s2, next, s.Head)
		}
		rest, _ = readAll(t, b, b.State().Committed, 0)
		equalRecs(t, "rest after reopen", rest, all[4:])
	}
	if err := b.Commit(ctx, b.State().Head); err != nil {
		t.Fatalf("Commit all: %v", err)
	}
	if s := b.State(); s.Bytes != 0 || !s.Oldest.IsZero() || s.Committed != s.Head {
		t.Fatalf("after committing all: %+v", s)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func testQuota(t *testing.T, h Harness) {
	ctx := context.Background()
	const quota = 16 << 10
	b := open(t, h, t.TempDir(), quota)
	big := makeRecs("all", 20, 1000) // ~20 KiB: never fits
	if err := b.Append(ctx, big); !errors.Is(err, pipeline.ErrFull) {
		t.Fatalf("Append over quota: %v, want ErrFull", err)
	}
	if s := b.State(); s.Bytes != 0 || s.Head != s.Committed {
		t.Fatalf("failed append stored something: %+v", s)
	}
	n := 0
	for ; ; n++ {
		err := b.Append(ctx, makeRecs("q", 1, 1000))
		if errors.Is(err, pipeline.ErrFull) {
			break
		}
		if err != nil {
			t.Fatalf("Append %d: %v", n, err)
		}
		if n > 100 {
			t.Fatal("quota never reached")
		}
	}
	s := b.State()
	if n < 10 || s.Bytes > quota || s.Bytes+1000 <= quota-64 {
		t.Fatalf("quota %d: %d records fit, state %+v", quota, n, s)
	}
	// A small record may still fit where a big one did not; a batch that
	// does not fit stores nothing.
	if err := b.Append(ctx, makeRecs("q2", 5, 1000)); !errors.Is(err, pipeline.ErrFull) {
		t.Fatalf("batch over quota: %v, want ErrFull", err)
	}
	if s2 := b.State(); s2.Head != s.Head || s2.Bytes != s.Bytes {
		t.Fatalf("failed batch changed state: %+v -> %+v", s, s2)
	}
	got, _ := readAll(t, b, s.Committed, 0)
	if len(got) != n {
		t.Fatalf("read %d records, appended %d", len(got), n)
	}
	recs, next, err := b.Read(ctx, s.Committed, 0, 3, 0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("Read: %d, %v", len(recs), err)
	}
	if err := b.Commit(ctx, next); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	mustAppend(t, b, makeRecs("after", 2, 1000))
	if s3 := b.State(); s3.Bytes > quota {
		t.Fatalf("over quota after commit: %+v", s3)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	ctx := context.Background()
	b := open(t, h, t.TempDir(), bigQuota)
	const writers, calls = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := 0
			for c := 0; c < calls; c++ {
				n := 1 + (c+w)%5
				recs := make([]pipeline.Record, n)
				for i := range recs {
					recs[i].Data = []byte(fmt.Sprintf("w%d:%d:%s", w, seq, bytes.Repeat([]byte{'x'}, (seq*7)%300)))
					seq++
				}
				if err := b.Append(ctx, recs); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	// One reader consumes and commits while the writers run.
	var total int
	lastSeq := make([]int, writers)
	for i := range lastSeq {
		lastSeq[i] = -1
	}
	ids := map[string]bool{}
	want := 0
	for w := 0; w < writers; w++ {
		for c := 0; c < calls; c++ {
			want += 1 + (c+w)%5
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for total < want {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d records before the deadline", total, want)
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		from := b.State().Committed
		recs, next, err := b.Read(ctx, from, 4096, 0, 0)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(recs) == 0 {
			select {
			case <-b.Notify():
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		for _, r := range recs {
			var w, seq int
			if _, err := fmt.Sscanf(string(r.Data), "w%d:%d:", &w, &seq); err != nil {
				t.Fatalf("bad record %q: %v", r.Data, err)
			}
			if seq != lastSeq[w]+1 {
				t.Fatalf("writer %d: record %d after %d", w, seq, lastSeq[w])
			}
			lastSeq[w] = seq
			if ids[r.ID] {
				t.Fatalf("duplicate ID %q", r.ID)
			}
			ids[r.ID] = true
		}
		total += len(recs)
		if err := b.MarkInflight(ctx, pipeline.BatchID{First: from, End: next}); err != nil {
			t.Fatalf("MarkInflight: %v", err)
		}
		if err := b.Commit(ctx, next); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := b.State(); s.Committed != s.Head || s.Bytes != 0 {
		t.Fatalf("after consuming everything: %+v", s)
	}
}

func testEmpty(t *testing.T, h Harness) {
	b := open(t, h, t.TempDir(), bigQuota)
	recs := []pipeline.Record{{Data: nil}, {Data: []byte{}}, {Data: []byte("x")}, {}}
	mustAppend(t, b, recs)
	got, _ := readAll(t, b, 0, 0)
	equalRecs(t, "empty records", got, snapshot(recs))
	if s := b.State(); s.Bytes <= 0 {
		t.Fatalf("empty records take no space: %+v", s)
	}
}

func testClose(t *testing.T, h Harness) {
	ctx := context.Background()
	b := h.Open(t, t.TempDir(), bigQuota)
	mustAppend(t, b, makeRecs("x", 3, 10))
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Append(ctx, makeRecs("y", 1, 10)); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, _, err := b.Read(ctx, 0, 0, 0, 0); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
	if err := b.Commit(ctx, 0); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Commit after Close: %v, want ErrClosed", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	b2 := open(t, h, t.TempDir(), bigQuota)
	if err := b2.Append(cancelled, makeRecs("z", 1, 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with cancelled context: %v", err)
	}
	if s := b2.State(); s.Head != s.Committed {
		t.Fatalf("cancelled append stored records: %+v", s)
	}
}

func testReopen(t *testing.T, h Harness) {
	ctx := context.Background()
	dir := t.TempDir()
	b := h.Open(t, dir, bigQuota)
	first := makeRecs("p", 5, 500)
	mustAppend(t, b, first)
	ids := map[string]bool{}
	for _, r := range first {
		ids[r.ID] = true
	}
	head := b.State().Head
	if err := b.Commit(ctx, head); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b = open(t, h, dir, bigQuota)
	s := b.State()
	if s.Head != head || s.Committed != head || s.Bytes != 0 {
		t.Fatalf("after reopen of a drained buffer: %+v, want head = committed = %d", s, head)
	}
	second := makeRecs("p2", 3, 50)
	mustAppend(t, b, second)
	for _, r := range second {
		if ids[r.ID] {
			t.Fatalf("ID %q reused after reopen", r.ID)
		}
	}
	got, _ := readAll(t, b, head, 0)
	equalRecs(t, "after reopen", got, snapshot(second))
}

// readBatches reads n consecutive batches of per records from from.
func readBatches(t *testing.T, b buffer.Buffer, from pipeline.Position, n, per int) ([]pipeline.BatchID, [][]rec) {
	t.Helper()
	var ids []pipeline.BatchID
	var batches [][]rec
	for i := 0; i < n; i++ {
		recs, next, err := b.Read(context.Background(), from, 0, per, 0)
		if err != nil || len(recs) != per {
			t.Fatalf("Read batch %d at %d: %d records, err %v", i, from, len(recs), err)
		}
		ids = append(ids, pipeline.BatchID{First: from, End: next})
		batches = append(batches, snapshot(recs))
		from = next
	}
	return ids, batches
}

func testSeveralInflight(t *testing.T, h Harness) {
	ctx := context.Background()
	dir := t.TempDir()
	b := h.Open(t, dir, bigQuota)
	defer func() { _ = b.Close() }()
	mustAppend(t, b, makeRecs("m", 17, 100))
	// Commit one record first, so that there is a position before the
	// committed one.
	_, one, err := b.Read(ctx, b.State().Committed, 0, 1, 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if err := b.Commit(ctx, one); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	ids, batches := readBatches(t, b, one, 3, 4)
	a, bb, c := ids[0], ids[1], ids[2]
	for _, id := range ids {
		if err := b.MarkInflight(ctx, id); err != nil {
			t.Fatalf("MarkInflight(%v): %v", id, err)
		}
	}
	if got := b.State().Inflight; !slices.Equal(got, ids) {
		t.Fatalf("Inflight %v, want %v", got, ids)
	}
	// State returns a copy.
	b.State().Inflight[0] = pipeline.BatchID{}
	if got := b.State().Inflight; !slices.Equal(got, ids) {
		t.Fatalf("modifying State().Inflight changed the buffer: %v", got)
	}
	// Marking a batch in flight again is a no-op, Part and Round are not
	// kept.
	if err := b.MarkInflight(ctx, pipeline.BatchID{First: bb.First, End: bb.End, Part: 2, Round: 1}); err != nil {
		t.Fatalf("marking a batch in flight again: %v", err)
	}
	head := b.State().Head
	for name, id := range map[string]pipeline.BatchID{
		"overlapping the last":    {First: c.First + 1, End: head},
		"before the last":         {First: a.First, End: bb.End},
		"spanning two":            {First: bb.First, End: head},
		"empty":                   {First: c.End, End: c.End},
		"reversed":                {First: head, End: c.End},
		"beyond head":             {First: c.End, End: head + 1},
		"before committed":        {First: a.First - 1, End: a.First},
		"inside one already held": {First: bb.First, End: bb.End - 1},
	} {
		if err := b.MarkInflight(ctx, id); err == nil {
			t.Fatalf("MarkInflight %s (%v) accepted", name, id)
		}
	}
	if got := b.State().Inflight; !slices.Equal(got, ids) {
		t.Fatalf("refused marks changed the set: %v", got)
	}
	if err := b.Commit(ctx, a.End); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	want := []pipeline.BatchID{bb, c}
	if s := b.State(); !slices.Equal(s.Inflight, want) || s.Committed != a.End {
		t.Fatalf("after committing the first: %+v, want inflight %v", s, want)
	}
	if h.Durable {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		b = h.Open(t, dir, bigQuota)
		s := b.State()
		if !slices.Equal(s.Inflight, want) || s.Committed != a.End || s.Head != head {
			t.Fatalf("after reopen: %+v, want inflight %v committed %d head %d", s, want, a.End, head)
		}
		for i, id := range s.Inflight {
			got, _ := readAll(t, b, id.First, id.End)
			equalRecs(t, fmt.Sprintf("rebuilt batch %v", id), got, batches[i+1])
		}
	}
	// A batch after the last one may be marked, with a gap or not.
	d := pipeline.BatchID{First: c.End, End: head}
	if err := b.MarkInflight(ctx, d); err != nil {
		t.Fatalf("MarkInflight after the last: %v", err)
	}
	// Committing into the middle of the set drops what it covers.
	if err := b.Commit(ctx, c.End); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if s := b.State(); !slices.Equal(s.Inflight, []pipeline.BatchID{d}) {
		t.Fatalf("after committing two more: %+v, want inflight [%v]", s, d)
	}
	if err := b.Commit(ctx, head); err != nil {
		t.Fatalf("Commit all: %v", err)
	}
	if s := b.State(); len(s.Inflight) != 0 {
		t.Fatalf("after committing everything: inflight %v", s.Inflight)
	}
}

func testInflightLimit(t *testing.T, h Harness) {
	ctx := context.Background()
	b := open(t, h, t.TempDir(), bigQuota)
	mustAppend(t, b, makeRecs("l", buffer.MaxInflight+1, 10))
	ids, _ := readBatches(t, b, b.State().Committed, buffer.MaxInflight+1, 1)
	for _, id := range ids[:buffer.MaxInflight] {
		if err := b.MarkInflight(ctx, id); err != nil {
			t.Fatalf("MarkInflight(%v): %v", id, err)
		}
	}
	if err := b.MarkInflight(ctx, ids[buffer.MaxInflight]); err == nil {
		t.Fatalf("batch %d in flight accepted (MaxInflight %d)", buffer.MaxInflight+1, buffer.MaxInflight)
	}
	if n := len(b.State().Inflight); n != buffer.MaxInflight {
		t.Fatalf("%d in flight, want %d", n, buffer.MaxInflight)
	}
	if err := b.Commit(ctx, ids[0].End); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := b.MarkInflight(ctx, ids[buffer.MaxInflight]); err != nil {
		t.Fatalf("MarkInflight after a commit made room: %v", err)
	}
}

func testReadOwned(t *testing.T, h Harness) {
	ctx := context.Background()
	b := open(t, h, t.TempDir(), bigQuota)
	mustAppend(t, b, makeRecs("o", 12, 300))
	start := b.State().Committed
	first, next, err := b.Read(ctx, start, 0, 4, 0)
	if err != nil || len(first) != 4 {
		t.Fatalf("Read: %d records, %v", len(first), err)
	}
	want := snapshot(first)
	// Later reads, of other records and of the same ones, do not touch the
	// memory of the first batch.
	for _, from := range []pipeline.Position{next, start, next} {
		recs, _, err := b.Read(ctx, from, 0, 8, 0)
		if err != nil || len(recs) == 0 {
			t.Fatalf("Read(%d): %d records, %v", from, len(recs), err)
		}
		for i := range recs {
			for j := range recs[i].Data {
				recs[i].Data[j] = 'X'
			}
		}
		// Released memory may be reused by the next Read, which must
		// neither see the scribbles nor touch the first batch.
		b.Release(recs)
		equalRecs(t, "first batch after another Read", snapshot(first), want)
	}
	fresh, _, err := b.Read(ctx, next, 0, 8, 0)
	if err != nil || len(fresh) == 0 {
		t.Fatalf("Read after Release: %d records, %v", len(fresh), err)
	}
	for _, r := range fresh {
		if bytes.Contains(r.Data, []byte("X")) {
			t.Fatalf("a Read after Release returned released memory's old contents: %q", r.Data)
		}
	}
	b.Release(nil) // harmless
	// What the caller does to its records does not change the buffer.
	for i := range first {
		for j := range first[i].Data {
			first[i].Data[j] = 'Y'
		}
		first[i].Data = append(first[i].Data, 'Z')
	}
	again, _ := readAll(t, b, start, next)
	equalRecs(t, "re-read after the caller modified its records", again, want)
}

func testHealthy(t *testing.T, h Harness) {
	b := h.Open(t, t.TempDir(), bigQuota)
	if err := b.Healthy(); err != nil {
		t.Fatalf("Healthy on a new buffer: %v", err)
	}
	mustAppend(t, b, makeRecs("h", 2, 10))
	if err := b.Healthy(); err != nil {
		t.Fatalf("Healthy after an append: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Healthy(); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Healthy after Close: %v, want ErrClosed", err)
	}
}
