package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/deploy/testpeers/esbulk"
)

// esbulkDocs counts every document's source over all indices of srv.
func esbulkDocs(srv *esbulk.Server) map[string]int {
	got := map[string]int{}
	for _, idx := range srv.Indices() {
		for _, src := range srv.Docs(idx) {
			got[string(src)]++
		}
	}
	return got
}

// TestCrashKill9Elasticsearch: SIGKILL the daemon at random moments while
// it indexes into a _bulk server, ten times: every acknowledged record is
// one document, none is indexed twice (counted by source, so a document
// under a second id would show), and nothing went to the error output.
func TestCrashKill9Elasticsearch(t *testing.T) {
	srv, err := esbulk.Start(esbulk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	// Some items are refused for now, so kills land between rounds too.
	srv.FailItems(func(_, id string, _ []byte, attempt int) *esbulk.ItemError {
		if attempt == 1 && len(id) > 0 && id[len(id)-1] == '7' {
			return esbulk.RejectedExecution()
		}
		return nil
	})
	cfg := fmt.Sprintf(`streams:
  crash:
    buffering: {size: 1, interval: 1}
    destination:
      type: elasticsearch
      addresses: [%q]
      index: crash
    error_output: {type: file, path: errors}
`, srv.URL())
	var dir string
	asDoc := func(s string) []byte { return fmt.Appendf(nil, `{"r":%q}`, s) }
	crashUnderLoadKills(t, cfg, nil, 200, 10, asDoc, func(d string) map[string]int {
		dir = d
		return esbulkDocs(srv)
	})
	if errs := deliveredLines(t, filepath.Join(dir, "errors")); len(errs) != 0 {
		t.Fatalf("%d records in the error output", len(errs))
	}
}

// TestElasticsearchStormThenFlow: the cluster answers 503 to every bulk
// request for longer than the retry duration: the batch's records go to
// the error output (counted), and records sent after the storm are
// indexed.
func TestElasticsearchStormThenFlow(t *testing.T) {
	srv, err := esbulk.Start(esbulk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	d, dir := startWith(t, fmt.Sprintf(`streams:
  storm:
    buffering: {size: 1, interval: 1}
    retry: {duration: 3}
    destination: {type: elasticsearch, addresses: [%q], index: storm}
    error_output: {type: file, path: errors}
`, srv.URL()))
	const storm = 8 * time.Second
	stormEnd := time.Now().Add(storm)
	srv.Storm(storm, 503)
	during := [][]byte{[]byte(`{"phase":"storm","n":1}`), []byte(`{"phase":"storm","n":2}`)}
	if ok, err := putBatch(context.Background(), http.DefaultClient, d.addr, "storm", during); err != nil || !allTrue(ok) {
		t.Fatalf("put: %v", err)
	}
	var dls []map[string]any
	if !waitFor(30*time.Second, func() bool {
		dls = deadLetters(t, filepath.Join(dir, "errors"), "AmazonOpenSearchService-failed")
		return len(dls) == len(during)
	}) {
		t.Fatalf("%d dead letters, want %d\n%s", len(dls), len(during), d.log.String())
	}
	for _, dl := range dls {
		if dl["errorCode"] != "OS.ServerError" {
			t.Errorf("dead letter %v", dl)
		}
	}
	if got, ok := metricValue(t, d.addr, `sluice_dead_letter_records_total{code="OS.ServerError",stream="storm"}`); !ok || got != 2 {
		t.Errorf("dead letters counted %v (%v), want 2", got, ok)
	}
	time.Sleep(time.Until(stormEnd))
	after := [][]byte{[]byte(`{"phase":"after","n":1}`), []byte(`{"phase":"after","n":2}`)}
	if ok, err := putBatch(context.Background(), http.DefaultClient, d.addr, "storm", after); err != nil || !allTrue(ok) {
		t.Fatalf("put: %v", err)
	}
	if !waitFor(30*time.Second, func() bool { return srv.Count() == 2 }) {
		t.Fatalf("%d documents after the storm, want 2\n%s", srv.Count(), d.log.String())
	}
	for src, n := range esbulkDocs(srv) {
		if n != 1 || (src != string(after[0]) && src != string(after[1])) {
			t.Errorf("document %s ×%d", src, n)
		}
	}
}

// TestElasticsearchExample runs examples/elasticsearch.yaml against
// VictoriaLogs, a real server of the _bulk protocol: every clickstream
// record comes back once, with its values.
func TestElasticsearchExample(t *testing.T) {
	vl := testpeers.StartVictoriaLogs(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := exampleConfig(t, "elasticsearch.yaml", dir, addr)
	d := startDaemonEnv(t, cfg, dir, addr, []string{"ES_URL=" + vl.BulkURL(), "ES_INDEX=firehose"})
	src := "../../examples/data/clickstream.ndjson"
	out, err := exec.Command(sluiceBin, "put", "--endpoint", "http://"+addr, "--stream", "elasticsearch", "--file", src).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice put: %v\n%s", err, out)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	want := splitLines(data)
	if !waitFor(30*time.Second, func() bool { return vl.Count(t, "*") >= len(want) }) {
		t.Fatalf("%d of %d documents in VictoriaLogs\n%s", vl.Count(t, "*"), len(want), d.log.String())
	}
	byID := map[string]map[string]any{}
	for _, row := range vl.Query(t, "*") {
		id, _ := row["event_id"].(string)
		if byID[id] != nil {
			t.Fatalf("event %s indexed twice", id)
		}
		byID[id] = row
	}
	for _, l := range want {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		row := byID[rec["event_id"].(string)]
		if row == nil {
			t.Fatalf("event %s missing", rec["event_id"])
		}
		dev := rec["device"].(map[string]any)
		for k, v := range map[string]string{
			"country": rec["country"].(string), "ts": rec["ts"].(string), "device.os": dev["os"].(string),
			"user_id": fmt.Sprint(int64(rec["user_id"].(float64))), "amount": jsonText(t, rec["amount"]), "tags": jsonText(t, rec["tags"]),
		} {
			if row[k] != v {
				t.Errorf("event %s: %s = %v, want %v", rec["event_id"], k, row[k], v)
			}
		}
	}
	if len(byID) != len(want) {
		t.Fatalf("%d documents, want %d", len(byID), len(want))
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if errs := deliveredLines(t, filepath.Join(dir, "elasticsearch-errors")); len(errs) != 0 {
		t.Fatalf("%d lines in the error output", len(errs))
	}
}

func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestElasticsearchItemFailuresThroughTheDaemon: 500 documents through
// the Firehose API, of which 2 are refused for good (mapping errors) and
// 10% are refused with 429 for their first two attempts: 498 documents
// indexed exactly once, none sent again after it succeeded, 2 dead
// letters in Firehose's failed-document shape, and the metrics agree
// with the cluster and with each other.
func TestElasticsearchItemFailuresThroughTheDaemon(t *testing.T) {
	srv, err := esbulk.Start(esbulk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	bad := func(src []byte) bool { return bytes.Contains(src, []byte(`"bad":true`)) }
	busy := func(src []byte) bool { return bytes.Contains(src, []byte(`"busy":true`)) }
	srv.FailItems(func(_, _ string, src []byte, attempt int) *esbulk.ItemError {
		switch {
		case bad(src):
			return esbulk.MapperParsing("failed to parse field [n] of type [long]")
		case busy(src) && attempt <= 2:
			return esbulk.RejectedExecution()
		}
		return nil
	})
	d, dir := startWith(t, fmt.Sprintf(`streams:
  items:
    buffering: {size: 5, interval: 1}
    destination: {type: elasticsearch, addresses: [%q], index: items, index_rotation: NoRotation}
    error_output: {type: file, path: errors}
`, srv.URL()))
	recs := make([][]byte, 500)
	for i := range recs {
		recs[i] = fmt.Appendf(nil, `{"n":%d,"bad":%v,"busy":%v}`, i, i == 100 || i == 400, i%10 == 3)
	}
	if ok, err := putBatch(context.Background(), http.DefaultClient, d.addr, "items", recs); err != nil || !allTrue(ok) {
		t.Fatalf("put: %v", err)
	}
	var dls []map[string]any
	if !waitFor(30*time.Second, func() bool {
		dls = deadLetters(t, filepath.Join(dir, "errors"), "AmazonOpenSearchService-failed")
		return srv.Count() == 498 && len(dls) == 2
	}) {
		t.Fatalf("%d documents, %d dead letters; want 498 and 2\n%s", srv.Count(), len(dls), d.log.String())
	}
	docs := srv.Docs("items")
	for id, src := range docs {
		if bad(src) {
			t.Errorf("a refused document was indexed: %s", src)
		}
		want := 1
		if busy(src) {
			want = 3
		}
		if w, a := srv.Writes("items", id), srv.Attempts("items", id); w != 1 || a != want {
			t.Errorf("document %s (%s) written %d times, sent %d times; want 1 and %d", id, src, w, a, want)
		}
	}
	for _, dl := range dls {
		raw, _ := base64.StdEncoding.DecodeString(dl["rawData"].(string))
		if !bad(raw) || dl["errorCode"] != "400" || dl["esIndexName"] != "items" || dl["esDocumentId"] == "" ||
			!strings.Contains(dl["errorMessage"].(string), "mapper_parsing_exception") {
			t.Errorf("dead letter %v", dl)
		}
	}
	name := func(family, extra string) string {
		return family + `{destination="elasticsearch",` + extra + `stream="items"}`
	}
	for series, want := range map[string]float64{
		name("sluice_delivery_records_total", ""):                                     498,
		name("sluice_bulk_documents_total", `result="created",`):                      498,
		name("sluice_bulk_item_retries_total", `status="429",`):                       100,
		name("sluice_bulk_item_failures_total", `reason="mapper_parsing_exception",`): 2,
		`sluice_dead_letter_records_total{code="400",stream="items"}`:                 2,
		name("sluice_bulk_requests_total", `status="200",`):                           3,
	} {
		if got, ok := metricValue(t, d.addr, series); !ok || got != want {
			t.Errorf("%s = %v (found %v), want %v", series, got, ok, want)
		}
	}
}
