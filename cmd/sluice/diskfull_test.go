package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFullDisk fills the real filesystem the buffer lives on (a 40 MiB
// tmpfs) while the destination is down. Producers must get "Slow down."
// (ServiceUnavailableException), never an internal failure, and the daemon
// must keep running; when the destination returns, the buffer drains,
// frees its segments and accepts records again; and every acknowledged
// record ends up delivered or dead-lettered, exactly once.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a small tmpfs and needs root (CI runs as root)")
	}
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mounting a 40 MiB tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })

	outer := t.TempDir()
	dest := filepath.Join(outer, "dest")
	addr := freeAddr(t)
	cfg := filepath.Join(outer, "sluice.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
buffer: {segment_bytes: 1MiB, min_free_bytes: 8MiB}
streams:
  full:
    buffering: {size: 1, interval: 1}
    destination: {type: file, path: %s/out, append_newline: true}
`, addr, dest)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg, mnt, addr)
	// The destination goes down: its directory becomes a regular file.
	if err := os.RemoveAll(dest); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		mu                 sync.Mutex
		acked              = map[string]bool{}
		throttled, failed  atomic.Int64
		ackedAfterRecovery atomic.Int64
		recovered          atomic.Bool
		firstFailure       atomic.Value
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	pad := strings.Repeat("x", 1000)
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for call := 0; ctx.Err() == nil; call++ {
				recs := make([][]byte, 100)
				for i := range recs {
					recs[i] = fmt.Appendf(nil, "p%d-c%d-r%d-%s", p, call, i, pad)
				}
				codes, err := putBatchCodes(ctx, c, addr, "full", recs)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				mu.Lock()
				for i, code := range codes {
					switch code {
					case "":
						acked[string(recs[i])] = true
						if recovered.Load() {
							ackedAfterRecovery.Add(1)
						}
					case "ServiceUnavailableException":
						throttled.Add(1)
					default:
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, code)
					}
				}
				mu.Unlock()
				if codes[0] != "" {
					time.Sleep(20 * time.Millisecond) // back off like an SDK
				}
			}
		}()
	}
	if !waitFor(30*time.Second, func() bool { return throttled.Load() > 1000 }) {
		cancel()
		wg.Wait()
		t.Fatalf("the disk did not fill: %d throttled, %d failed (%v)\n%s", throttled.Load(), failed.Load(), firstFailure.Load(), d.log.String())
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("daemon not healthy with a full disk: %v", err)
	}
	resp.Body.Close()

	// The destination comes back.
	if err := os.Remove(dest); err != nil {
		t.Fatal(err)
	}
	recovered.Store(true)
	if !waitFor(60*time.Second, func() bool { return ackedAfterRecovery.Load() > 1000 }) {
		cancel()
		wg.Wait()
		t.Fatalf("no records accepted after the destination came back (%d)\n%s", ackedAfterRecovery.Load(), d.log.String())
	}
	cancel()
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d calls or records failed other than with Slow down (first: %v)", f, firstFailure.Load())
	}

	mu.Lock()
	want := acked
	mu.Unlock()
	seen := func() map[string]int {
		got := deliveredLinesIn(t, filepath.Join(dest, "out"))
		for line := range deliveredLines(t, filepath.Join(dest, "out", "errors")) {
			var dl struct {
				RawData string `json:"rawData"`
			}
			if err := json.Unmarshal([]byte(line), &dl); err != nil {
				t.Fatalf("dead letter %q: %v", line, err)
			}
			raw, _ := base64.StdEncoding.DecodeString(dl.RawData)
			got[string(raw)]++
		}
		return got
	}
	var got map[string]int
	waitFor(60*time.Second, func() bool {
		got = seen()
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
		}
	}
	for _, n := range got {
		if n > 1 {
			dups++
		}
	}
	t.Logf("%d acknowledged (%d after recovery), %d throttled, %d lost, %d duplicated", len(want), ackedAfterRecovery.Load(), throttled.Load(), lost, dups)
	if lost > 0 || dups > 0 {
		t.Fatalf("%d acknowledged records lost, %d duplicated\n%s", lost, dups, d.log.String())
	}
}

// putBatchCodes sends one PutRecordBatch over raw HTTP and returns each
// entry's error code ("" for a RecordId).
func putBatchCodes(ctx context.Context, c *http.Client, addr, stream string, recs [][]byte) ([]string, error) {
	type entry struct {
		Data string `json:"Data"`
	}
	req := struct {
		DeliveryStreamName string  `json:"DeliveryStreamName"`
		Records            []entry `json:"Records"`
	}{DeliveryStreamName: stream}
	for _, r := range recs {
		req.Records = append(req.Records, entry{Data: base64.StdEncoding.EncodeToString(r)})
	}
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
	hr.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := c.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &answerError{fmt.Sprintf("HTTP %d: %s", resp.StatusCode, out)}
	}
	var res struct {
		RequestResponses []struct{ RecordId, ErrorCode string }
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.RequestResponses) != len(recs) {
		return nil, &answerError{fmt.Sprintf("response %.200s: %v", out, err)}
	}
	codes := make([]string, len(recs))
	for i, r := range res.RequestResponses {
		if r.ErrorCode == "" && r.RecordId == "" {
			return nil, &answerError{fmt.Sprintf("entry %d has neither RecordId nor ErrorCode: %.200s", i, out)}
		}
		codes[i] = r.ErrorCode
	}
	return codes, nil
}

// answerError is a complete answer from the daemon that is not a valid
// PutRecordBatch success: unlike a transport error (the daemon is down, or
// was killed mid-answer), it is a defect in a crash test.
type answerError struct{ msg string }

func (e *answerError) Error() string { return e.msg }
