package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

// TestCrashKill9 proves the central promise: a record that got a success
// response is delivered, whatever moment the daemon is killed at. Several
// producers load the real daemon; it is SIGKILLed at random moments and
// restarted; at the end every acknowledged record must be in the output.
// Producers never resend (a failed call's records are abandoned), so any
// line seen twice is a duplicate made by the daemon; the goal is none and
// the test fails on any.
func TestCrashKill9(t *testing.T) {
	crashUnderLoad(t, `streams:
  crash:
    buffering: {size: 1, interval: 1}
    destination: {type: file, path: out, append_newline: true}
`, nil, 100, func(dir string) map[string]int { return deliveredLines(t, filepath.Join(dir, "out")) })
}

// TestCrashKill9S3 does the same with the S3 destination on s3rver, with
// batches large enough to go through multipart uploads, so kills land in
// the middle of uploads as well as of intake. Redelivered batches must
// overwrite their own object keys: no record may appear twice.
func TestCrashKill9S3(t *testing.T) {
	const bucket = "sluice-crash"
	endpoint, _ := testpeers.StartS3rver(t, bucket)
	c := s3Client(endpoint)
	cfg := `streams:
  crash:
    buffering: {size: 12, interval: 1}
    destination:
` + s3rverDestination(bucket, endpoint) + `      append_newline: true
      part_size: 5242880
`
	multipart := 0
	crashUnderLoad(t, cfg, nil, 2048, func(string) map[string]int {
		seen := map[string]int{}
		multipart = 0
		// s3rver serves an object still being written (by the restarted
		// daemon) short: such a listing is no answer yet, and the caller
		// polls again; only a final read decides.
		objs, err := s3ObjectsErr(c, bucket, "")
		if err != nil {
			t.Logf("reading the bucket: %v (polling again)", err)
			return nil
		}
		for _, b := range objs {
			if len(b) > 5<<20 {
				multipart++
			}
			for _, l := range splitLines(b) {
				seen[l]++
			}
		}
		return seen
	})
	t.Logf("%d objects went through multipart uploads", multipart)
	if multipart == 0 {
		t.Fatal("no object was large enough for a multipart upload: the test did not exercise them")
	}
}

// crashUnderLoad runs producers against the daemon while killing it with
// SIGKILL at random moments, then checks with collect (which returns every
// delivered line and its count) that every acknowledged record arrived
// exactly once. recPad pads records to about that many bytes.
func crashUnderLoad(t *testing.T, cfgBody string, env []string, recPad int, collect func(dir string) map[string]int) {
	crashUnderLoadKills(t, cfgBody, env, recPad, 5, nil, collect)
}

// crashUnderLoadKills is crashUnderLoad with the number of kills and, when
// shape is not nil, records shaped by it (e.g. made JSON documents) from
// their unique text; collect returns them as shaped.
func crashUnderLoadKills(t *testing.T, cfgBody string, env []string, recPad, kills int, shape func(string) []byte, collect func(dir string) map[string]int) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfg, []byte("listen: "+addr+"\n"+cfgBody), 0o644); err != nil {
		t.Fatal(err)
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)

	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		sentSet = map[string]bool{}
		sent    atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	const producers = 6
	pad := bytes.Repeat([]byte{'x'}, recPad)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for call := 0; ctx.Err() == nil; call++ {
				n := 1 + (call*7+p)%100
				recs := make([][]byte, n)
				for i := range recs {
					recs[i] = fmt.Appendf(nil, "p%d-c%d-r%d-%s", p, call, i, pad[:(call*31+i*17)%max(1, recPad)])
					if shape != nil {
						recs[i] = shape(string(recs[i]))
					}
				}
				sent.Add(int64(n))
				mu.Lock()
				for _, r := range recs {
					sentSet[string(r)] = true
				}
				mu.Unlock()
				ok, err := putBatch(ctx, c, addr, "crash", recs)
				var ae *answerError
				if errors.As(err, &ae) {
					t.Errorf("the daemon answered, but not with a PutRecordBatch success: %v", err)
				}
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

	d := startDaemonEnv(t, cfg, dir, addr, env)
	for k := range kills {
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		d.kill()
		t.Logf("kill %d: %d records acknowledged so far", k+1, len(snapshot(&mu, acked)))
		d = startDaemonEnv(t, cfg, dir, addr, env)
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()

	want := snapshot(&mu, acked)
	if len(want) < 1000 {
		t.Fatalf("only %d records acknowledged: the load did not run", len(want))
	}
	var got map[string]int
	waitFor(60*time.Second, func() bool {
		got = collect(dir)
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
				t.Errorf("acknowledged record %.60q… not delivered", r)
			}
		}
	}
	sentAll := snapshot(&mu, sentSet)
	invented := 0
	for r := range got {
		if !sentAll[r] {
			invented++
			if invented <= 5 {
				t.Errorf("delivered line %.60q… was never sent (torn or corrupted)", r)
			}
		}
	}
	for r, n := range got {
		if n > 1 {
			dups++
			if dups <= 5 {
				t.Errorf("record %.60q… delivered %d times", r, n)
			}
		}
	}
	t.Logf("%d sent, %d acknowledged, %d delivered lines, %d lost, %d duplicated, over %d kills",
		sent.Load(), len(want), len(got), lost, dups, kills)
	if lost > 0 || dups > 0 || invented > 0 {
		t.Fatalf("%d acknowledged records lost, %d duplicated, %d never sent\n%s", lost, dups, invented, d.log.String())
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
