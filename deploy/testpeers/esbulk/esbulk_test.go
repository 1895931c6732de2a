package esbulk

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func client(t *testing.T, s *Server, mod func(*elasticsearch.Config)) *elasticsearch.Client {
	t.Helper()
	cfg := elasticsearch.Config{Addresses: []string{s.URL()}}
	if mod != nil {
		mod(&cfg)
	}
	c, err := elasticsearch.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// answer is a bulk answer as Elasticsearch documents it.
type answer struct {
	Took   *int64                `json:"took"`
	Errors bool                  `json:"errors"`
	Items  []map[string]itemJSON `json:"items"`
}

type itemJSON struct {
	Index       string         `json:"_index"`
	ID          string         `json:"_id"`
	Version     int64          `json:"_version"`
	Result      string         `json:"result"`
	Shards      map[string]int `json:"_shards"`
	SeqNo       *int64         `json:"_seq_no"`
	PrimaryTerm int64          `json:"_primary_term"`
	Status      int            `json:"status"`
	Error       *struct {
		Type     string `json:"type"`
		Reason   string `json:"reason"`
		Index    string `json:"index"`
		CausedBy *Cause `json:"caused_by"`
	} `json:"error"`
}

// only returns the single action of an item and its body.
func only(t *testing.T, it map[string]itemJSON) (string, itemJSON) {
	t.Helper()
	if len(it) != 1 {
		t.Fatalf("item has %d keys, want 1: %v", len(it), it)
	}
	for k, v := range it {
		return k, v
	}
	panic("unreachable")
}

type rawResult struct {
	status int
	header http.Header
	body   []byte
}

func raw(t *testing.T, method, url, body string, header map[string]string) rawResult {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResult{res.StatusCode, res.Header, b}
}

func decode(t *testing.T, b []byte) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("not a bulk answer: %v: %s", err, b)
	}
	if a.Took == nil {
		t.Fatalf("bulk answer without took: %s", b)
	}
	return a
}

func TestInfoAndHead(t *testing.T) {
	s := start(t, Config{})
	r := raw(t, http.MethodGet, s.URL()+"/", "", nil)
	if r.status != 200 || r.header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("GET /: %d %v", r.status, r.header)
	}
	var info struct {
		Version struct {
			Number      string `json:"number"`
			BuildFlavor string `json:"build_flavor"`
		} `json:"version"`
		Tagline string `json:"tagline"`
	}
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	if info.Version.Number != "8.15.0" || info.Version.BuildFlavor != "default" || info.Tagline != "You Know, for Search" {
		t.Fatalf("info: %s", r.body)
	}
	if h := raw(t, http.MethodHead, s.URL()+"/", "", nil); h.status != 200 || len(h.body) != 0 {
		t.Fatalf("HEAD /: %d %q", h.status, h.body)
	}
	// The real client's Info goes through its product check.
	res, err := client(t, s, nil).Info()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("client Info: %v %v", err, res)
	}
	res.Body.Close()
	if g := raw(t, http.MethodGet, s.URL()+"/_bulk", "", nil); g.status != 405 {
		t.Fatalf("GET /_bulk: %d %s", g.status, g.body)
	}
}

func TestItemShapesAndStore(t *testing.T) {
	s := start(t, Config{})
	body := `{"index":{"_index":"logs","_id":"a"}}
{"msg":"one"}
{"index":{"_index":"logs"}}
{"msg":"auto"}
{"index":{"_id":"a"}}
{"msg":"one again"}
{"create":{"_id":"b","routing":"r1","pipeline":"p"}}
{"msg":"two"}
{"update":{"_id":"b"}}
{"doc":{"extra":{"k":1}}}
{"update":{"_id":"c"}}
{"doc":{"msg":"upserted"},"doc_as_upsert":true}
{"update":{"_id":"missing"}}
{"doc":{"x":1}}
{"delete":{"_id":"c"}}
{"delete":{"_id":"never"}}
{"index":{"_id":"bad"}}
{"msg": not json}
{"index":{"_id":"arr"}}
[1,2]
`
	r := raw(t, http.MethodPost, s.URL()+"/logs/_bulk?refresh=true", body, nil)
	if r.status != 200 || r.header.Get("X-Elastic-Product") != "Elasticsearch" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("bulk: %d %v %s", r.status, r.header, r.body)
	}
	a := decode(t, r.body)
	if !a.Errors || len(a.Items) != 11 {
		t.Fatalf("errors=%v items=%d: %s", a.Errors, len(a.Items), r.body)
	}
	type want struct {
		action, id, result string
		status             int
		version            int64
		errType            string
	}
	wants := []want{
		{"index", "a", "created", 201, 1, ""},
		{"index", "", "created", 201, 1, ""},
		{"index", "a", "updated", 200, 2, ""},
		{"create", "b", "created", 201, 1, ""},
		{"update", "b", "updated", 200, 2, ""},
		{"update", "c", "created", 201, 1, ""},
		{"update", "missing", "", 404, 0, "document_missing_exception"},
		{"delete", "c", "deleted", 200, 2, ""},
		{"delete", "never", "not_found", 404, 1, ""},
		{"index", "bad", "", 400, 0, "document_parsing_exception"},
		{"index", "arr", "", 400, 0, "document_parsing_exception"},
	}
	var autoID string
	for i, w := range wants {
		action, it := only(t, a.Items[i])
		if action != w.action || it.Index != "logs" || it.Status != w.status || it.Result != w.result || it.Version != w.version {
			t.Errorf("item %d: %s %+v, want %+v", i, action, it, w)
		}
		if w.id != "" && it.ID != w.id {
			t.Errorf("item %d: id %q, want %q", i, it.ID, w.id)
		}
		if w.errType == "" {
			if it.Error != nil || it.SeqNo == nil || it.PrimaryTerm != 1 ||
				!reflect.DeepEqual(it.Shards, map[string]int{"total": 2, "successful": 1, "failed": 0}) {
				t.Errorf("item %d: success shape %+v", i, it)
			}
		} else if it.Error == nil || it.Error.Type != w.errType || it.Error.Index != "logs" || it.Error.Reason == "" {
			t.Errorf("item %d: error %+v, want type %s", i, it.Error, w.errType)
		}
		if i == 1 {
			autoID = it.ID
		}
	}
	if len(autoID) != 20 {
		t.Errorf("generated id %q, want 20 characters", autoID)
	}
	// The sequence numbers of successful writes increase from 0.
	_, first := only(t, a.Items[0])
	_, third := only(t, a.Items[2])
	if *first.SeqNo != 0 || *third.SeqNo != 2 {
		t.Errorf("seq_no %d, %d", *first.SeqNo, *third.SeqNo)
	}

	docs := s.Docs("logs")
	wantDocs := map[string]string{
		"a":    `{"msg":"one again"}`,
		autoID: `{"msg":"auto"}`,
		"b":    `{"extra":{"k":1},"msg":"two"}`,
	}
	if len(docs) != len(wantDocs) {
		t.Fatalf("docs %d: %q", len(docs), docs)
	}
	for id, src := range wantDocs {
		if string(docs[id]) != src {
			t.Errorf("doc %s = %s, want %s", id, docs[id], src)
		}
	}
	if d, ok := s.Doc("logs", "b"); !ok || d.Routing != "r1" || d.Pipeline != "p" || d.Version != 2 {
		t.Errorf("doc b: %+v %v", d, ok)
	}
	if s.Count() != 3 || !reflect.DeepEqual(s.Indices(), []string{"logs"}) {
		t.Errorf("count %d indices %v", s.Count(), s.Indices())
	}
	if s.Writes("logs", "a") != 2 || s.Writes("logs", "b") != 2 || s.Writes("logs", "bad") != 0 || s.Attempts("logs", "bad") != 1 {
		t.Errorf("writes a=%d b=%d bad=%d attempts bad=%d", s.Writes("logs", "a"), s.Writes("logs", "b"), s.Writes("logs", "bad"), s.Attempts("logs", "bad"))
	}
	recs := s.Requests()
	if len(recs) != 1 || recs[0].Items != 11 || recs[0].Failed != 3 || recs[0].Status != 200 || recs[0].Bytes != len(body) {
		t.Errorf("requests: %+v", recs)
	}
}

func TestCreateConflictWithClient(t *testing.T) {
	s := start(t, Config{})
	es := client(t, s, nil)
	body := `{"create":{"_index":"ev","_id":"1"}}
{"n":1}
{"create":{"_index":"ev","_id":"1"}}
{"n":2}
`
	res, err := es.Bulk(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	a := decode(t, b)
	_, ok := only(t, a.Items[0])
	_, conflict := only(t, a.Items[1])
	if !a.Errors || ok.Status != 201 || conflict.Status != 409 || conflict.Error == nil ||
		conflict.Error.Type != "version_conflict_engine_exception" ||
		conflict.Error.Reason != "[1]: version conflict, document already exists (current version [1])" {
		t.Fatalf("answer: %s", b)
	}
	if got := string(s.Docs("ev")["1"]); got != `{"n":1}` || s.Writes("ev", "1") != 1 || s.Attempts("ev", "1") != 2 {
		t.Fatalf("stored %s writes %d attempts %d", got, s.Writes("ev", "1"), s.Attempts("ev", "1"))
	}
}

func TestMalformedRequests(t *testing.T) {
	s := start(t, Config{})
	cases := []struct {
		name, path, body, contentType string
		status                        int
		errType, reason               string
	}{
		{"no final newline", "/_bulk", "{\"index\":{\"_index\":\"x\",\"_id\":\"1\"}}\n{\"a\":1}", "", 400,
			"illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"},
		{"empty", "/_bulk", "", "", 400, "parse_exception", "request body is required"},
		{"unknown action", "/_bulk", "{\"upsert\":{\"_index\":\"x\"}}\n{}\n", "", 400, "illegal_argument_exception",
			"Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]"},
		{"no index", "/_bulk", "{\"index\":{}}\n{}\n", "", 400, "action_request_validation_exception", "Validation Failed: 1: index is missing;"},
		{"_type", "/_bulk", "{\"index\":{\"_index\":\"x\",\"_type\":\"_doc\"}}\n{}\n", "", 400, "illegal_argument_exception",
			"Action/metadata line [1] contains an unknown parameter [_type]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := raw(t, http.MethodPost, s.URL()+c.path, c.body, nil)
			var e struct {
				Error struct {
					RootCause []struct{ Type string } `json:"root_cause"`
					Type      string                  `json:"type"`
					Reason    string                  `json:"reason"`
				} `json:"error"`
				Status int `json:"status"`
			}
			if err := json.Unmarshal(r.body, &e); err != nil {
				t.Fatalf("%v: %s", err, r.body)
			}
			if r.status != c.status || e.Status != c.status || e.Error.Type != c.errType || e.Error.Reason != c.reason ||
				len(e.Error.RootCause) != 1 || e.Error.RootCause[0].Type != c.errType {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	r := raw(t, http.MethodPost, s.URL()+"/_bulk", "{\"index\":{\"_index\":\"x\"}}\n{}\n", map[string]string{"Content-Type": "text/plain"})
	if r.status != 406 || !strings.Contains(string(r.body), "Content-Type header [text/plain] is not supported") {
		t.Fatalf("text/plain: %d %s", r.status, r.body)
	}
	if s.Count() != 0 || len(s.Indices()) != 0 {
		t.Fatalf("malformed requests stored documents: %v", s.Indices())
	}
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGzipBody(t *testing.T) {
	s := start(t, Config{})
	body := gz(t, "{\"index\":{\"_index\":\"z\",\"_id\":\"1\"}}\n{\"v\":\"zipped\"}\n")
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/_bulk", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || string(s.Docs("z")["1"]) != `{"v":"zipped"}` {
		t.Fatalf("%d %q", res.StatusCode, s.Docs("z"))
	}
	if r := s.Requests()[0]; !r.Gzip || r.Bytes != len(body) {
		t.Fatalf("record %+v", r)
	}

	// The real client's compression and BulkIndexer.
	es := client(t, s, func(c *elasticsearch.Config) { c.CompressRequestBody = true })
	var mu sync.Mutex
	var failures []string
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "bi", NumWorkers: 2, FlushBytes: 2000,
		OnError: func(_ context.Context, err error) { t.Errorf("indexer: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		err := bi.Add(context.Background(), esutil.BulkIndexerItem{Action: "index", DocumentID: fmt.Sprint(i),
			Body: strings.NewReader(fmt.Sprintf(`{"i":%d}`, i)),
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, r esutil.BulkIndexerResponseItem, err error) {
				mu.Lock()
				failures = append(failures, fmt.Sprint(r.Status, r.Error.Type, err))
				mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := bi.Stats()
	docs := s.Docs("bi")
	if len(failures) != 0 || st.NumIndexed != 300 || st.NumFailed != 0 || len(docs) != 300 {
		t.Fatalf("failures %v stats %+v docs %d", failures, st, len(docs))
	}
	for i := range 300 {
		if got := string(docs[fmt.Sprint(i)]); got != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("doc %d = %s", i, got)
		}
	}
	gzipped := 0
	for _, r := range s.Requests() {
		if r.Gzip {
			gzipped++
		}
	}
	if gzipped != len(s.Requests()) || gzipped < 2 {
		t.Fatalf("%d of %d requests gzipped", gzipped, len(s.Requests()))
	}
}

// TestFailItemsHook sends 500 documents with the real client and resends,
// like a careful destination would, only the items answered 429: the two
// permanent 400s stay out, every other document is written exactly once.
func TestFailItemsHook(t *testing.T) {
	s := start(t, Config{})
	s.FailItems(func(index, id string, source []byte, attempt int) *ItemError {
		switch {
		case id == "7" || id == "300":
			return MapperParsing("failed to parse field [n] of type [long] in document with id '" + id + "'")
		case strings.HasSuffix(id, "0") && attempt <= 2:
			return RejectedExecution()
		}
		return nil
	})
	es := client(t, s, nil)
	pending := make([]int, 500)
	for i := range pending {
		pending[i] = i
	}
	permanent := map[string]string{}
	for round := 1; len(pending) > 0; round++ {
		if round > 5 {
			t.Fatalf("still pending after 4 rounds: %v", pending)
		}
		var body strings.Builder
		for _, i := range pending {
			fmt.Fprintf(&body, "{\"index\":{\"_id\":\"%d\"}}\n{\"n\":%d}\n", i, i)
		}
		res, err := esapi.BulkRequest{Index: "hook", Body: strings.NewReader(body.String())}.Do(context.Background(), es)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		a := decode(t, b)
		var next []int
		for k, item := range a.Items {
			_, it := only(t, item)
			switch {
			case it.Status == 429:
				if it.Error.Type != "es_rejected_execution_exception" {
					t.Fatalf("429 item: %+v", it.Error)
				}
				next = append(next, pending[k])
			case it.Status >= 300:
				permanent[it.ID] = it.Error.Type
			}
		}
		pending = next
	}
	if !reflect.DeepEqual(permanent, map[string]string{"7": "mapper_parsing_exception", "300": "mapper_parsing_exception"}) {
		t.Fatalf("permanent failures %v", permanent)
	}
	docs := s.Docs("hook")
	if len(docs) != 498 {
		t.Fatalf("%d docs", len(docs))
	}
	for i := range 500 {
		id := fmt.Sprint(i)
		wantWrites, wantAttempts := 1, 1
		switch {
		case id == "7" || id == "300":
			wantWrites = 0
		case strings.HasSuffix(id, "0"):
			wantAttempts = 3
		}
		if s.Writes("hook", id) != wantWrites || s.Attempts("hook", id) != wantAttempts {
			t.Errorf("id %s: writes %d attempts %d", id, s.Writes("hook", id), s.Attempts("hook", id))
		}
		if wantWrites == 1 && string(docs[id]) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Errorf("doc %s = %s", id, docs[id])
		}
	}
	recs := s.Requests()
	if len(recs) != 3 || recs[0].Injected != 51 || recs[1].Injected != 49 || recs[2].Injected != 0 || recs[2].Items != 49 {
		t.Fatalf("records %+v", recs)
	}
}

func TestWholeRequest429(t *testing.T) {
	s := start(t, Config{})
	s.FailRequests(1, 429, "", "7")
	body := "{\"index\":{\"_index\":\"w\",\"_id\":\"1\"}}\n{}\n"
	r := raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil)
	if r.status != 429 || r.header.Get("Retry-After") != "7" || !strings.Contains(string(r.body), `"type":"es_rejected_execution_exception"`) {
		t.Fatalf("%d %v %s", r.status, r.header, r.body)
	}
	if s.Count() != 0 {
		t.Fatal("a rejected request stored documents")
	}
	// The real client: a 429 is not in its default RetryOnStatus, it comes
	// back as an error answer.
	s.FailRequests(1, 429, `{"error":"custom","status":429}`, "")
	res, err := client(t, s, nil).Bulk(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 429 || !res.IsError() || string(b) != `{"error":"custom","status":429}` || s.Count() != 0 {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
	if r := raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil); r.status != 200 || s.Writes("w", "1") != 1 {
		t.Fatalf("after the faults: %d %s", r.status, r.body)
	}
	recs := s.Requests()
	if len(recs) != 3 || recs[0].Fault != "fail-requests" || recs[0].Status != 429 || recs[0].Items != 1 || recs[2].Fault != "" {
		t.Fatalf("%+v", recs)
	}
}

func TestStormSlowNonBulk(t *testing.T) {
	s := start(t, Config{})
	body := "{\"index\":{\"_index\":\"s\",\"_id\":\"1\"}}\n{}\n"
	s.Storm(time.Hour, 503)
	for range 3 {
		if r := raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil); r.status != 503 || !strings.Contains(string(r.body), "cluster_block_exception") {
			t.Fatalf("storm: %d %s", r.status, r.body)
		}
	}
	s.Storm(time.Hour, 502)
	if r := raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil); r.status != 502 || !strings.HasPrefix(string(r.body), "<html>") {
		t.Fatalf("storm 502: %d %s", r.status, r.body)
	}
	s.ClearFaults()

	s.NonBulkAnswer(2, "")
	if r := raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil); r.status != 200 || r.body == nil || string(r.body) != HTMLBody ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("non-bulk: %d %v %s", r.status, r.header, r.body)
	}
	s.NonBulkAnswer(1, EmptyObjectBody)
	if r := raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil); r.status != 200 || string(r.body) != "{}" {
		t.Fatalf("non-bulk {}: %d %s", r.status, r.body)
	}
	if s.Count() != 0 {
		t.Fatal("faults stored documents")
	}

	// Slow: processed, then the answer waits; the client gives up first.
	s.Slow(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/_bulk", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow: %v", err)
	}
	if s.Writes("s", "1") != 1 {
		t.Fatal("slow answer: the document was not processed")
	}
	s.Slow(0)
	// The slow request's record is written when its handler returns, once
	// it has seen the client go.
	for deadline := time.Now().Add(10 * time.Second); len(s.Requests()) < 7 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	var faults []string
	for _, r := range s.Requests() {
		faults = append(faults, fmt.Sprint(r.Fault, ":", r.Status))
	}
	if strings.Join(faults, " ") != "storm:503 storm:503 storm:503 storm:502 non-bulk:200 non-bulk:200 :0" {
		t.Fatalf("records %v", faults)
	}
}

func TestDropConnection(t *testing.T) {
	s := start(t, Config{})
	noRetry := client(t, s, func(c *elasticsearch.Config) { c.DisableRetry = true })
	bulk := func(es *elasticsearch.Client, id string) error {
		res, err := es.Bulk(strings.NewReader(fmt.Sprintf("{\"index\":{\"_index\":\"d\",\"_id\":%q}}\n{\"id\":%q}\n", id, id)))
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d: %s", res.StatusCode, b)
		}
		return json.Unmarshal(b, new(answer))
	}
	if err := bulk(noRetry, "warmup"); err != nil {
		t.Fatal(err)
	}
	s.DropConnection(1, DropAfterProcessing)
	if err := bulk(noRetry, "after"); err == nil {
		t.Fatal("drop after processing: no error")
	}
	if string(s.Docs("d")["after"]) != `{"id":"after"}` || s.Writes("d", "after") != 1 {
		t.Fatalf("drop after processing: not stored: %q", s.Docs("d"))
	}
	s.DropConnection(1, DropBeforeProcessing)
	if err := bulk(noRetry, "before"); err == nil {
		t.Fatal("drop before processing: no error")
	}
	if _, ok := s.Doc("d", "before"); ok || s.Attempts("d", "before") != 0 {
		t.Fatal("drop before processing stored the document")
	}
	// The client's default transport resends a request whose connection
	// broke before the answer's headers: the resent one is processed.
	s.DropConnection(1, DropBeforeProcessing)
	if err := bulk(client(t, s, nil), "resent"); err != nil {
		t.Fatalf("default client: %v", err)
	}
	if s.Writes("d", "resent") != 1 || s.Attempts("d", "resent") != 1 {
		t.Fatalf("resent: writes %d", s.Writes("d", "resent"))
	}
	// A cut in the answer's body is not resent: reading the body fails.
	s.DropConnection(1, DropAfterProcessing)
	if err := bulk(client(t, s, nil), "cut"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("default client, cut body: %v", err)
	}
	if s.Writes("d", "cut") != 1 {
		t.Fatalf("cut: writes %d", s.Writes("d", "cut"))
	}
	var faults []string
	for _, r := range s.Requests() {
		faults = append(faults, fmt.Sprint(r.Fault, ":", r.Status))
	}
	if strings.Join(faults, " ") != ":200 drop-after:0 drop-before:0 drop-before:0 :200 drop-after:0" {
		t.Fatalf("records %v", faults)
	}
}

func TestIndexStates(t *testing.T) {
	s := start(t, Config{NoAutoCreateIndex: true, ReadOnlyIndices: []string{"frozen"}})
	if err := s.CreateIndex("open"); err != nil {
		t.Fatal(err)
	}
	body := `{"index":{"_index":"frozen","_id":"1"}}
{}
{"index":{"_index":"nothere","_id":"1"}}
{}
{"index":{"_index":"open","_id":"1"}}
{}
{"index":{"_index":"Upper","_id":"1"}}
{}
`
	a := decode(t, raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil).body)
	want := []struct {
		status int
		typ    string
		reason string
	}{
		{403, "cluster_block_exception", "index [frozen] blocked by: [FORBIDDEN/8/index write (api)];"},
		{404, "index_not_found_exception", "no such index [nothere]"},
		{201, "", ""},
		{400, "invalid_index_name_exception", "Invalid index name [Upper], must be lowercase"},
	}
	for i, w := range want {
		_, it := only(t, a.Items[i])
		got := struct {
			status      int
			typ, reason string
		}{it.Status, "", ""}
		if it.Error != nil {
			got.typ, got.reason = it.Error.Type, it.Error.Reason
		}
		if got.status != w.status || got.typ != w.typ || got.reason != w.reason {
			t.Errorf("item %d: %+v, want %+v", i, got, w)
		}
	}
	if !reflect.DeepEqual(s.Indices(), []string{"frozen", "open"}) || s.Count() != 1 {
		t.Fatalf("indices %v count %d", s.Indices(), s.Count())
	}
	if err := s.SetReadOnly("frozen", false); err != nil {
		t.Fatal(err)
	}
	a = decode(t, raw(t, http.MethodPost, s.URL()+"/frozen/_bulk", "{\"index\":{\"_id\":\"1\"}}\n{}\n", nil).body)
	if _, it := only(t, a.Items[0]); it.Status != 201 {
		t.Fatalf("after SetReadOnly false: %+v", it)
	}
}

// TestOpenSearch: no X-Elastic-Product header, so go-elasticsearch v8
// refuses the first 2xx answer with its product-check error, after the
// server has processed the request: the documents are stored although the
// client reports a failure. An OpenSearch destination must not use the
// product check (Sluice's flavor: opensearch).
func TestOpenSearch(t *testing.T) {
	s := start(t, Config{OpenSearch: true})
	r := raw(t, http.MethodGet, s.URL()+"/", "", nil)
	var info struct {
		Version struct{ Distribution, Number string } `json:"version"`
	}
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	if r.status != 200 || r.header.Get("X-Elastic-Product") != "" || info.Version.Distribution != "opensearch" || !strings.HasPrefix(info.Version.Number, "2.") {
		t.Fatalf("GET /: %d %v %s", r.status, r.header, r.body)
	}
	body := "{\"index\":{\"_index\":\"os\",\"_id\":\"1\"}}\n{\"a\":1}\n{\"index\":{\"_index\":\"os\",\"_id\":\"2\"}}\nnope\n"
	res, err := client(t, s, nil).Bulk(strings.NewReader(body))
	if err == nil {
		res.Body.Close()
		t.Fatal("go-elasticsearch accepted an answer without X-Elastic-Product")
	}
	if !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Fatalf("error: %v", err)
	}
	if string(s.Docs("os")["1"]) != `{"a":1}` {
		t.Fatalf("docs %q", s.Docs("os"))
	}
	// Raw HTTP works; OpenSearch names the parse failure mapper_parsing_exception.
	r = raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil)
	a := decode(t, r.body)
	_, first := only(t, a.Items[0])
	_, second := only(t, a.Items[1])
	if r.header.Get("X-Elastic-Product") != "" || first.Result != "updated" || second.Error == nil || second.Error.Type != "mapper_parsing_exception" {
		t.Fatalf("%v %s", r.header, r.body)
	}
}

func TestControlEndpoint(t *testing.T) {
	s := start(t, Config{})
	r := raw(t, http.MethodPost, s.URL()+"/_esbulk/faults", `{"fail_requests":{"n":1,"status":429,"retry_after":"3"}}`, nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	body := "{\"index\":{\"_index\":\"c\",\"_id\":\"1\"}}\n{}\n"
	if r := raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil); r.status != 429 || r.header.Get("Retry-After") != "3" {
		t.Fatalf("%d %v", r.status, r.header)
	}
	if r := raw(t, http.MethodPost, s.URL()+"/_bulk", body, nil); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	if r := raw(t, http.MethodPost, s.URL()+"/_esbulk/faults", `{"bogus":1}`, nil); r.status != 400 {
		t.Fatalf("unknown field: %d", r.status)
	}
	var st State
	if err := json.Unmarshal(raw(t, http.MethodGet, s.URL()+"/_esbulk/state", "", nil).body, &st); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, State{Count: 1, Indices: map[string]int{"c": 1}, Requests: 2}) {
		t.Fatalf("state %+v", st)
	}
}

// TestConcurrentClients runs several BulkIndexer workers against a hook
// that rejects some first attempts, under -race.
func TestConcurrentClients(t *testing.T) {
	s := start(t, Config{})
	s.FailItems(func(index, id string, source []byte, attempt int) *ItemError {
		if strings.HasSuffix(id, "3") && attempt == 1 {
			return RejectedExecution()
		}
		return nil
	})
	es := client(t, s, nil)
	var mu sync.Mutex
	rejected := map[string]bool{}
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "cc", NumWorkers: 4, FlushBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		id := fmt.Sprint(i)
		err := bi.Add(context.Background(), esutil.BulkIndexerItem{Action: "create", DocumentID: id, Body: strings.NewReader(`{"x":1}`),
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, r esutil.BulkIndexerResponseItem, _ error) {
				mu.Lock()
				rejected[id] = r.Status == 429
				mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 100 || s.Count() != 900 {
		t.Fatalf("rejected %d count %d", len(rejected), s.Count())
	}
	for id, was429 := range rejected {
		if !was429 || !strings.HasSuffix(id, "3") || s.Writes("cc", id) != 0 || s.Attempts("cc", id) != 1 {
			t.Fatalf("id %s: 429 %v writes %d", id, was429, s.Writes("cc", id))
		}
	}
}

// TestAuthorization: a secured server answers requests without accepted
// credentials 401 security_exception and stores nothing; the scheme is
// compared without regard to case.
func TestAuthorization(t *testing.T) {
	s := start(t, Config{Authorization: []string{"ApiKey k1"}})
	body := "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n"
	for _, tc := range []struct {
		auth   string
		status int
		reason string
	}{
		{"", 401, "missing authentication credentials for REST request [/_bulk]"},
		{"ApiKey k2", 401, "unable to authenticate with provided credentials"},
		{"APIKey k1", 200, ""},
	} {
		h := map[string]string{}
		if tc.auth != "" {
			h["Authorization"] = tc.auth
		}
		r := raw(t, http.MethodPost, s.URL()+"/_bulk", body, h)
		if r.status != tc.status {
			t.Fatalf("%q: status %d: %s", tc.auth, r.status, r.body)
		}
		if tc.status == 401 {
			var e struct {
				Error struct{ Type, Reason string }
			}
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Type != "security_exception" || !strings.Contains(e.Error.Reason, tc.reason) {
				t.Errorf("%q: %s", tc.auth, r.body)
			}
			if len(r.header.Values("WWW-Authenticate")) == 0 {
				t.Errorf("%q: no WWW-Authenticate", tc.auth)
			}
		}
	}
	if n := len(s.Docs("a")); n != 1 {
		t.Errorf("%d documents stored, want 1", n)
	}
}
