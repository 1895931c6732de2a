package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
)

// TestAuditLogEndToEnd runs the daemon with a file audit log rotated at
// 4 KiB and calls it with the Go SDK: one line per call with its fields,
// the files rotated and none over the limit, no record data and no secret
// in any of them.
func TestAuditLogEndToEnd(t *testing.T) {
	const marker = "AUDIT-MARKER-record-data-5d1e"
	dir := t.TempDir()
	d := startWithEnv(t, dir, fmt.Sprintf(`auth:
  keys:
    - access_key_id: %s
      secret_access_key: ${WRITER_SECRET}
      allow:
        - actions: ["firehose:*"]
          streams: [audited]
audit:
  output: file
  path: audit/sluice-audit.log
  max_file_bytes: 4KiB
  max_files: 20
streams:
  audited:
    buffering: {size: 1, interval: 1}
    destination: {type: file, path: audited, append_newline: true}
`, writerKey), []string{"WRITER_SECRET=" + writerSecret})
	ctx := context.Background()
	w := sdkClient(d.addr, writerKey, writerSecret)
	type want struct{ op, key, stream, result string }
	var wants []want
	if _, err := w.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("audited"), Record: &types.Record{Data: []byte(marker)}}); err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{"PutRecord", writerKey, "audited", "Success"})
	if _, err := w.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("nope")}); err == nil {
		t.Fatal("describe of another stream succeeded")
	}
	wants = append(wants, want{"DescribeDeliveryStream", writerKey, "nope", "AccessDeniedException"})
	_, err := sdkClient(d.addr, writerKey, "a-wrong-secret").ListDeliveryStreams(ctx, &firehose.ListDeliveryStreamsInput{})
	if err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	wants = append(wants, want{"ListDeliveryStreams", "anonymous", "", "InvalidSignatureException"})
	for i := range 40 {
		out, err := w.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("audited"),
			Records: []types.Record{{Data: []byte(marker)}, {Data: []byte(fmt.Sprint(i))}}})
		if err != nil || aws.ToInt32(out.FailedPutCount) != 0 {
			t.Fatalf("PutRecordBatch: %v %v", out, err)
		}
		wants = append(wants, want{"PutRecordBatch", writerKey, "audited", "Success"})
	}
	written := fmt.Sprintf(`sluice_audit_entries_total{result="written"} %d`, len(wants))
	var metrics string
	if !waitFor(10*time.Second, func() bool {
		resp, err := http.Get("http://" + d.addr + "/metrics")
		if err != nil {
			return false
		}
		metrics = mustRead(t, resp)
		resp.Body.Close()
		return strings.Contains(metrics, written)
	}) {
		t.Fatalf("/metrics lacks %s:\n%s", written, metrics)
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Oldest first: sluice-audit.log.N … .1, then the current file.
	base := filepath.Join(dir, "audit", "sluice-audit.log")
	var files []string
	for i := 20; i >= 1; i-- {
		if _, err := os.Stat(fmt.Sprintf("%s.%d", base, i)); err == nil {
			files = append(files, fmt.Sprintf("%s.%d", base, i))
		}
	}
	files = append(files, base)
	if len(files) < 4 {
		t.Fatalf("%d audit files, want the log rotated at least 3 times", len(files))
	}
	var lines []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 4096 {
			t.Fatalf("%s holds %d bytes, over max_file_bytes", f, len(b))
		}
		for _, s := range []string{marker, writerSecret, "a-wrong-secret", "Signature=", "Credential="} {
			if strings.Contains(string(b), s) {
				t.Fatalf("%s contains %q", f, s)
			}
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	if len(lines) != len(wants) {
		t.Fatalf("%d audit lines, want %d (one per call)", len(lines), len(wants))
	}
	for i, line := range lines {
		var e struct {
			Time, RequestID, Source, AccessKeyID, Operation, Stream, Result string
			Records, Bytes, Status                                          int
			LatencyMS                                                       *float64 `json:"latency_ms"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		var raw map[string]any
		_ = json.Unmarshal([]byte(line), &raw)
		e.RequestID, _ = raw["request_id"].(string)
		e.AccessKeyID, _ = raw["access_key_id"].(string)
		w := wants[i]
		if e.Operation != w.op || e.AccessKeyID != w.key || e.Stream != w.stream || e.Result != w.result ||
			!uuidLike(e.RequestID) || !strings.HasPrefix(e.Source, "127.0.0.1:") || e.LatencyMS == nil {
			t.Fatalf("line %d: %s\nwant %+v", i, line, w)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Fatalf("line %d: time %q: %v", i, e.Time, err)
		}
		if w.op == "PutRecordBatch" && (e.Records != 2 || e.Bytes != len(marker)+len(fmt.Sprint(i-3)) || e.Status != 200) {
			t.Fatalf("line %d: %s", i, line)
		}
	}
}

func uuidLike(s string) bool { return len(s) == 36 && strings.Count(s, "-") == 4 }

// TestAuditLogReload: a reload that changes the audit block applies it: a
// new path is written from the next call on (the old file closed with
// everything it held), and removing the block stops the log.
func TestAuditLogReload(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	write := func(audit string) {
		t.Helper()
		body := "listen: " + addr + "\n" + audit + `streams:
  r:
    buffer: {type: memory}
    destination: {type: file, path: r, append_newline: true}
`
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("audit: {output: file, path: a.log}\n")
	d := startDaemon(t, cfg, dir, addr)
	put := func() {
		t.Helper()
		ok, err := putBatch(context.Background(), &http.Client{Timeout: 10 * time.Second}, addr, "r", [][]byte{[]byte("x")})
		if err != nil || len(ok) != 1 || !ok[0] {
			t.Fatalf("put: %v %v", ok, err)
		}
	}
	lines := func(name string) int {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return -1
		}
		return strings.Count(string(b), "\n")
	}
	put()
	put()
	write("audit: {output: file, path: b.log, sample: 1}\n")
	if code, body := reload(t, addr); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	// The old log is closed at the reload, so its lines are all written.
	if n := lines("a.log"); n != 2 {
		t.Fatalf("a.log has %d lines after the reload, want 2", n)
	}
	put()
	write("")
	if code, body := reload(t, addr); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	if n := lines("b.log"); n != 1 {
		t.Fatalf("b.log has %d lines, want 1 (the put between the reloads)", n)
	}
	put()
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if a, b := lines("a.log"), lines("b.log"); a != 2 || b != 1 {
		t.Fatalf("a.log %d lines, b.log %d after the audit block was removed; want 2 and 1", a, b)
	}
}
