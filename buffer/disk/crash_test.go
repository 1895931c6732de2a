package disk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/disk/vfs"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

type ackRec struct {
	id   string
	data []byte
	meta map[string]string
}

// idPos extracts the position from a RecordId ("<log id>-<16 hex digits>").
func idPos(t *testing.T, id string) pipeline.Position {
	t.Helper()
	i := strings.LastIndexByte(id, '-')
	v, err := strconv.ParseUint(id[i+1:], 16, 64)
	if i < 0 || err != nil {
		t.Fatalf("bad record id %q", id)
	}
	return pipeline.Position(v)
}

// crashModel is what the test knows must hold after a crash.
type crashModel struct {
	mu        sync.Mutex
	acked     map[pipeline.Position]ackRec // acknowledged, not known committed
	floor     pipeline.Position            // last acknowledged commit
	attempted map[pipeline.Position]bool   // commits tried (may or may not have happened)
	marked    map[pipeline.BatchID][]string
	// Source positions (Options.Track: meta "shard" → "seq"): per shard,
	// the last acknowledged seq and every seq appended (acknowledged or
	// not). Seqs grow per shard across epochs.
	epoch    int
	ackedSeq map[string]int
	tried    map[string]map[int]bool
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestRandomCrashes runs appenders and a committer concurrently on the
// strict in-memory filesystem, crashes it at a random operation (keeping
// random torn prefixes of unsynced writes), recovers and checks that every
// acknowledged, uncommitted record is there, in order, with the same bytes
// and ID, that nothing committed comes back, and that the in-flight
// batches (up to three at a time) are rebuilt exactly. Each iteration chains several crash/recover epochs, some
// crashing during recovery itself.
func TestRandomCrashes(t *testing.T) { randomCrashes(t, nil) }

// TestRandomCrashesSealed is TestRandomCrashes with encryption at rest.
func TestRandomCrashesSealed(t *testing.T) { randomCrashes(t, testKeyring(t, "k1")) }

func randomCrashes(t *testing.T, keys *seal.Keyring) {
	iters := 300
	if testing.Short() {
		iters = 60
	}
	reg := prometheus.NewRegistry()
	metrics, err := disk.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	done := 0
	for it := 0; it < iters && time.Now().Before(deadline); it++ {
		crashIteration(t, uint64(it), metrics, keys)
		done++
	}
	if done < 30 {
		t.Fatalf("only %d iterations in the time budget", done)
	}
	if v := counterValue(t, reg, "sluice_buffer_corrupt_truncations_total"); v == 0 {
		t.Fatalf("no torn tail was ever truncated in %d iterations: the crash simulation does not exercise recovery", done)
	}
	t.Logf("%d iterations, %v torn tails truncated", done, counterValue(t, reg, "sluice_buffer_corrupt_truncations_total"))
}

func crashIteration(t *testing.T, seed uint64, metrics *disk.Metrics, keys *seal.Keyring) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	fs := vfs.NewMem()
	model := &crashModel{acked: map[pipeline.Position]ackRec{}, attempted: map[pipeline.Position]bool{}, marked: map[pipeline.BatchID][]string{},
		ackedSeq: map[string]int{}, tried: map[string]map[int]bool{}}
	opts := func() disk.Options {
		return disk.Options{
			Dir: "/data/s", Stream: "crash", FS: fs, Metrics: metrics, Logger: testLogger(),
			SegmentBytes: int64(512 + rng.IntN(2048)), MaxBytes: 48 << 10,
			MaxPendingBytes: int64(1024 + rng.IntN(8192)), ReadChunkBytes: 64 + rng.IntN(2048),
			Track: disk.Track{Key: "shard", Value: "seq"}, Keys: keys,
		}
	}
	for epoch := 0; epoch < 4; epoch++ {
		if epoch > 0 && rng.IntN(4) == 0 {
			fs.CrashAfter(1+rng.Int64N(6), rng) // crash during recovery
		}
		l, err := disk.Open(opts())
		if err != nil {
			if snap := fs.Snapshot(); snap != nil && errors.Is(err, vfs.ErrCrashed) {
				fs = snap
				continue
			}
			t.Fatalf("seed %d epoch %d: recovery failed: %v\n%s", seed, epoch, err, fs)
		}
		if snap := fs.Snapshot(); snap != nil {
			t.Fatalf("seed %d epoch %d: Open succeeded on a crashed filesystem", seed, epoch)
		}
		verifyRecovered(t, fmt.Sprintf("seed %d epoch %d", seed, epoch), l, model)
		model.epoch = epoch
		fs.CrashAfter(1+rng.Int64N(150), rng)
		runWorkload(l, model, rand.New(rand.NewPCG(seed, uint64(epoch))))
		snap := fs.Crash(rng)
		_ = l.Close()
		fs = snap
	}
}

func verifyRecovered(t *testing.T, what string, l *disk.Log, model *crashModel) {
	t.Helper()
	ctx := context.Background()
	st := l.State()
	if st.Committed < model.floor {
		t.Fatalf("%s: committed %d went back before the acknowledged commit %d", what, st.Committed, model.floor)
	}
	if st.Committed > model.floor && !model.attempted[st.Committed] {
		t.Fatalf("%s: committed %d was never committed (floor %d)", what, st.Committed, model.floor)
	}
	// Rebuild the in-flight batches exactly.
	for _, id := range st.Inflight {
		want, ok := model.marked[id]
		if !ok {
			t.Fatalf("%s: in-flight batch %v was never marked", what, id)
		}
		var got []string
		from := id.First
		for from < id.End {
			recs, next, err := l.Read(ctx, from, 0, 0, id.End)
			if err != nil || len(recs) == 0 {
				t.Fatalf("%s: rebuilding in-flight batch %v at %d: %d records, %v", what, id, from, len(recs), err)
			}
			for _, r := range recs {
				got = append(got, r.ID)
			}
			from = next
		}
		if from != id.End || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: in-flight batch %v rebuilt as %v (end %d), want %v", what, id, got, from, want)
		}
	}
	seen := map[pipeline.Position]bool{}
	inLog := map[string]int{} // the highest seq per shard still buffered
	from := st.Committed
	last := pipeline.Position(0)
	first := true
	for {
		recs, next, err := l.Read(ctx, from, 1+int(from%3000), 0, 0)
		if err != nil {
			t.Fatalf("%s: read at %d: %v", what, from, err)
		}
		if len(recs) == 0 {
			if next != from {
				t.Fatalf("%s: read at %d skipped to %d: corruption reported after a clean crash", what, from, next)
			}
			break
		}
		for _, r := range recs {
			p := idPos(t, r.ID)
			if p < st.Committed || (!first && p <= last) {
				t.Fatalf("%s: record at %d out of order (after %d, committed %d)", what, p, last, st.Committed)
			}
			first, last = false, p
			if sh, ok := r.Meta["shard"]; ok {
				seq, _ := strconv.Atoi(r.Meta["seq"])
				inLog[sh] = max(inLog[sh], seq)
			}
			if a, ok := model.acked[p]; ok {
				if a.id != r.ID || !bytes.Equal(a.data, r.Data) || fmt.Sprint(a.meta) != fmt.Sprint(r.Meta) {
					t.Fatalf("%s: record at %d is %q %q %v, acknowledged as %q %q %v", what, p, r.ID, r.Data, r.Meta, a.id, a.data, a.meta)
				}
				seen[p] = true
			}
		}
		from = next
	}
	if from != st.Head {
		t.Fatalf("%s: reading stopped at %d, head %d", what, from, st.Head)
	}
	for p, a := range model.acked {
		if p < st.Committed {
			delete(model.acked, p)
			continue
		}
		if !seen[p] {
			t.Fatalf("%s: acknowledged record %q at %d lost (committed %d, head %d)", what, a.id, p, st.Committed, st.Head)
		}
	}
	verifyPositions(t, what, l.Positions(), inLog, model)
	model.floor = st.Committed
	clear(model.attempted)
	for id := range model.marked {
		if !slices.Contains(st.Inflight, id) {
			delete(model.marked, id)
		}
	}
}

// verifyPositions checks the recovered source positions: for each shard,
// at or after its last acknowledged seq (a source resuming there loses
// nothing), at or after every seq still buffered (it re-reads nothing),
// and a seq that was appended.
func verifyPositions(t *testing.T, what string, pos map[string]string, inLog map[string]int, model *crashModel) {
	t.Helper()
	for sh, acked := range model.ackedSeq {
		if _, ok := pos[sh]; !ok {
			t.Fatalf("%s: no position for shard %s, acknowledged up to seq %d", what, sh, acked)
		}
	}
	for sh, v := range pos {
		seq, err := strconv.Atoi(v)
		switch {
		case err != nil || !model.tried[sh][seq]:
			t.Fatalf("%s: shard %s at position %q, never appended", what, sh, v)
		case seq < model.ackedSeq[sh]:
			t.Fatalf("%s: shard %s at seq %d, before the acknowledged %d: records would be lost", what, sh, seq, model.ackedSeq[sh])
		case seq < inLog[sh]:
			t.Fatalf("%s: shard %s at seq %d, but seq %d is buffered: it would be read twice", what, sh, seq, inLog[sh])
		}
		model.ackedSeq[sh] = seq // what survived is now the floor
	}
}

// runWorkload runs appenders and one runner-like reader until the
// filesystem crashes or they have done their share. The reader keeps up to
// three batches in flight and commits the oldest.
func runWorkload(l *disk.Log, model *crashModel, rng *rand.Rand) {
	ctx := context.Background()
	var wg sync.WaitGroup
	const appenders = 3
	seeds := make([]uint64, appenders)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	for w := 0; w < appenders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seeds[w], 7))
			for c := 0; c < 25; c++ {
				recs := make([]pipeline.Record, 1+r.IntN(8))
				for i := range recs {
					d := []byte(fmt.Sprintf("w%d-c%d-i%d-", w, c, i))
					d = append(d, bytes.Repeat([]byte{byte('a' + r.IntN(26))}, r.IntN(300))...)
					if r.IntN(5) == 0 {
						d = []byte{}
					}
					recs[i].Data = d
					if r.IntN(3) == 0 {
						seq := model.epoch*10000 + c*100 + i
						recs[i].Meta = map[string]string{"shard": fmt.Sprint(w), "seq": fmt.Sprint(seq)}
						model.mu.Lock()
						if model.tried[fmt.Sprint(w)] == nil {
							model.tried[fmt.Sprint(w)] = map[int]bool{}
						}
						model.tried[fmt.Sprint(w)][seq] = true
						model.mu.Unlock()
					}
				}
				err := l.Append(ctx, recs)
				if errors.Is(err, pipeline.ErrFull) {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				if err != nil {
					return
				}
				model.mu.Lock()
				for _, rec := range recs {
					p := idPosNoT(rec.ID)
					model.acked[p] = ackRec{id: rec.ID, data: rec.Data, meta: rec.Meta}
					if sh, ok := rec.Meta["shard"]; ok {
						seq, _ := strconv.Atoi(rec.Meta["seq"])
						model.ackedSeq[sh] = max(model.ackedSeq[sh], seq)
					}
				}
				model.mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		st := l.State()
		inflight := st.Inflight // rebuilt after the crash: still to commit
		from := st.Committed
		if n := len(inflight); n > 0 {
			from = inflight[n-1].End
		}
		for c := 0; c < 60; c++ {
			if n := len(inflight); n > 0 && (n >= 3 || rng.IntN(3) == 0) {
				upTo := inflight[0].End
				model.mu.Lock()
				model.attempted[upTo] = true
				model.mu.Unlock()
				if err := l.Commit(ctx, upTo); err != nil {
					return
				}
				model.mu.Lock()
				if upTo > model.floor {
					model.floor = upTo
				}
				model.mu.Unlock()
				inflight = inflight[1:]
				continue
			}
			recs, next, err := l.Read(ctx, from, 1+rng.IntN(3000), 0, 0)
			if err != nil {
				return
			}
			if len(recs) == 0 {
				time.Sleep(100 * time.Microsecond) // pacing: wait for appenders
				continue
			}
			id := pipeline.BatchID{First: from, End: next}
			ids := make([]string, len(recs))
			for i, r := range recs {
				ids[i] = r.ID
			}
			model.mu.Lock()
			model.marked[id] = ids
			model.mu.Unlock()
			if err := l.MarkInflight(ctx, id); err != nil {
				return
			}
			inflight = append(inflight, id)
			from = next
		}
	}()
	wg.Wait()
}

func idPosNoT(id string) pipeline.Position {
	i := strings.LastIndexByte(id, '-')
	v, _ := strconv.ParseUint(id[i+1:], 16, 64)
	return pipeline.Position(v)
}
