package receiver

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func start(t *testing.T, cfg Config) *Receiver {
	t.Helper()
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// request builds a conforming request for id with records.
func request(t *testing.T, url, id string, records ...string) *http.Request {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `{"requestId":%q,"timestamp":1598556019164,"records":[`, id)
	for i, r := range records {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"data":%q}`, base64.StdEncoding.EncodeToString([]byte(r)))
	}
	b.WriteString("]}")
	return rawRequest(t, url, id, b.String())
}

func rawRequest(t *testing.T, url, id, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderProtocolVersion, "1.0")
	req.Header.Set(HeaderRequestID, id)
	req.Header.Set(HeaderSourceARN, "arn:aws:firehose:us-east-1:123456789012:deliverystream/s")
	return req
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func TestAccept(t *testing.T) {
	r := start(t, Config{})
	a := do(t, request(t, r.URL(), "id-1", "hello", "", "\x00\xff"))
	if a.status != 200 || a.body["requestId"] != "id-1" || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %v %q, want 200 application/json with requestId id-1", a.status, a.header, a.raw)
	}
	if _, ok := a.body["timestamp"].(float64); !ok {
		t.Fatalf("answer timestamp %v is not a number", a.body["timestamp"])
	}
	if _, ok := a.body["errorMessage"]; ok {
		t.Fatalf("success carries an errorMessage: %q", a.raw)
	}
	if a.header.Get("Content-Length") == "" {
		t.Fatal("no Content-Length")
	}
	ds := r.Deliveries()
	if len(ds) != 1 || !ds[0].Accepted || ds[0].Repeat || ds[0].RequestID != "id-1" || string(ds[0].Timestamp) != "1598556019164" {
		t.Fatalf("deliveries %+v", ds)
	}
	want := []string{"hello", "", "\x00\xff"}
	got := r.Records()
	if len(got) != len(want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
	if s := r.Stats(); s != (Stats{Requests: 1, Accepted: 1, Records: 3, UniqueRecords: 3, Bytes: 7}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestTimestampStringAndGzip(t *testing.T) {
	r := start(t, Config{})
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	fmt.Fprintf(zw, `{"requestId":"g","timestamp":"2020-08-27T19:20:19Z","records":[{"data":%q}]}`, base64.StdEncoding.EncodeToString([]byte("zipped")))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	req := rawRequest(t, r.URL(), "g", "")
	req.Body = io.NopCloser(&zb)
	req.ContentLength = int64(zb.Len())
	req.Header.Set("Content-Encoding", "gzip")
	if a := do(t, req); a.status != 200 {
		t.Fatalf("gzip with a string timestamp: %d %q", a.status, a.raw)
	}
	if got := r.Records(); len(got) != 1 || string(got[0]) != "zipped" {
		t.Fatalf("records %q", got)
	}
}

func TestRejects(t *testing.T) {
	r := start(t, Config{MaxRecords: 2})
	ok := func(id string) *http.Request { return request(t, r.URL(), id, "x") }
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		msg    string
	}{
		{"GET", func() *http.Request { q := ok("a"); q.Method = http.MethodGet; return q }, 405, "POST"},
		{"content type", func() *http.Request { q := ok("a"); q.Header.Set("Content-Type", "text/plain"); return q }, 400, "Content-Type"},
		{"version", func() *http.Request { q := ok("a"); q.Header.Set(HeaderProtocolVersion, "2.0"); return q }, 400, HeaderProtocolVersion},
		{"no request id", func() *http.Request { q := ok("a"); q.Header.Del(HeaderRequestID); return q }, 400, HeaderRequestID},
		{"no source arn", func() *http.Request { q := ok("a"); q.Header.Del(HeaderSourceARN); return q }, 400, HeaderSourceARN},
		{"id mismatch", func() *http.Request {
			return rawRequest(t, r.URL(), "a", `{"requestId":"b","timestamp":1,"records":[{"data":""}]}`)
		}, 400, "differs"},
		{"not json", func() *http.Request { return rawRequest(t, r.URL(), "a", `records`) }, 400, "JSON"},
		{"unknown field", func() *http.Request {
			return rawRequest(t, r.URL(), "a", `{"requestId":"a","timestamp":1,"records":[{"data":""}],"x":1}`)
		}, 400, "JSON"},
		{"object timestamp", func() *http.Request {
			return rawRequest(t, r.URL(), "a", `{"requestId":"a","timestamp":{},"records":[{"data":""}]}`)
		}, 400, "timestamp"},
		{"no timestamp", func() *http.Request { return rawRequest(t, r.URL(), "a", `{"requestId":"a","records":[{"data":""}]}`) }, 400, "timestamp"},
		{"no records", func() *http.Request {
			return rawRequest(t, r.URL(), "a", `{"requestId":"a","timestamp":1,"records":[]}`)
		}, 400, "no records"},
		{"too many records", func() *http.Request { return request(t, r.URL(), "a", "1", "2", "3") }, 400, "at most 2"},
		{"bad base64", func() *http.Request {
			return rawRequest(t, r.URL(), "a", `{"requestId":"a","timestamp":1,"records":[{"data":"!!"}]}`)
		}, 400, "base64"},
		{"no data", func() *http.Request {
			return rawRequest(t, r.URL(), "a", `{"requestId":"a","timestamp":1,"records":[{}]}`)
		}, 400, "no data"},
		{"bad common attributes", func() *http.Request { q := ok("a"); q.Header.Set(HeaderCommonAttributes, `{"a":"b"}`); return q }, 400, HeaderCommonAttributes},
		{"too large", func() *http.Request {
			return rawRequest(t, r.URL(), "a", `{"requestId":"a","timestamp":1,"records":[{"data":"`+strings.Repeat("A", MaxBodyBytes)+`"}]}`)
		}, 413, "64 MiB"},
	}
	for _, c := range cases {
		a := do(t, c.req())
		if a.status != c.status {
			t.Errorf("%s: status %d (%q), want %d", c.name, a.status, a.raw, c.status)
			continue
		}
		if msg, _ := a.body["errorMessage"].(string); !strings.Contains(msg, c.msg) {
			t.Errorf("%s: errorMessage %q does not mention %q", c.name, msg, c.msg)
		}
	}
	if s := r.Stats(); s.Accepted != 0 || s.Rejected != int64(len(cases)) {
		t.Fatalf("stats %+v, want %d rejected and none accepted", s, len(cases))
	}
	for _, d := range r.Deliveries() {
		if d.Accepted || d.Problem == "" {
			t.Fatalf("delivery %+v recorded as conforming", d)
		}
	}
}

func TestCommonAttributesAndAccessKey(t *testing.T) {
	r := start(t, Config{AccessKey: "k3y"})
	if a := do(t, request(t, r.URL(), "a", "x")); a.status != 401 {
		t.Fatalf("without the key: %d %q, want 401", a.status, a.raw)
	}
	q := request(t, r.URL(), "a", "x")
	q.Header.Set(HeaderAccessKey, "k3y")
	q.Header.Set(HeaderCommonAttributes, `{"commonAttributes":{"env":"prod","empty":""}}`)
	if a := do(t, q); a.status != 200 {
		t.Fatalf("with the key: %d %q", a.status, a.raw)
	}
	ds := r.Deliveries()
	if len(ds) != 2 || !ds[1].Repeat || ds[1].CommonAttributes["env"] != "prod" || len(ds[1].CommonAttributes) != 2 {
		t.Fatalf("deliveries %+v", ds)
	}
}

func TestBehaviours(t *testing.T) {
	r := start(t, Config{})
	r.SetBehaviour(Behaviour{Answer: Fail, Status: 429, RetryAfter: "7", ErrorMessage: "slow down", Times: 2})
	for i := range 2 {
		a := do(t, request(t, r.URL(), "x", "r"))
		if a.status != 429 || a.header.Get("Retry-After") != "7" || a.body["errorMessage"] != "slow down" || a.body["requestId"] != "x" {
			t.Fatalf("failure %d: %d %v %q", i, a.status, a.header, a.raw)
		}
	}
	if a := do(t, request(t, r.URL(), "x", "r")); a.status != 200 {
		t.Fatalf("after Times failures: %d, want 200", a.status)
	}
	if got := r.UniqueRecords(); len(got) != 1 {
		t.Fatalf("unique records %q, want one", got)
	}
	if s := r.Stats(); s.Requests != 3 || s.Accepted != 1 || s.UniqueRecords != 1 {
		t.Fatalf("stats %+v", s)
	}

	r.SetBehaviour(Behaviour{Answer: Redirect})
	if a := do(t, request(t, r.URL(), "y", "r")); a.status != 302 || a.header.Get("Location") == "" {
		t.Fatalf("redirect: %d %v", a.status, a.header)
	}
	r.SetBehaviour(Behaviour{Answer: MismatchedID})
	if a := do(t, request(t, r.URL(), "y", "r")); a.status != 200 || a.body["requestId"] == "y" {
		t.Fatalf("mismatched id: %d %q", a.status, a.raw)
	}
	r.SetBehaviour(Behaviour{Answer: NotJSON})
	if a := do(t, request(t, r.URL(), "y", "r")); a.status != 200 || json.Valid([]byte(a.raw)) {
		t.Fatalf("not JSON: %d %q", a.status, a.raw)
	}
	r.SetBehaviour(Behaviour{Answer: Fail, Status: 204})
	if a := do(t, request(t, r.URL(), "y", "r")); a.status != 204 || a.raw != "" {
		t.Fatalf("204: %d %q", a.status, a.raw)
	}
	r.SetBehaviour(Behaviour{Answer: Hangup})
	if _, err := http.DefaultClient.Do(request(t, r.URL(), "y", "r")); err == nil {
		t.Fatal("hangup: the request got an answer")
	}
	for _, d := range r.Deliveries()[3:] {
		if d.Accepted {
			t.Fatalf("misbehaving answer recorded as accepted: %+v", d)
		}
	}
}

func TestStopRestartStats(t *testing.T) {
	r := start(t, Config{CountOnly: true})
	url := r.URL()
	if a := do(t, request(t, url, "a", "x", "yz")); a.status != 200 {
		t.Fatal(a.status)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.DefaultClient.Do(request(t, url, "b", "x")); err == nil {
		t.Fatal("a stopped receiver answered")
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if r.URL() != url {
		t.Fatalf("restarted on %s, want %s", r.URL(), url)
	}
	if a := do(t, request(t, url, "a", "x", "yz")); a.status != 200 {
		t.Fatal(a.status)
	}
	q, _ := http.NewRequest(http.MethodGet, url+"stats", nil)
	a := do(t, q)
	if a.status != 200 || a.body["records"] != 4.0 || a.body["uniqueRecords"] != 2.0 || a.body["bytes"] != 6.0 {
		t.Fatalf("stats: %d %q", a.status, a.raw)
	}
	if len(r.Deliveries()) != 0 {
		t.Fatal("CountOnly kept deliveries")
	}
}
