package main

import (
	"context"
	"encoding/json"
	"fmt"
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
