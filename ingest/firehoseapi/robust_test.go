package firehoseapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Concurrent producers share the pooled request buffers: every stored record
// must be exactly what its producer sent, and each response must carry the
// IDs of that producer's records.
func TestConcurrentBatchesKeepTheirData(t *testing.T) {
	e := newEnv(t)
	const producers, batches, perBatch = 8, 10, 50
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	var mu sync.Mutex
	idToData := map[string]string{}
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				recs := make([][]byte, perBatch)
				for i := range recs {
					// Sizes vary so that pooled arenas are reused at different offsets.
					recs[i] = []byte(fmt.Sprintf("p%d-b%d-r%d-%s", p, b, i, strings.Repeat("x", (p*31+b*7+i)%300)))
				}
				r := e.op(t, "PutRecordBatch", batchBody("alpha", recs...))
				if r.status != 200 {
					errs <- fmt.Errorf("status %d %s", r.status, r.raw)
					return
				}
				mu.Lock()
				for i, x := range r.body["RequestResponses"].([]any) {
					idToData[x.(map[string]any)["RecordId"].(string)] = string(recs[i])
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stored := e.stored(t, "alpha")
	if len(stored) != producers*batches*perBatch || len(idToData) != len(stored) {
		t.Fatalf("stored %d, ids %d", len(stored), len(idToData))
	}
	for _, r := range stored {
		if want, ok := idToData[r.ID]; !ok || want != string(r.Data) {
			t.Fatalf("record %s = %q, producer sent %q", r.ID, r.Data, want)
		}
	}
}

var serveSeeds = []struct {
	op   string
	body string
}{
	{"PutRecordBatch", `{"DeliveryStreamName":"alpha","Records":[{"Data":"aGVsbG8="}]}`},
	{"PutRecordBatch", `{"DeliveryStreamName":"tiny","Records":[{"Data":"aGVsbG8="},{"Data":""}]}`},
	{"PutRecordBatch", `{"DeliveryStreamName":"kin","Records":[{"Data":"aGVsbG8="}]}`},
	{"PutRecordBatch", `{"DeliveryStreamName":"broken","Records":[{"Data":""}]}`},
	{"PutRecord", `{"DeliveryStreamName":"broken","Record":{"Data":""}}`},
	{"PutRecord", `{"DeliveryStreamName":"alpha","Record":{"Data":"aGVsbG8="}}`},
	{"PutRecord", `{"DeliveryStreamName":"tiny","Record":null}`},
	{"ListDeliveryStreams", `{"Limit":2,"DeliveryStreamType":"DirectPut"}`},
	{"DescribeDeliveryStream", `{"DeliveryStreamName":"alpha","ExclusiveStartDestinationId":"a"}`},
	{"ListTagsForDeliveryStream", `{"DeliveryStreamName":"alpha","Limit":1}`},
	{"CreateDeliveryStream", `{}`},
	{"Nope", `{}`},
	{"PutRecord", `null`},
	{"ListDeliveryStreams", `[]`},
}

// FuzzServeHTTP: whatever the operation and body, the handler answers with
// a JSON object and the standard headers, never panics, and only a 200
// PutRecord/PutRecordBatch stores records.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range serveSeeds {
		f.Add(s.op, []byte(s.body))
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		before := len(e.stored(t, "alpha"))
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", targetPrefix+op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		if w.Header().Get("Content-Type") != "application/x-amz-json-1.1" || !uuidRE.MatchString(w.Header().Get("X-Amzn-Requestid")) {
			t.Fatalf("headers %v", w.Header())
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("body %q: %v", w.Body.Bytes(), err)
		}
		if w.Code != 200 {
			if typ, _ := m["__type"].(string); typ == "" {
				t.Fatalf("error without __type: %d %s", w.Code, w.Body.Bytes())
			}
			if after := len(e.stored(t, "alpha")); after != before {
				t.Fatalf("rejected call (%d) stored %d records", w.Code, after-before)
			}
		}
	})
}

// Status codes the API answers with, by error type.
func TestErrorStatusesAreModeled(t *testing.T) {
	e := newEnv(t)
	seen := map[string]bool{}
	for _, s := range serveSeeds {
		r := e.op(t, s.op, s.body)
		if r.status >= 500 && r.body["__type"] != errInternalFailure && r.body["__type"] != errServiceUnavailable {
			t.Fatalf("%s: %d %s", s.op, r.status, r.raw)
		}
		if typ, ok := r.body["__type"].(string); ok {
			seen[typ] = true
		}
	}
	var types []string
	for k := range seen {
		types = append(types, k)
	}
	sort.Strings(types)
	if got := strings.Join(types, ","); got != "InternalFailure,InvalidArgumentException,SerializationException,UnknownOperationException,ValidationException" {
		t.Fatalf("error types %s", got)
	}
}
