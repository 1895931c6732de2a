package testpeers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8"
)

// bulkBody is three documents with ids, a time field (ts), a message field
// and nested and array values.
const bulkBody = `{"index":{"_index":"clicks","_id":"id-1"}}
{"event_id":"evt-1","ts":"2026-11-25T09:00:01.001Z","message":"first","user_id":1000000001,"device":{"os":"ios"},"tags":["promo","mobile"]}
{"create":{"_index":"clicks","_id":"id-2"}}
{"event_id":"evt-2","ts":"2026-11-25T09:00:02.002Z","message":"second","user_id":1000000002,"amount":12.50}
{"index":{"_index":"other","_id":"id-3"}}
{"event_id":"evt-3","ts":"2020-01-01T00:00:00Z","message":"third","ok":true}
`

// wantRows is bulkBody as VictoriaLogs stores it with VL-Time-Field: ts and
// VL-Msg-Field: message (sorted by event_id, _stream_id left out).
var wantRows = []map[string]any{
	{"_msg": "first", "_stream": "{}", "_time": "2026-11-25T09:00:01.001Z", "event_id": "evt-1", "user_id": "1000000001", "device.os": "ios", "tags": `["promo","mobile"]`},
	{"_msg": "second", "_stream": "{}", "_time": "2026-11-25T09:00:02.002Z", "event_id": "evt-2", "user_id": "1000000002", "amount": "12.50"},
	{"_msg": "third", "_stream": "{}", "_time": "2020-01-01T00:00:00Z", "event_id": "evt-3", "ok": "true"},
}

func postBulk(t *testing.T, v *VictoriaLogs, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, v.BulkURL()+"/_bulk", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("VL-Time-Field", "ts")
	req.Header.Set("VL-Msg-Field", "message")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// checkBulkAnswer checks a _bulk answer: no errors, n items, each
// {"create":{"status":201}}.
func checkBulkAnswer(t *testing.T, r io.Reader, n int) {
	t.Helper()
	var answer struct {
		Errors *bool `json:"errors"`
		Items  []map[string]struct {
			Status int `json:"status"`
		} `json:"items"`
	}
	if err := json.NewDecoder(r).Decode(&answer); err != nil {
		t.Fatalf("bulk answer: %v", err)
	}
	if answer.Errors == nil || *answer.Errors || len(answer.Items) != n {
		t.Fatalf("bulk answer %+v, want errors:false and %d items", answer, n)
	}
	for i, it := range answer.Items {
		if len(it) != 1 || it["create"].Status != http.StatusCreated {
			t.Fatalf("bulk item %d: %+v", i, it)
		}
	}
}

func storedRows(t *testing.T, v *VictoriaLogs) []map[string]any {
	t.Helper()
	rows := v.Query(t, "* | sort by (event_id)")
	for _, r := range rows {
		if _, ok := r["_stream_id"]; !ok {
			t.Fatalf("row without _stream_id: %v", r)
		}
		delete(r, "_stream_id")
	}
	return rows
}

func TestVictoriaLogsBulkHTTP(t *testing.T) {
	v := StartVictoriaLogs(t)
	status, body := postBulk(t, v, bulkBody)
	if status != http.StatusOK {
		t.Fatalf("bulk: HTTP %d %s", status, body)
	}
	checkBulkAnswer(t, strings.NewReader(body), 3)
	if rows := storedRows(t, v); !reflect.DeepEqual(rows, wantRows) {
		t.Fatalf("stored rows:\n got %v\nwant %v", rows, wantRows)
	}
	if n := v.Count(t, `event_id:in("evt-1","evt-3")`); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}

	// Resending the same documents with the same _ids stores them again:
	// VictoriaLogs does not deduplicate.
	if status, body := postBulk(t, v, bulkBody); status != http.StatusOK {
		t.Fatalf("second bulk: HTTP %d %s", status, body)
	}
	wantCounts := map[string]int{"evt-1": 2, "evt-2": 2, "evt-3": 2}
	if c := v.CountBy(t, "*", "event_id"); !reflect.DeepEqual(c, wantCounts) {
		t.Fatalf("CountBy(event_id) = %v, want %v", c, wantCounts)
	}
	if c := v.CountBy(t, "*", "device.os"); !reflect.DeepEqual(c, map[string]int{"ios": 2, "": 4}) {
		t.Fatalf("CountBy(device.os) = %v", c)
	}
}

func TestVictoriaLogsBadDocumentFailsWholeRequestButKeepsEarlierOnes(t *testing.T) {
	v := StartVictoriaLogs(t)
	body := `{"index":{"_id":"a"}}
{"event_id":"before","message":"kept"}
{"index":{"_id":"b"}}
{"event_id":"bad", broken
{"index":{"_id":"c"}}
{"event_id":"after","message":"lost"}
`
	status, answer := postBulk(t, v, body)
	if status != http.StatusBadRequest || !strings.Contains(answer, "cannot parse json-encoded log entry") {
		t.Fatalf("bulk with a bad document: HTTP %d %s", status, answer)
	}
	if c := v.CountBy(t, "*", "event_id"); !reflect.DeepEqual(c, map[string]int{"before": 1}) {
		t.Fatalf("stored after a 400: %v, want only the document before the bad one", c)
	}
	if status, answer := postBulk(t, v, `{"delete":{"_id":"a"}}`+"\n"); status != http.StatusBadRequest || !strings.Contains(answer, `expecting "create" or "index"`) {
		t.Fatalf("delete action: HTTP %d %s", status, answer)
	}
}

func TestVictoriaLogsGoElasticsearch(t *testing.T) {
	v := StartVictoriaLogs(t)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{v.BulkURL()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := es.Info(es.Info.WithContext(ctx))
	if err != nil {
		t.Fatalf("info (the client's product check): %v", err)
	}
	info.Body.Close()
	if info.IsError() {
		t.Fatalf("info: %s", info.String())
	}
	resp, err := es.Bulk(bytes.NewReader([]byte(bulkBody)),
		es.Bulk.WithContext(ctx),
		es.Bulk.WithHeader(map[string]string{"VL-Time-Field": "ts", "VL-Msg-Field": "message"}))
	if err != nil {
		t.Fatalf("bulk: %v", err)
	}
	defer resp.Body.Close()
	if resp.IsError() {
		t.Fatalf("bulk: %s", resp.String())
	}
	checkBulkAnswer(t, resp.Body, 3)
	if rows := storedRows(t, v); !reflect.DeepEqual(rows, wantRows) {
		t.Fatalf("stored rows:\n got %v\nwant %v", rows, wantRows)
	}

	// A per-index path is not served.
	resp2, err := es.Bulk(strings.NewReader(bulkBody), es.Bulk.WithIndex("clicks"), es.Bulk.WithContext(ctx))
	if err != nil {
		t.Fatalf("bulk to /clicks/_bulk: %v", err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Fatalf("bulk to /clicks/_bulk: %s, want 400", resp2.String())
	}
	if n := v.Count(t, "*"); n != 3 {
		t.Fatalf("after the refused request: %d entries, want 3", n)
	}
}
