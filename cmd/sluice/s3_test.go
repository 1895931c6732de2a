package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

// exampleConfig copies an example config into dir with its listen address
// replaced, so that the test runs the example as shipped otherwise.
func exampleConfig(t *testing.T, name, dir, addr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../examples", name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("listen: 127.0.0.1:4573")) {
		t.Fatalf("%s does not listen on 127.0.0.1:4573", name)
	}
	b = bytes.Replace(b, []byte("listen: 127.0.0.1:4573"), []byte("listen: "+addr), 1)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runExample starts s3rver and the daemon on an example config, puts the
// example clickstream with `sluice put`, and stops the daemon with SIGTERM
// (which flushes what is buffered). It returns the S3 endpoint and the
// input lines.
func runExample(t *testing.T, example, stream, bucket string) (endpoint string, lines []string) {
	t.Helper()
	endpoint, _ = testpeers.StartS3rver(t, bucket)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := exampleConfig(t, example, dir, addr)
	d := startDaemonEnv(t, cfg, dir, addr, []string{
		"S3_ENDPOINT=" + endpoint, "S3_BUCKET=" + bucket, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=" + testpeers.S3rverAccessKey, "AWS_SECRET_ACCESS_KEY=" + testpeers.S3rverSecretKey,
	})
	src := "../../examples/data/clickstream.ndjson"
	out, err := exec.Command(sluiceBin, "put", "--endpoint", "http://"+addr, "--stream", stream, "--file", src).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice put: %v\n%s", err, out)
	}
	if err := d.stop(30 * time.Second); err != nil {
		t.Fatalf("stopping: %v\n%s", err, d.log.String())
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return endpoint, splitLines(data)
}

// TestS3JSONExample runs examples/s3-json.yaml against s3rver: every
// clickstream record arrives once in GZIP newline-delimited objects under
// json/yyyy/MM/dd/HH/, byte for byte.
func TestS3JSONExample(t *testing.T) {
	endpoint, lines := runExample(t, "s3-json.yaml", "s3-json", "sluice-json")
	objs := s3Objects(t, s3Client(endpoint), "sluice-json", "")
	if len(objs) == 0 {
		t.Fatal("no objects written")
	}
	var got []string
	for key, b := range objs {
		if !strings.HasPrefix(key, "json/") || !strings.HasSuffix(key, ".gz") || !strings.Contains(key, "/s3-json-1-") {
			t.Errorf("unexpected object key %q", key)
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		got = append(got, splitLines(raw)...)
	}
	slices.Sort(got)
	want := slices.Clone(lines)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("objects hold %d lines, want the %d input lines exactly", len(got), len(want))
	}
}

// TestS3ParquetExample runs examples/s3-parquet.yaml against s3rver and
// reads the objects with DuckDB: one prefix per country holding only that
// country's rows, the row total preserved, the schema's types, and values
// (timestamps, lists, nested structs) equal to the input.
func TestS3ParquetExample(t *testing.T) {
	endpoint, lines := runExample(t, "s3-parquet.yaml", "s3-parquet", "sluice-parquet")
	objs := s3Objects(t, s3Client(endpoint), "sluice-parquet", "")
	dir := t.TempDir()
	total := 0
	var files []string
	for key, b := range objs {
		var country string
		if _, err := fmt.Sscanf(key, "clicks/country=%2s/", &country); err != nil || !strings.HasSuffix(key, ".parquet") {
			t.Fatalf("unexpected object key %q", key)
		}
		p := saveObject(t, dir, key, b)
		files = append(files, p)
		r := testpeers.DuckDB(t, fmt.Sprintf(
			"SELECT count(*), count(*) FILTER (WHERE country <> %s) FROM read_parquet(%s)", testpeers.Quote(country), testpeers.Quote(p)))
		n, other := duckInt(t, r.Rows[0][0]), duckInt(t, r.Rows[0][1])
		if other != 0 {
			t.Fatalf("%s holds %d rows of other countries", key, other)
		}
		total += int(n)
	}
	if total != len(lines) {
		t.Fatalf("%d rows in %d objects, want %d", total, len(objs), len(lines))
	}
	list := make([]string, len(files))
	for i, f := range files {
		list[i] = testpeers.Quote(f)
	}
	r := testpeers.DuckDB(t, fmt.Sprintf(
		"SELECT event_id, strftime(ts AT TIME ZONE 'UTC', '%%Y-%%m-%%dT%%H:%%M:%%S.%%g'), user_id, country, amount, tags, device.os, device.version FROM read_parquet([%s]) ORDER BY event_id",
		strings.Join(list, ",")))
	typ := testpeers.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet(%s) LIMIT 1", list[0]))
	wantTypes := map[string]string{"event_id": "VARCHAR", "ts": "TIMESTAMP WITH TIME ZONE", "user_id": "BIGINT",
		"country": "VARCHAR", "amount": "DOUBLE", "tags": "VARCHAR[]", "device": `STRUCT(os VARCHAR, "version" VARCHAR)`}
	for i, name := range typ.Names {
		if w, ok := wantTypes[name]; !ok || !strings.EqualFold(strings.ReplaceAll(typ.Types[i], `"`, ""), strings.ReplaceAll(w, `"`, "")) {
			t.Errorf("column %s has type %s, want %s", name, typ.Types[i], w)
		}
	}
	if len(r.Rows) != len(lines) {
		t.Fatalf("%d rows, want %d", len(r.Rows), len(lines))
	}
	for i, line := range lines {
		var in struct {
			EventID string   `json:"event_id"`
			TS      string   `json:"ts"`
			UserID  int64    `json:"user_id"`
			Country string   `json:"country"`
			Amount  float64  `json:"amount"`
			Tags    []string `json:"tags"`
			Device  struct{ OS, Version string }
		}
		if err := json.Unmarshal([]byte(line), &in); err != nil {
			t.Fatal(err)
		}
		row := r.Rows[i]
		tags, _ := json.Marshal(row[5])
		wantTags, _ := json.Marshal(in.Tags)
		uid := duckInt(t, row[2])
		amt, _ := row[4].(json.Number).Float64()
		if row[0] != in.EventID || row[1] != strings.TrimSuffix(in.TS, "Z") || uid != in.UserID || row[3] != in.Country ||
			amt != in.Amount || string(tags) != string(wantTags) || row[6] != in.Device.OS || row[7] != in.Device.Version {
			t.Fatalf("row %d = %v, want %s", i, row, line)
		}
	}
}

// duckInt reads an integer from DuckDB's JSON rows: BIGINTs come as
// strings (JavaScript numbers cannot hold them), smaller ones as numbers.
func duckInt(t *testing.T, v any) int64 {
	t.Helper()
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		t.Fatalf("not an integer: %#v", v)
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not an integer: %q", s)
	}
	return n
}
