package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

// guests are built from source during the test run: Go examples with the
// standard toolchain (GOOS=wasip1), WAT with wabt's wat2wasm. No .wasm
// file is committed. TestMain removes them.
var guests = testpeers.NewGuests()

// goGuest builds the Go guest package at dir (relative to this package)
// once per test binary and returns the .wasm path.
func goGuest(t *testing.T, dir string) string {
	t.Helper()
	return guests.Go(t, dir, "../../transform/wasm/guest")
}

// watGuest assembles WebAssembly text with wat2wasm.
func watGuest(t *testing.T, name, src string) string {
	t.Helper()
	return testpeers.WAT(t, name, src)
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

// TestWasmExamplesThroughDaemon builds the Go example transforms and runs
// them in the real daemon: a record masked, a record dropped, a record
// failed into the error output with its original data, and partition keys
// from the guest reaching the object key.
func TestWasmExamplesThroughDaemon(t *testing.T) {
	mask := goGuest(t, "../../examples/transforms/mask-email")
	filter := goGuest(t, "../../examples/transforms/filter")
	enrich := goGuest(t, "../../examples/transforms/enrich")
	d, dir := startWith(t, `streams:
  users:
    buffering: {size: 1, interval: 0}
    processors:
      - {type: wasm, module: `+mask+`}
    destination: {type: file, path: users, append_newline: true}
  logs:
    buffering: {size: 1, interval: 0}
    processors:
      - {type: wasm, module: `+filter+`, env: {DROP_FIELD: level, DROP_VALUE: debug}}
    destination: {type: file, path: logs, append_newline: true}
  orders:
    buffering: {size: 1, interval: 0}
    processors:
      - {type: wasm, module: `+enrich+`}
    destination:
      type: file
      path: orders
      append_newline: true
      prefix: "customer=!{partitionKeyFromLambda:customer_id}/year=!{partitionKeyFromLambda:year}/"
      error_output_prefix: "errors/!{firehose:error-output-type}/"
`)
	ctx := context.Background()
	put := func(stream string, recs ...string) {
		t.Helper()
		var b [][]byte
		for _, r := range recs {
			b = append(b, []byte(r))
		}
		if _, err := putBatch(ctx, http.DefaultClient, d.addr, stream, b); err != nil {
			t.Fatal(err)
		}
	}
	put("users", `{"name":"Jane","email":"jane@example.com","friends":[{"email":"bob@corp.io"}]}`, `not json`)
	put("logs", `{"level":"debug","msg":"noise"}`, `{"level":"error","msg":"kept"}`)
	put("orders", `{"customer_id":"c42","timestamp":"2025-03-04T05:06:07Z","total":9}`)

	users := filepath.Join(dir, "users")
	if !waitFor(10*time.Second, func() bool {
		return len(deliveredLinesIn(t, users)) == 1 && len(deadLetters(t, users, "processing-failed")) == 1
	}) {
		t.Fatalf("users: delivered %v, dead letters %v\n%s", deliveredLinesIn(t, users), deadLetters(t, users, "processing-failed"), d.log.String())
	}
	for line := range deliveredLinesIn(t, users) {
		if strings.Contains(line, "jane@example.com") || strings.Contains(line, "bob@corp.io") ||
			!strings.Contains(line, `"name":"Jane"`) || !strings.Contains(line, "@example.com") {
			t.Errorf("masked record: %s", line)
		}
	}
	dl := deadLetters(t, users, "processing-failed")[0]
	if dl["errorCode"] != "Lambda.ProcessingFailedStatus" || dl["rawData"] != "bm90IGpzb24=" { // base64("not json")
		t.Errorf("dead letter: %v", dl)
	}

	logs := filepath.Join(dir, "logs")
	if !waitFor(10*time.Second, func() bool { return len(deliveredLinesIn(t, logs)) == 1 }) {
		t.Fatalf("logs: %v", deliveredLinesIn(t, logs))
	}
	if got := deliveredLinesIn(t, logs); got[`{"level":"error","msg":"kept"}`] != 1 {
		t.Errorf("filter kept %v", got)
	}

	orders := filepath.Join(dir, "orders")
	if !waitFor(10*time.Second, func() bool { return len(objects(t, orders)) == 1 }) {
		t.Fatalf("orders: %v", objects(t, orders))
	}
	if key := objects(t, orders)[0]; !strings.HasPrefix(key, "customer=c42/year=2025/") {
		t.Errorf("object key %q does not carry the guest's partition keys", key)
	}
}

// deliveredLinesIn is deliveredLines without the error output.
func deliveredLinesIn(t *testing.T, root string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, key := range objects(t, root) {
		b, err := os.ReadFile(filepath.Join(root, key))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range splitLines(b) {
			out[l]++
		}
	}
	return out
}

// faultGuest is a minimal ABI v1 module whose sluice_transform body is
// given; its input region starts at 64 KiB and grows as needed.
func faultGuest(body string) string {
	return `(module
  (memory (export "memory") 2)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_alloc") (param i32) (result i32)
    (if (i32.gt_u (local.get 0) (i32.const 65536))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get 0) (i32.const 16)) (i32.const 1))))))
    (i32.const 65536))
  (func (export "sluice_transform") (param i32 i32) (result i64)
` + body + `))`
}

// TestWasmFaultsEndInDeadLetters: a trap, memory growth past the limit,
// a garbage result and a result missing every recordId each end with the
// records dead-lettered under processing-failed with Firehose's code and
// the original data; nothing is delivered, nothing lost.
func TestWasmFaultsEndInDeadLetters(t *testing.T) {
	cases := []struct{ name, body, code string }{
		{"trap", `(unreachable)`, "Lambda.FunctionError"},
		{"oom", `(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 256)) (i32.const -1)))) (unreachable)`, "Lambda.FunctionError"},
		{"garbage", `(i64.store (i32.const 0) (i64.const 0x0102030405060708)) (i64.store (i32.const 8) (i64.const 0)) (i64.const 16)`, "Lambda.JsonProcessingException"},
		// "SLUO", version 1, status 0, count 0: no result for any record.
		{"missing", `(i32.store (i32.const 0) (i32.const 0x4F554C53)) (i32.store (i32.const 4) (i32.const 1))
    (i64.store (i32.const 8) (i64.const 0)) (i64.const 16)`, "Lambda.MissingRecordId"},
	}
	cfg := "streams:\n"
	for _, c := range cases {
		mod := watGuest(t, c.name, faultGuest(c.body))
		cfg += `  ` + c.name + `:
    buffering: {size: 1, interval: 0}
    processors:
      - {type: wasm, module: ` + mod + `, retries: 1, memory_limit: 16MiB}
    destination: {type: file, path: ` + c.name + `}
`
	}
	d, dir := startWith(t, cfg)
	for _, c := range cases {
		if _, err := putBatch(context.Background(), http.DefaultClient, d.addr, c.name, [][]byte{[]byte("a-" + c.name), []byte("b-" + c.name)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		root := filepath.Join(dir, c.name)
		if !waitFor(10*time.Second, func() bool { return len(deadLetters(t, root, "processing-failed")) == 2 }) {
			t.Fatalf("%s: dead letters %v\n%s", c.name, deadLetters(t, root, "processing-failed"), d.log.String())
		}
		for _, dl := range deadLetters(t, root, "processing-failed") {
			if dl["errorCode"] != c.code {
				t.Errorf("%s: code %v, want %s", c.name, dl["errorCode"], c.code)
			}
		}
		if objs := objects(t, root); len(objs) != 0 {
			t.Errorf("%s: objects delivered: %v", c.name, objs)
		}
	}
}

// TestTransformTestCommand runs `sluice transform test` on the mask-email
// example: one JSON result per input record, in order.
func TestTransformTestCommand(t *testing.T) {
	mod := goGuest(t, "../../examples/transforms/mask-email")
	cmd := exec.Command(sluiceBin, "transform", "test", "--module", mod)
	cmd.Stdin = strings.NewReader(`{"email":"ann@example.org"}` + "\nnot json\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("transform test: %v\n%s", err, out)
	}
	lines := splitLines(out)
	if len(lines) != 2 {
		t.Fatalf("want 2 results, got %q", out)
	}
	var ok, failed struct {
		RecordID  string `json:"recordId"`
		Result    string `json:"result"`
		Text      string `json:"text"`
		ErrorCode string `json:"errorCode"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &ok); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &failed); err != nil {
		t.Fatal(err)
	}
	if ok.Result != "Ok" || ok.RecordID != "1" || strings.Contains(ok.Text, "ann@") || !strings.Contains(ok.Text, "@example.org") {
		t.Errorf("first result: %s", lines[0])
	}
	if failed.Result != "ProcessingFailed" || failed.ErrorCode != "Lambda.ProcessingFailedStatus" {
		t.Errorf("second result: %s", lines[1])
	}
}
