package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
)

// TestAWSCLIEndToEnd drives the real daemon with the real AWS CLI, as the
// README tells a newcomer to: any credentials, only the endpoint changes.
func TestAWSCLIEndToEnd(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("the AWS CLI is required (make tools installs it): %v", err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	const interval = 2
	cfg := writeConfig(t, dir, addr, "clistream", 1, interval, "")
	startDaemon(t, cfg, dir, addr)

	recs := []map[string]string{}
	for i := range 20 {
		recs = append(recs, map[string]string{"Data": fmt.Sprintf(`{"n":%d,"msg":"hello from the cli"}`, i)})
	}
	recFile := filepath.Join(dir, "records.json")
	b, _ := json.Marshal(recs)
	if err := os.WriteFile(recFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	aws := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(awsBin, append([]string{"--endpoint-url", "http://" + addr, "--output", "json", "firehose"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDANYTHING", "AWS_SECRET_ACCESS_KEY=whatever",
			"AWS_DEFAULT_REGION=eu-west-3", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	sent := time.Now()
	out := aws("put-record-batch", "--delivery-stream-name", "clistream", "--records", "file://"+recFile)
	var res struct {
		FailedPutCount   int
		RequestResponses []struct{ RecordId string }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("put-record-batch output: %v\n%s", err, out)
	}
	if res.FailedPutCount != 0 || len(res.RequestResponses) != 20 {
		t.Fatalf("put-record-batch: %s", out)
	}
	ids := map[string]bool{}
	for _, r := range res.RequestResponses {
		if r.RecordId == "" || ids[r.RecordId] {
			t.Fatalf("missing or repeated RecordId in %s", out)
		}
		ids[r.RecordId] = true
	}
	out = aws("put-record", "--delivery-stream-name", "clistream", "--record", `{"Data":"single record"}`)
	if !strings.Contains(string(out), "RecordId") {
		t.Fatalf("put-record: %s", out)
	}

	// Delivered within the interval plus one second (plus the CLI's own start-up).
	outDir := filepath.Join(dir, "out")
	want := len(recs) + 1
	ok := waitFor(time.Duration(interval+1)*time.Second+time.Since(sent), func() bool {
		return len(deliveredLines(t, outDir)) >= want
	})
	got := deliveredLines(t, outDir)
	if !ok {
		t.Fatalf("after %v only %d of %d records delivered", time.Since(sent), len(got), want)
	}
	for _, r := range recs {
		if got[r["Data"]] != 1 {
			t.Errorf("record %q delivered %d times", r["Data"], got[r["Data"]])
		}
	}
	if got["single record"] != 1 {
		t.Errorf("put-record's record delivered %d times", got["single record"])
	}

	out = aws("list-delivery-streams")
	if !strings.Contains(string(out), `"clistream"`) {
		t.Errorf("list-delivery-streams: %s", out)
	}
	out = aws("describe-delivery-stream", "--delivery-stream-name", "clistream")
	for _, want := range []string{`"DeliveryStreamStatus": "ACTIVE"`, `"IntervalInSeconds": 2`, `deliverystream/clistream`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("describe-delivery-stream lacks %s:\n%s", want, out)
		}
	}
}

// TestSDKEndToEnd sends through aws-sdk-go-v2's firehose client to the real
// binary and checks delivery, the error a missing stream gets, and that a
// SIGTERM flushes buffered records before the process exits 0.
func TestSDKEndToEnd(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	// A long interval: only the shutdown flush can deliver these records.
	cfg := writeConfig(t, dir, addr, "sdkstream", 5, 300, "")
	d := startDaemon(t, cfg, dir, addr)

	client := firehose.New(firehose.Options{
		Region:       "ap-southeast-2",
		BaseEndpoint: aws.String("http://" + addr),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", "TOKEN"),
	})
	ctx := context.Background()
	var entries []types.Record
	for i := range 500 {
		entries = append(entries, types.Record{Data: []byte(fmt.Sprintf("sdk-record-%03d", i))})
	}
	out, err := client.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{
		DeliveryStreamName: aws.String("sdkstream"), Records: entries,
	})
	if err != nil {
		t.Fatalf("PutRecordBatch: %v", err)
	}
	if aws.ToInt32(out.FailedPutCount) != 0 || len(out.RequestResponses) != 500 {
		t.Fatalf("FailedPutCount %d, %d responses", aws.ToInt32(out.FailedPutCount), len(out.RequestResponses))
	}
	_, err = client.PutRecord(ctx, &firehose.PutRecordInput{
		DeliveryStreamName: aws.String("nosuchstream"), Record: &types.Record{Data: []byte("x")},
	})
	var notFound *types.ResourceNotFoundException
	if err == nil || !asError(err, &notFound) {
		t.Fatalf("PutRecord to a missing stream: want ResourceNotFoundException, got %v", err)
	}

	if got := deliveredLines(t, filepath.Join(dir, "out")); len(got) != 0 {
		t.Fatalf("records delivered before the interval: %d", len(got))
	}
	if err := d.stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.log.String())
	}
	got := deliveredLines(t, filepath.Join(dir, "out"))
	for _, e := range entries {
		if got[string(e.Data)] != 1 {
			t.Fatalf("record %q delivered %d times after the shutdown flush", e.Data, got[string(e.Data)])
		}
	}
}

// TestValidateCommand checks that `sluice validate` reports every error with
// its line and column and exits 1, and accepts the shipped examples.
func TestValidateCommand(t *testing.T) {
	examples, _ := filepath.Glob("../../examples/*.yaml")
	if len(examples) < 3 {
		t.Fatalf("examples: %v", examples)
	}
	for _, ex := range examples {
		cmd := exec.Command(sluiceBin, "validate", "-c", ex)
		cmd.Env = append(os.Environ(), "S3_BUCKET=example-bucket",
			"HTTP_ENDPOINT_URL=http://127.0.0.1:9/", "HTTP_ENDPOINT_ACCESS_KEY=example-key",
			"PG_DSN=postgres://loader@127.0.0.1:5432/analytics", "PG_TABLE=public.events",
			"REDSHIFT_DSN=postgres://loader@127.0.0.1:5439/dev", "REDSHIFT_TABLE=public.events",
			"REDSHIFT_IAM_ROLE=arn:aws:iam::123456789012:role/redshift",
			"ES_URL=http://127.0.0.1:9200", "ES_INDEX=firehose", "KINESIS_STREAM=clicks",
			"SLUICE_TLS_CERT=/etc/sluice/tls/server.crt", "SLUICE_TLS_KEY=/etc/sluice/tls/server.key",
			"SLUICE_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "SLUICE_SECRET_ACCESS_KEY=example-secret")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("validate %s: %v\n%s", ex, err, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(`listen: 127.0.0.1:4573
bogus: 1
streams:
  good:
    destination:
      type: file
      path: out
      colour: blue
  "bad name!":
    buffering:
      interval: 99999
    destination:
      type: file
      path: x
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sluiceBin, "validate", "--config", bad)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("validate of a bad config: exit %d (%v), want 1\n%s", cmd.ProcessState.ExitCode(), err, out)
	}
	for _, want := range []string{"bad.yaml:2:1", "bogus", "bad.yaml:8:7", "colour", "bad.yaml:9:3", "bad.yaml:11:17"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(sluiceBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "sluice ") {
		t.Errorf("sluice version: %v %s", err, out)
	}
}

// TestHealthAndMetrics checks the operational endpoints on the API listener.
func TestHealthAndMetrics(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, addr, "metered", 1, 0, "")
	startDaemon(t, cfg, dir, addr)
	c := &http.Client{Timeout: 5 * time.Second}
	if _, err := putBatch(context.Background(), c, addr, "metered", [][]byte{[]byte("a"), []byte("bb")}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return len(deliveredLines(t, filepath.Join(dir, "out"))) == 2 }) {
		t.Fatal("records not delivered with interval 0")
	}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := new(strings.Builder)
	if _, err := fmt.Fprint(body, mustRead(t, resp)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`sluice_incoming_records_total{stream="metered"} 2`,
		`sluice_incoming_bytes_total{stream="metered"} 3`,
		`sluice_incoming_put_requests_total{stream="metered"} 1`,
		`sluice_delivery_records_total{destination="file",stream="metered"} 2`,
	} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestPutCommand sends the example clickstream with `sluice put` and checks
// every line arrives once.
func TestPutCommand(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, addr, "clicks", 1, 1, "")
	startDaemon(t, cfg, dir, addr)
	src := "../../examples/data/clickstream.ndjson"
	out, err := exec.Command(sluiceBin, "put", "--endpoint", "http://"+addr, "--stream", "clicks", "--batch", "64", "--file", src).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice put: %v\n%s", err, out)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if !strings.Contains(string(out), fmt.Sprintf("%d records put", len(lines))) {
		t.Fatalf("sluice put output: %s", out)
	}
	outDir := filepath.Join(dir, "out")
	if !waitFor(5*time.Second, func() bool { return len(deliveredLines(t, outDir)) == len(lines) }) {
		t.Fatalf("%d of %d lines delivered", len(deliveredLines(t, outDir)), len(lines))
	}
	got := deliveredLines(t, outDir)
	for _, l := range lines {
		if got[l] != 1 {
			t.Fatalf("line delivered %d times: %s", got[l], l)
		}
	}
}

// TestSchemaInfer checks `sluice schema infer` prints a schema with the
// example clickstream's columns and types.
func TestSchemaInfer(t *testing.T) {
	out, err := exec.Command(sluiceBin, "schema", "infer", "--file", "../../examples/data/clickstream.ndjson").CombinedOutput()
	if err != nil {
		t.Fatalf("schema infer: %v\n%s", err, out)
	}
	for _, want := range []string{"name: ts\n    type: timestamp", "name: user_id\n    type: int64", "name: tags\n    type: list", "type: struct", "name: os"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("schema lacks %q:\n%s", want, out)
		}
	}
}

// TestAdminListener: with admin_listen set, /metrics, /healthz and
// /readyz move there and the API listener serves only the Firehose API.
func TestAdminListener(t *testing.T) {
	dir := t.TempDir()
	api, admin := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
admin_listen: %s
streams:
  s:
    destination: {type: file, path: out}
`, api, admin)), 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, cfg, dir, admin) // waits for /healthz on the admin address
	c := &http.Client{Timeout: 5 * time.Second}
	if _, err := putBatch(context.Background(), c, api, "s", [][]byte{[]byte("x")}); err != nil {
		t.Fatalf("the API listener does not serve the API: %v", err)
	}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := mustRead(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `sluice_incoming_records_total{stream="s"} 1`) {
		t.Fatalf("admin /metrics: HTTP %d\n%.300s", resp.StatusCode, body)
	}
	resp, err = c.Get("http://" + api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mustRead(t, resp)
	if resp.StatusCode == http.StatusOK {
		t.Fatal("the API listener still serves /metrics with admin_listen set")
	}
}
