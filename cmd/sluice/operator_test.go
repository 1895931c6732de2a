package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Operator mistakes never lose data silently.

// TestSecondDaemonOnSameDataDir: a second daemon started on the data
// directory of a running one (another port) exits at once, non-zero,
// naming the holder, before it touches anything; the first keeps serving
// under load and delivers every record it acknowledged, once.
func TestSecondDaemonOnSameDataDir(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, addr, "shared", 1, 1, "")
	d := startDaemon(t, cfg, dir, addr)

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for call := 0; ctx.Err() == nil; call++ {
				recs := make([][]byte, 200)
				for i := range recs {
					recs[i] = fmt.Appendf(nil, "p%d-c%d-r%d", p, call, i)
				}
				ok, err := putBatch(ctx, c, addr, "shared", recs)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("put: %v", err)
					}
					return
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

	// The second daemon: same file, same data dir, another port.
	addr2 := freeAddr(t)
	cfg2 := filepath.Join(dir, "second.yaml")
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg2, []byte(strings.Replace(string(body), addr, addr2, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command(sluiceBin, "run", "-c", cfg2, "--data-dir", dir)
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err == nil {
		t.Fatalf("the second daemon exited 0:\n%s", out)
	}
	if !strings.Contains(string(out), "locked by pid "+strconv.Itoa(d.cmd.Process.Pid)) {
		t.Fatalf("the second daemon's error does not name the holder (pid %d):\n%s", d.cmd.Process.Pid, out)
	}
	t.Logf("second daemon exited after %v: %s", took.Round(time.Millisecond), firstLine(string(out)))
	if resp, err := http.Get("http://" + addr2 + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("the second daemon is serving")
	}

	time.Sleep(time.Second) // the first goes on serving under load meanwhile
	cancel()
	wg.Wait()
	if err := d.stop(30 * time.Second); err != nil {
		t.Fatalf("first daemon: %v\n%s", err, d.log.String())
	}
	want := snapshot(&mu, acked)
	if len(want) < 1000 {
		t.Fatalf("only %d records acknowledged", len(want))
	}
	got := deliveredLines(t, filepath.Join(dir, "out"))
	for r := range want {
		if got[r] != 1 {
			t.Fatalf("acknowledged record %q delivered %d times", r, got[r])
		}
	}
	t.Logf("%d acknowledged records delivered once each", len(want))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// TestRemovedStreamBacklogIsReported: records acknowledged for a stream
// that is then removed from the configuration stay in its buffer
// directory, are reported at start (log and metric), and are delivered
// when the stream comes back. Switching that stream to a memory buffer
// fails validation with the size of the backlog unless it is abandoned
// explicitly.
func TestRemovedStreamBacklogIsReported(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, addr, "old", 1, 900, "")
	d := startDaemon(t, cfg, dir, addr)
	recs := make([][]byte, 100)
	for i := range recs {
		recs[i] = fmt.Appendf(nil, "old-%03d", i)
	}
	ok, err := putBatch(context.Background(), http.DefaultClient, addr, "old", recs)
	if err != nil || !allTrue(ok) {
		t.Fatalf("put: %v %v", ok, err)
	}
	d.kill() // before the 900 s interval: everything is still buffered

	// The stream is renamed.
	cfgNew := writeConfig(t, dir, addr, "new", 1, 1, "")
	d = startDaemon(t, cfgNew, dir, addr)
	if !waitFor(5*time.Second, func() bool { return strings.Contains(d.log.String(), "stream=old") }) {
		t.Fatalf("no start-up report of the stranded buffer:\n%s", d.log.String())
	}
	if v, ok := metricValue(t, addr, `sluice_buffer_stranded_bytes{stream="old"}`); !ok || v <= 0 {
		t.Fatalf("sluice_buffer_stranded_bytes{stream=\"old\"} = %v (present %v)", v, ok)
	}
	if err := d.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	// Switched to a memory buffer: refused, with the size.
	mem := writeConfig(t, dir, addr, "old", 1, 1, "    buffer: {type: memory}\n")
	out, err := exec.Command(sluiceBin, "validate", "-c", mem, "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bytes of undelivered records") {
		t.Fatalf("validate accepted a switch to memory over a disk backlog:\n%s", out)
	}
	abandon := writeConfig(t, dir, addr, "old", 1, 1, "    buffer: {type: memory, abandon_disk_backlog: true}\n")
	if out, err := exec.Command(sluiceBin, "validate", "-c", abandon, "--data-dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("validate refused an explicit abandon: %v\n%s", err, out)
	}

	// The stream comes back with its disk buffer: everything is delivered.
	cfg = writeConfig(t, dir, addr, "old", 1, 1, "")
	d = startDaemon(t, cfg, dir, addr)
	var got map[string]int
	if !waitFor(15*time.Second, func() bool {
		got = deliveredLines(t, filepath.Join(dir, "out"))
		return len(got) == len(recs)
	}) {
		t.Fatalf("delivered %d of %d records\n%s", len(got), len(recs), d.log.String())
	}
	for _, r := range recs {
		if got[string(r)] != 1 {
			t.Fatalf("record %q delivered %d times", r, got[string(r)])
		}
	}
}

func allTrue(ok []bool) bool {
	for _, o := range ok {
		if !o {
			return false
		}
	}
	return len(ok) > 0
}

// TestValidateFiveMistakes: `sluice validate` on a destination with five
// mistakes in its options prints five errors, each once at its key's line
// and column, and says 5 error(s).
func TestValidateFiveMistakes(t *testing.T) {
	const file = "../../pipeline/assemble/testdata/bad/five_mistakes.yaml"
	out, err := exec.Command(sluiceBin, "validate", "-c", file).CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted it:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 6 || lines[5] != "5 error(s)" {
		t.Fatalf("want five errors and the count, got:\n%s", out)
	}
	for i, key := range []string{"7:20: streams.orders.destination.compression:", "8:30: streams.orders.destination.max_active_partitions:",
		"9:25: streams.orders.destination.custom_time_zone:", "10:23: streams.orders.destination.file_extension:",
		"12:15: streams.orders.destination.format.type:"} {
		if !strings.HasPrefix(lines[i], file+":"+key) || strings.Count(lines[i], file+":") != 1 {
			t.Errorf("line %d = %q, want one position %s", i+1, lines[i], key)
		}
	}
}

// TestV1DataDirRedelivered: a data directory written by the previous
// release (cursor format 1, one batch in flight, nothing committed) opens
// with this one; its in-flight batch is rebuilt exactly (records 0..39 in
// one object) and every record is delivered once.
func TestV1DataDirRedelivered(t *testing.T) {
	dir := t.TempDir()
	bufDir := filepath.Join(dir, "buffer", "v1")
	if err := os.MkdirAll(bufDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"00000000000000000000.seg", "cursor"} {
		b, err := os.ReadFile(filepath.Join("../../buffer/disk/testdata/v1-inflight", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bufDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, addr, "v1", 1, 1, "")
	d := startDaemon(t, cfg, dir, addr)
	var got map[string]int
	if !waitFor(15*time.Second, func() bool { got = deliveredLines(t, filepath.Join(dir, "out")); return len(got) == 100 }) {
		t.Fatalf("delivered %d of 100 records\n%s", len(got), d.log.String())
	}
	for i := range 100 {
		if r := fmt.Sprintf("v1-record-%03d", i); got[r] != 1 {
			t.Fatalf("%s delivered %d times", r, got[r])
		}
	}
	// The object holding record 0 holds exactly the in-flight batch.
	var first []string
	for _, obj := range objects(t, filepath.Join(dir, "out")) {
		b, err := os.ReadFile(filepath.Join(dir, "out", filepath.FromSlash(obj)))
		if err != nil {
			t.Fatal(err)
		}
		if lines := splitLines(b); len(lines) > 0 && lines[0] == "v1-record-000" {
			first = lines
		}
	}
	if len(first) != 40 || first[39] != "v1-record-039" {
		t.Fatalf("the in-flight batch was not rebuilt exactly: its object holds %d records", len(first))
	}
}

// TestQuickstartOnAFreshDataDir runs examples/quickstart.yaml as a new
// user does: the data directory does not exist yet.
func TestQuickstartOnAFreshDataDir(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := exampleConfig(t, "quickstart.yaml", dir, addr)
	data := filepath.Join(dir, "new", "data")
	d := startDaemon(t, cfg, data, addr)
	if ok, err := putBatch(context.Background(), http.DefaultClient, addr, "quickstart", [][]byte{[]byte("hello"), []byte("world")}); err != nil || !allTrue(ok) {
		t.Fatalf("put: %v %v", ok, err)
	}
	var got map[string]int
	if !waitFor(10*time.Second, func() bool {
		got = deliveredLines(t, filepath.Join(data, "quickstart"))
		return got["hello"] == 1 && got["world"] == 1
	}) {
		t.Fatalf("delivered %v\n%s", got, d.log.String())
	}
}
