package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/deploy/testpeers/receiver"
)

// startReceiver runs a Firehose HTTP endpoint receiver (written from the
// specification) for the test.
func startReceiver(t *testing.T, cfg receiver.Config) *receiver.Receiver {
	t.Helper()
	r, err := receiver.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// acceptedRecords returns each record of the accepted deliveries with
// the number of distinct request ids it arrived under: a receiver that
// de-duplicates by request id keeps every record once exactly when each
// count is 1. repeats is the number of accepted deliveries whose request
// id had been accepted before (redeliveries).
func acceptedRecords(r *receiver.Receiver) (counts map[string]int, repeats int) {
	counts = map[string]int{}
	seen := map[string]bool{}
	for _, d := range r.Deliveries() {
		if !d.Accepted {
			continue
		}
		if seen[d.RequestID] {
			repeats++
			continue
		}
		seen[d.RequestID] = true
		for _, rec := range d.Records {
			counts[string(rec)]++
		}
	}
	return counts, repeats
}

// TestHTTPEndpointExample runs examples/http-endpoint.yaml as shipped
// (receiver URL and access key from the environment): every record of
// the clickstream arrives once, with the access key, and nothing is
// dead-lettered.
func TestHTTPEndpointExample(t *testing.T) {
	const key = "example-secret-key"
	r := startReceiver(t, receiver.Config{AccessKey: key})
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := exampleConfig(t, "http-endpoint.yaml", dir, addr)
	d := startDaemonEnv(t, cfg, dir, addr, []string{"HTTP_ENDPOINT_URL=" + r.URL(), "HTTP_ENDPOINT_ACCESS_KEY=" + key})
	src := "../../examples/data/clickstream.ndjson"
	out, err := exec.Command(sluiceBin, "put", "--endpoint", "http://"+addr, "--stream", "http-endpoint", "--file", src).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice put: %v\n%s", err, out)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	want := splitLines(data)
	var got map[string]int
	if !waitFor(20*time.Second, func() bool { got, _ = acceptedRecords(r); return len(got) >= len(want) }) {
		t.Fatalf("the receiver got %d of %d records\n%s", len(got), len(want), d.log.String())
	}
	for _, l := range want {
		if got[l] != 1 {
			t.Fatalf("record %.60q… received %d times", l, got[l])
		}
	}
	for _, dv := range r.Deliveries() {
		if dv.Header.Get(receiver.HeaderAccessKey) != key {
			t.Fatalf("a delivery without the access key: %v", dv.Header)
		}
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.log.String(), key) {
		t.Fatal("the access key appears in the daemon's log")
	}
	if errs := deliveredLines(t, filepath.Join(dir, "http-endpoint-errors")); len(errs) != 0 {
		t.Fatalf("%d lines in the error output", len(errs))
	}
}

// TestHTTPEndpointFailuresGoToTheErrorOutput: a receiver that keeps
// failing gets the batch retried within the retry duration, then its
// records land in the error output under http-endpoint-failed with the
// endpoint's errorMessage; in backup mode AllData every delivered record
// is also in the backup.
func TestHTTPEndpointFailuresGoToTheErrorOutput(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	r.SetBehaviour(receiver.Behaviour{Answer: receiver.Fail, Status: 503, ErrorMessage: "endpoint is on fire"})
	d, dir := startWith(t, fmt.Sprintf(`streams:
  failing:
    buffering: {size: 1, interval: 1}
    retry: {duration: 2}
    destination: {type: http_endpoint, url: %q}
    error_output: {type: file, path: errors}
  backed:
    buffering: {size: 1, interval: 1}
    destination: {type: http_endpoint, url: %q}
    error_output: {type: file, path: backup, append_newline: true, mode: AllData}
`, r.URL(), r.URL()))
	addr := d.addr
	recs := [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2}`), []byte(`{"n":3}`)}
	if ok, err := putBatch(context.Background(), http.DefaultClient, addr, "failing", recs); err != nil || !allTrue(ok) {
		t.Fatalf("put: %v %v", ok, err)
	}
	var dls []map[string]any
	if !waitFor(30*time.Second, func() bool {
		dls = deadLetters(t, filepath.Join(dir, "errors"), "http-endpoint-failed")
		return len(dls) == len(recs)
	}) {
		t.Fatalf("%d dead letters, want %d\n%s", len(dls), len(recs), d.log.String())
	}
	var raw []string
	for _, dl := range dls {
		b, _ := base64.StdEncoding.DecodeString(dl["rawData"].(string))
		raw = append(raw, string(b))
		if msg, _ := dl["errorMessage"].(string); !strings.Contains(msg, "endpoint is on fire") {
			t.Errorf("errorMessage %q does not carry the endpoint's message", msg)
		}
		if code, _ := dl["errorCode"].(string); !strings.HasPrefix(code, "HttpEndpoint.") {
			t.Errorf("errorCode %q", code)
		}
		if n, _ := dl["attemptsMade"].(float64); n < 2 {
			t.Errorf("attemptsMade %v: the batch was not retried", dl["attemptsMade"])
		}
	}
	slices.Sort(raw)
	if !slices.Equal(raw, []string{`{"n":1}`, `{"n":2}`, `{"n":3}`}) {
		t.Fatalf("dead-lettered %v", raw)
	}

	r.SetBehaviour(receiver.Behaviour{})
	if ok, err := putBatch(context.Background(), http.DefaultClient, addr, "backed", recs); err != nil || !allTrue(ok) {
		t.Fatalf("put: %v %v", ok, err)
	}
	var backup map[string]int
	if !waitFor(20*time.Second, func() bool {
		backup = deliveredLines(t, filepath.Join(dir, "backup"))
		return len(backup) == len(recs)
	}) {
		t.Fatalf("backup holds %v\n%s", backup, d.log.String())
	}
	got, _ := acceptedRecords(r)
	for _, rec := range recs {
		if got[string(rec)] != 1 || backup[string(rec)] != 1 {
			t.Fatalf("record %s: delivered %d times, backed up %d times", rec, got[string(rec)], backup[string(rec)])
		}
	}
}

// TestCrashKill9HTTPEndpoint: SIGKILLs under load with four batches in
// flight to an HTTP endpoint; every acknowledged record reaches the
// receiver, and after de-duplication by X-Amz-Firehose-Request-Id (what
// the header is for) each exactly once: a batch redelivered after a crash
// comes back under the same request id.
func TestCrashKill9HTTPEndpoint(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	r.SetBehaviour(receiver.Behaviour{Delay: 20 * time.Millisecond})
	cfg := fmt.Sprintf(`streams:
  crash:
    buffering: {size: 1, interval: 1}
    max_in_flight: 4
    destination: {type: http_endpoint, url: %q}
    error_output: {type: file, path: errors}
`, r.URL())
	var repeats int
	crashUnderLoad(t, cfg, nil, 100, func(string) map[string]int {
		var got map[string]int
		got, repeats = acceptedRecords(r)
		return got
	})
	t.Logf("%d deliveries were redeliveries under a request id already accepted", repeats)
}

// TestReadyzFollowsDestinations: /readyz turns 503, naming the stream,
// within a few seconds of its destination going away (an HTTP receiver,
// an S3 server), and 200 again when it is back; records put meanwhile
// are all delivered.
func TestReadyzFollowsDestinations(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	const bucket = "sluice-ready"
	s3 := testpeers.NewS3rver(t, bucket)
	d, _ := startWith(t, fmt.Sprintf(`streams:
  hook:
    buffering: {size: 1, interval: 1}
    retry: {duration: 600}
    destination: {type: http_endpoint, url: %q}
    error_output: {type: file, path: errors}
  lake:
    buffering: {size: 1, interval: 1}
    destination:
`, r.URL())+s3rverDestination(bucket, s3.Endpoint)+"      append_newline: true\n")
	addr := d.addr
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	expect := func(what string, status int, contains string) {
		t.Helper()
		start := time.Now()
		var code int
		var text string
		if !waitFor(10*time.Second, func() bool {
			code, text = readyz()
			return code == status && strings.Contains(text, contains)
		}) {
			t.Fatalf("%s: /readyz answered %d %q, want %d containing %q\n%s", what, code, text, status, contains, d.log.String())
		}
		t.Logf("%s: /readyz %d after %v: %s", what, code, time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(text))
	}
	expect("at start", 200, "ready")

	put := func(stream string, from, n int) {
		t.Helper()
		recs := make([][]byte, n)
		for i := range recs {
			recs[i] = fmt.Appendf(nil, "%s-%03d", stream, from+i)
		}
		if ok, err := putBatch(context.Background(), http.DefaultClient, addr, stream, recs); err != nil || !allTrue(ok) {
			t.Fatalf("put: %v %v", ok, err)
		}
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	expect("receiver stopped", 503, "stream hook")
	put("hook", 0, 50)
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	expect("receiver back", 200, "ready")

	s3.Stop()
	expect("s3rver stopped", 503, "stream lake")
	put("lake", 0, 50)
	s3.Start()
	expect("s3rver back", 200, "ready")

	var got map[string]int
	if !waitFor(30*time.Second, func() bool { got, _ = acceptedRecords(r); return len(got) == 50 }) {
		t.Fatalf("receiver got %d of 50 records\n%s", len(got), d.log.String())
	}
	var lake []string
	if !waitFor(30*time.Second, func() bool {
		lake = nil
		objs, err := s3ObjectsErr(s3Client(s3.Endpoint), bucket, "")
		if err != nil {
			return false
		}
		for _, b := range objs {
			lake = append(lake, splitLines(b)...)
		}
		return len(lake) == 50
	}) {
		t.Fatalf("the bucket holds %d of 50 records\n%s", len(lake), d.log.String())
	}
}
