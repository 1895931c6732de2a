package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Guests are built from source during the test run: Go examples with the
// standard toolchain (GOOS=wasip1), WAT with wabt's wat2wasm. No .wasm
// file is committed.
var (
	guestMu    sync.Mutex
	guestCache = map[string]string{}
	guestDir   string
)

// goGuest builds the Go guest package at dir (relative to this package)
// once per test binary and returns the .wasm path.
func goGuest(t *testing.T, dir string) string {
	t.Helper()
	guestMu.Lock()
	defer guestMu.Unlock()
	if p, ok := guestCache[dir]; ok {
		return p
	}
	if guestDir == "" {
		d, err := os.MkdirTemp("", "sluice-guests")
		if err != nil {
			t.Fatal(err)
		}
		guestDir = d // removed with the machine's temp files; small
	}
	out := filepath.Join(guestDir, strings.ReplaceAll(filepath.Clean(dir), string(filepath.Separator), "_")+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, dir)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building guest %s: %v\n%s", dir, err, b)
	}
	guestCache[dir] = out
	return out
}

// watGuest assembles WebAssembly text with wat2wasm.
func watGuest(t *testing.T, name, src string) string {
	t.Helper()
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatalf("wat2wasm (wabt) is required: run deploy/install-test-deps.sh: %v", err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, name+".wat"), filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(bin, in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	return out
}

// loopGuest implements ABI v1 just enough to be loaded, and never returns
// from sluice_transform.
const loopGuest = `(module
  (memory (export "memory") 2)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_alloc") (param i32) (result i32)
    (if (i32.gt_u (local.get 0) (i32.const 65536))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get 0) (i32.const 16)) (i32.const 1))))))
    (i32.const 65536))
  (func (export "sluice_transform") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0)))`

// deadLetters reads the error records under root/errors/<type>.
func deadLetters(t *testing.T, root, outputType string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range deliveredLines(t, filepath.Join(root, "errors", outputType)) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("dead letter %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestWasmTimeoutKeepsServing: a guest that loops forever is interrupted
// at its timeout, retried, and its records end in the error output as
// processing-failed with the original data; meanwhile the daemon keeps
// accepting and delivering, on that stream's neighbour and on the stream
// itself.
func TestWasmTimeoutKeepsServing(t *testing.T) {
	loop := watGuest(t, "loop", loopGuest)
	d, dir := startWith(t, `shutdown_timeout: 5s
streams:
  stuck:
    buffering: {size: 1, interval: 0}
    processors:
      - type: wasm
        module: `+loop+`
        timeout: 300ms
        retries: 1
    destination: {type: file, path: stuck, append_newline: true}
  healthy:
    buffering: {size: 1, interval: 0}
    destination: {type: file, path: healthy, append_newline: true}
`)
	ctx := context.Background()
	if _, err := putBatch(ctx, http.DefaultClient, d.addr, "stuck", [][]byte{[]byte("r1"), []byte("r2")}); err != nil {
		t.Fatal(err)
	}
	// While the guest spins, the other stream and the API stay available.
	start := time.Now()
	if _, err := putBatch(ctx, http.DefaultClient, d.addr, "healthy", [][]byte{[]byte("fine")}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return len(deliveredLines(t, filepath.Join(dir, "healthy"))) == 1 }) {
		t.Fatal("the healthy stream did not deliver while the other stream's guest looped")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("the healthy stream took %v", time.Since(start))
	}
	root := filepath.Join(dir, "stuck")
	if !waitFor(15*time.Second, func() bool { return len(deadLetters(t, root, "processing-failed")) == 2 }) {
		t.Fatalf("dead letters: %v\n%s", deadLetters(t, root, "processing-failed"), d.log.String())
	}
	raw := map[string]bool{}
	for _, dl := range deadLetters(t, root, "processing-failed") {
		if dl["errorCode"] != "Lambda.FunctionTimeout" {
			t.Errorf("dead letter code %v, want Lambda.FunctionTimeout", dl["errorCode"])
		}
		b, _ := json.Marshal(dl["rawData"])
		raw[string(b)] = true
	}
	if !raw[`"cjE="`] || !raw[`"cjI="`] { // base64 of r1, r2
		t.Fatalf("dead letters do not hold the original data: %v", raw)
	}
	if objs := objects(t, root); len(objs) != 0 {
		t.Fatalf("objects delivered from a guest that never returned: %v", objs)
	}
}
