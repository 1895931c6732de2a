package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashKill9 proves the central promise: a record that got a success
// response is delivered, whatever moment the daemon is killed at. Several
// producers load the real daemon; it is SIGKILLed at random moments and
// restarted; at the end every acknowledged record must be in the output.
// Producers never resend (a failed call's records are abandoned), so any
// line seen twice is a duplicate made by the daemon; the goal is none and
// the test fails on any.
func TestCrashKill9(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, addr, "crash", 1, 1, "")
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		sent  atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	const producers = 6
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for call := 0; ctx.Err() == nil; call++ {
				n := 1 + (call*7+p)%100
				recs := make([][]byte, n)
				for i := range recs {
					recs[i] = fmt.Appendf(nil, "p%d-c%d-r%d-%0*d", p, call, i, (call+i)%300, 0)
				}
				sent.Add(int64(n))
				ok, err := putBatch(ctx, c, addr, "crash", recs)
				if err != nil {
					time.Sleep(5 * time.Millisecond) // daemon down: try new records later
					continue
				}
				mu.Lock()
				for i, o := range ok {
					if o {
						acked[string(recs[i])] = true
					}
				}
				mu.Unlock()
			}
		}()
	}

	const kills = 5
	d := startDaemon(t, cfg, dir, addr)
	for k := range kills {
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		d.kill()
		t.Logf("kill %d: %d records acknowledged so far", k+1, len(snapshot(&mu, acked)))
		d = startDaemon(t, cfg, dir, addr)
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()

	want := snapshot(&mu, acked)
	if len(want) < 1000 {
		t.Fatalf("only %d records acknowledged: the load did not run", len(want))
	}
	outDir := filepath.Join(dir, "out")
	var got map[string]int
	waitFor(30*time.Second, func() bool {
		got = deliveredLines(t, outDir)
		for r := range want {
			if got[r] == 0 {
				return false
			}
		}
		return true
	})
	lost, dups := 0, 0
	for r := range want {
		if got[r] == 0 {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged record %q not delivered", r)
			}
		}
	}
	for r, n := range got {
		if n > 1 {
			dups++
			if dups <= 5 {
				t.Errorf("record %q delivered %d times", r, n)
			}
		}
	}
	t.Logf("%d sent, %d acknowledged, %d delivered lines, %d lost, %d duplicated, over %d kills",
		sent.Load(), len(want), len(got), lost, dups, kills)
	if lost > 0 || dups > 0 {
		t.Fatalf("%d acknowledged records lost, %d duplicated\n%s", lost, dups, d.log.String())
	}
}

func snapshot(mu *sync.Mutex, m map[string]bool) map[string]bool {
	mu.Lock()
	defer mu.Unlock()
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
