package httpendpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers/receiver"
	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/pipeline"
)

// TestConformance runs the destination suite against the receiver: a
// stored unit is the concatenated records of the first accepted request of
// each request id (what an endpoint deduplicating on the id keeps).
func TestConformance(t *testing.T) {
	// The suite hands Deliver batches beyond Limits (the runner would
	// split them): the receiver takes any record count here.
	r := startReceiver(t, receiver.Config{MaxRecords: -1})
	destinationtest.Run(t, destinationtest.Harness{
		New: func(t *testing.T, stream string) pipeline.Destination {
			return newDest(t, opts(r), stream, nil)
		},
		Read: func(t *testing.T, stream string) [][]byte {
			var units [][]byte
			for _, d := range r.UniqueDeliveries() {
				if strings.HasSuffix(d.Header.Get(HeaderSourceARN), "/"+stream) {
					units = append(units, bytes.Join(d.Records, nil))
				}
			}
			return units
		},
	})
}

func TestRequest(t *testing.T) {
	r := startReceiver(t, receiver.Config{AccessKey: "the-access-key"})
	o := opts(r)
	o.AccessKey = "the-access-key"
	o.CommonAttributes = map[string]string{"b": "two", "a": "one", "empty": ""}
	d := newDest(t, o, "orders", nil)
	b := batch("orders", 4096, `{"id":1}`, "", "\x00\xffbinary")
	before := time.Now().UnixMilli()
	if err := deliver(t, d, b); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	ds := r.Deliveries()
	if len(ds) != 1 || !ds[0].Accepted {
		t.Fatalf("deliveries %+v, want one accepted", ds)
	}
	got := ds[0]
	wantHeaders := map[string]string{
		"Content-Type":         "application/json",
		HeaderProtocolVersion:  "1.0",
		HeaderRequestID:        RequestID("orders", b.ID),
		HeaderSourceARN:        "arn:aws:firehose:eu-west-3:123456789012:deliverystream/orders",
		HeaderAccessKey:        "the-access-key",
		HeaderCommonAttributes: `{"commonAttributes":{"a":"one","b":"two","empty":""}}`,
	}
	for k, v := range wantHeaders {
		if g := got.Header.Values(k); len(g) != 1 || g[0] != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	for k := range got.Header {
		if strings.HasPrefix(k, "X-Amz-") {
			if _, ok := wantHeaders[k]; !ok {
				t.Errorf("unexpected header %s: %q", k, got.Header[k])
			}
		}
	}
	if v := got.Header.Get("Content-Encoding"); v != "" {
		t.Errorf("Content-Encoding %q without GZIP", v)
	}
	if got.Header.Get("Content-Length") == "" {
		t.Error("no Content-Length")
	}
	ts, err := strconv.ParseInt(string(got.Timestamp), 10, 64)
	if err != nil || ts < before || ts > after {
		t.Errorf("timestamp %s, want epoch milliseconds of the attempt (a number in [%d, %d])", got.Timestamp, before, after)
	}
	checkRecords(t, got.Records, b)
	if got.CommonAttributes["a"] != "one" || len(got.CommonAttributes) != 3 {
		t.Errorf("common attributes %v", got.CommonAttributes)
	}
}

func checkRecords(t *testing.T, got [][]byte, b pipeline.Batch) {
	t.Helper()
	if len(got) != len(b.Records) {
		t.Fatalf("%d records received, want %d", len(got), len(b.Records))
	}
	for i := range got {
		if !bytes.Equal(got[i], b.Records[i].Data) {
			t.Fatalf("record %d = %q, want %q", i, got[i], b.Records[i].Data)
		}
	}
}

func TestNoKeyNoAttributes(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	d := newDest(t, opts(r), "s", nil)
	if err := deliver(t, d, batch("s", 0, "x")); err != nil {
		t.Fatal(err)
	}
	h := r.Deliveries()[0].Header
	for _, k := range []string{HeaderAccessKey, HeaderCommonAttributes} {
		if v, ok := h[k]; ok {
			t.Errorf("header %s = %q, want absent", k, v)
		}
	}
}

func TestWrongAccessKeyIsRetried(t *testing.T) {
	r := startReceiver(t, receiver.Config{AccessKey: "right"})
	o := opts(r)
	o.AccessKey = "wrong"
	d := newDest(t, o, "s", nil)
	wantCoded(t, deliver(t, d, batch("s", 0, "x")), CodeDestinationException, true, "401")
}

func TestGzip(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	o := opts(r)
	o.ContentEncoding = "gzip"
	d := newDest(t, o, "s", nil)
	// Over flushAt, so that the body is compressed in several chunks.
	datas := make([]string, 3000)
	for i := range datas {
		datas[i] = fmt.Sprintf("record %d %s", i, strings.Repeat("z", i%500))
	}
	b := batch("s", 0, datas...)
	if err := deliver(t, d, b); err != nil {
		t.Fatal(err)
	}
	got := r.Deliveries()[0]
	if v := got.Header.Get("Content-Encoding"); v != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", v)
	}
	if n, _ := strconv.Atoi(got.Header.Get("Content-Length")); n == 0 || n >= bodySize(b.Records, 13)/2 {
		t.Fatalf("Content-Length %d: not a compressed body", n)
	}
	checkRecords(t, got.Records, b)
}

func TestSlowReceiverConcurrent(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	r.SetBehaviour(receiver.Behaviour{Delay: 20 * time.Millisecond})
	d := newDest(t, opts(r), "s", nil)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = deliver(t, d, batch("s", pipeline.Position(i*1000), fmt.Sprint("batch ", i))) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := len(r.UniqueRecords()); got != n {
		t.Fatalf("%d records received, want %d", got, n)
	}
}

// TestFailingThenRecovering: failed attempts of one batch all carry the
// same request id, and the endpoint's errorMessage is in the error.
func TestFailingThenRecovering(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	r.SetBehaviour(receiver.Behaviour{Answer: receiver.Fail, Status: 500, ErrorMessage: "disk full on shard 7", Times: 2})
	d := newDest(t, opts(r), "s", nil)
	b := batch("s", 100, "a", "b")
	for range 2 {
		wantCoded(t, deliver(t, d, b), CodeDestinationException, true, "500", "disk full on shard 7", RequestID("s", b.ID))
	}
	// A restart: a new destination redelivers the same batch.
	d2 := newDest(t, opts(r), "s", nil)
	if err := deliver(t, d2, b); err != nil {
		t.Fatal(err)
	}
	ds := r.Deliveries()
	if len(ds) != 3 {
		t.Fatalf("%d requests, want 3", len(ds))
	}
	for i, dl := range ds {
		if dl.RequestID != RequestID("s", b.ID) || dl.Repeat != (i > 0) {
			t.Fatalf("request %d: id %s repeat %v, want %s repeat %v", i, dl.RequestID, dl.Repeat, RequestID("s", b.ID), i > 0)
		}
	}
	if got := len(r.UniqueRecords()); got != 2 {
		t.Fatalf("%d unique records, want 2", got)
	}
}

func TestStatuses(t *testing.T) {
	cases := []struct {
		name  string
		b     receiver.Behaviour
		code  string
		retry bool
		msgs  []string
	}{
		{"413 is permanent", receiver.Behaviour{Answer: receiver.Fail, Status: 413, ErrorMessage: "Payload too large"}, CodeDestinationException, false, []string{"413", "Payload too large"}},
		{"429", receiver.Behaviour{Answer: receiver.Fail, Status: 429}, CodeDestinationException, true, []string{"429"}},
		{"400", receiver.Behaviour{Answer: receiver.Fail, Status: 400, ErrorMessage: "bad"}, CodeDestinationException, true, []string{"400", "bad"}},
		{"503", receiver.Behaviour{Answer: receiver.Fail, Status: 503}, CodeDestinationException, true, []string{"503"}},
		{"201", receiver.Behaviour{Answer: receiver.Fail, Status: 201}, CodeDestinationException, true, []string{"201"}},
		{"204", receiver.Behaviour{Answer: receiver.Fail, Status: 204}, CodeDestinationException, true, []string{"204", "empty body"}},
		{"302 not followed", receiver.Behaviour{Answer: receiver.Redirect}, CodeDestinationException, true, []string{"302"}},
		{"mismatched id", receiver.Behaviour{Answer: receiver.MismatchedID}, CodeInvalidResponse, true, []string{"requestId"}},
		{"not JSON", receiver.Behaviour{Answer: receiver.NotJSON}, CodeInvalidResponse, true, []string{"not the specification's JSON", "OK"}},
		{"hangup", receiver.Behaviour{Answer: receiver.Hangup}, CodeConnectionReset, true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := startReceiver(t, receiver.Config{})
			r.SetBehaviour(c.b)
			d := newDest(t, opts(r), "s", nil)
			wantCoded(t, deliver(t, d, batch("s", 0, "x")), c.code, c.retry, c.msgs...)
			if n := len(r.Deliveries()); n != 1 {
				t.Fatalf("%d requests reached the receiver, want 1 (no redirect followed, no retry inside Deliver)", n)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	d := newDest(t, opts(r), "s", nil)
	for _, c := range []struct {
		status int
		header string
		want   time.Duration
	}{
		{429, "7", 7 * time.Second},
		{503, "120", 2 * time.Minute},
		{500, "7", 0}, // only 429 and 503 ask to wait
		{429, "soon", 0},
	} {
		r.SetBehaviour(receiver.Behaviour{Answer: receiver.Fail, Status: c.status, RetryAfter: c.header})
		err := deliver(t, d, batch("s", 0, "x"))
		if got := pipeline.RetryAfter(err); got != c.want || !pipeline.IsRetryable(err) {
			t.Errorf("%d with Retry-After %q: after %v (retryable %v), want %v", c.status, c.header, got, pipeline.IsRetryable(err), c.want)
		}
	}
}

func TestResponseTooLarge(t *testing.T) {
	big := []byte(`{"requestId":"x","errorMessage":"` + strings.Repeat("e", MaxResponseBytes) + `"}`)
	wantCoded(t, classify(500, http.Header{}, big, "x", time.Now()), CodeResponseTooLarge, true)
	// The quoted body is bounded.
	err := classify(500, http.Header{}, big[:MaxResponseBytes], "x", time.Now())
	if n := len(err.Error()); n > MaxErrorMessage+200 {
		t.Fatalf("error message of %d bytes, want at most about %d", n, MaxErrorMessage)
	}
	if err := classify(200, http.Header{}, []byte(`{"requestId":"x","timestamp":"soon"}`), "x", time.Now()); err != nil {
		t.Fatalf("200 with the request's id: %v", err)
	}
	wantCoded(t, classify(200, http.Header{}, []byte(`{"timestamp":1}`), "x", time.Now()), CodeInvalidResponse, true, "without a requestId")
}

func TestRequestTimeout(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	r.SetBehaviour(receiver.Behaviour{Delay: time.Minute})
	o := opts(r)
	o.RequestTimeout = 50 * time.Millisecond
	d := newDest(t, o, "s", nil)
	wantCoded(t, deliver(t, d, batch("s", 0, "x")), CodeRequestTimeout, true, "request_timeout")
}

func TestConnectionRefusedAndReady(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	d := newDest(t, opts(r), "s", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Ready(ctx); err != nil {
		t.Fatalf("Ready with the receiver up: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := d.Ready(ctx); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Ready with the receiver stopped = %v, want unreachable", err)
	}
	wantCoded(t, deliver(t, d, batch("s", 0, "x")), CodeConnectionFailed, true, "refused")
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := d.Ready(ctx); err != nil {
		t.Fatalf("Ready after the receiver came back: %v", err)
	}
	if err := deliver(t, d, batch("s", 0, "x")); err != nil {
		t.Fatalf("Deliver after the receiver came back: %v", err)
	}
}

var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestIDs(t *testing.T) {
	base := pipeline.BatchID{First: 10, End: 20}
	id := RequestID("s", base)
	if !uuidShape.MatchString(id) {
		t.Fatalf("request id %q is not a version 8 (custom) UUID", id)
	}
	if RequestID("s", base) != id {
		t.Fatal("request id not stable")
	}
	seen := map[string]string{id: "base"}
	for name, other := range map[string]string{
		"part 1":       RequestID("s", pipeline.BatchID{First: 10, End: 20, Part: 1}),
		"part 2":       RequestID("s", pipeline.BatchID{First: 10, End: 20, Part: 2}),
		"round 1":      RequestID("s", pipeline.BatchID{First: 10, End: 20, Round: 1}),
		"next range":   RequestID("s", pipeline.BatchID{First: 20, End: 30}),
		"other stream": RequestID("t", base),
	} {
		if prev, dup := seen[other]; dup {
			t.Fatalf("%s has the request id of %s", name, prev)
		}
		seen[other] = name
	}
}

func TestEncodeBody(t *testing.T) {
	recs := batch("s", 0, "", "a", "ab", "abc", "abcd", "\x00\"\\\n\u2028", strings.Repeat("q", 100000)).Records
	body, err := buildBody("0c0ffee0-0000-5000-8000-000000000000", 1598556019164, recs, false)
	if err != nil {
		t.Fatal(err)
	}
	raw := body.r
	encoded := make([]byte, body.n)
	if _, err := raw.Read(encoded); err != nil {
		t.Fatal(err)
	}
	if len(encoded) != bodySize(recs, 13) {
		t.Fatalf("body of %d bytes, bodySize says %d", len(encoded), bodySize(recs, 13))
	}
	var parsed struct {
		RequestID string `json:"requestId"`
		Timestamp int64  `json:"timestamp"`
		Records   []struct {
			Data []byte `json:"data"`
		} `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(encoded))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&parsed); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if parsed.RequestID != "0c0ffee0-0000-5000-8000-000000000000" || parsed.Timestamp != 1598556019164 || len(parsed.Records) != len(recs) {
		t.Fatalf("parsed %+v", parsed)
	}
	for i := range recs {
		if !bytes.Equal(parsed.Records[i].Data, recs[i].Data) {
			t.Fatalf("record %d", i)
		}
	}
	_ = body.Close()
	_ = body.Close() // idempotent
}

// TestLimits: the worst case for MaxBytes (MaxRecords records whose sizes
// all pad base64, the longest timestamp) fits 64 MiB and a little more does
// not. (The receiver's own tests check that it answers 413 over 64 MiB.)
func TestLimits(t *testing.T) {
	d := &Destination{}
	if l := d.Limits(); l.MaxRecords != 10000 || l.MaxBytes != MaxBytes || MaxBytes != 50221574 {
		t.Fatalf("limits %+v, MaxBytes %d", l, MaxBytes)
	}
	worst := func(total int) []pipeline.Record {
		recs := make([]pipeline.Record, MaxRecords)
		size := total / MaxRecords
		size -= (size - 1) % 3 // ≡ 1 mod 3: two padding characters
		rest := total - size*MaxRecords
		for i := range recs {
			n := size
			if i == 0 {
				n += rest
			}
			recs[i].Data = make([]byte, n)
		}
		return recs
	}
	if n := bodySize(worst(MaxBytes), 20); n > MaxBodyBytes {
		t.Fatalf("worst-case body at MaxBytes: %d bytes > %d", n, MaxBodyBytes)
	}
	if n := bodySize(worst(MaxBytes+MaxRecords*3), 20); n <= MaxBodyBytes {
		t.Fatalf("MaxBytes is not tight: %d more record bytes still fit (%d)", MaxRecords*3, n)
	}

	// The encoder agrees, with a timestamp of 20 characters (the most an
	// int64 takes).
	body, err := buildBody(RequestID("s", pipeline.BatchID{}), math.MinInt64, worst(MaxBytes), false)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if body.n > MaxBodyBytes || body.n != bodySize(worst(MaxBytes), 20) {
		t.Fatalf("worst-case body encoded in %d bytes (bodySize %d), limit %d", body.n, bodySize(worst(MaxBytes), 20), MaxBodyBytes)
	}
}

func TestClosed(t *testing.T) {
	r := startReceiver(t, receiver.Config{})
	d := newDest(t, opts(r), "s", nil)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, d, batch("s", 0, "x")); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Deliver after Close = %v, want ErrClosed", err)
	}
	if len(r.Deliveries()) != 0 {
		t.Fatal("a closed destination sent a request")
	}
	if err := deliver(t, newDest(t, opts(r), "s", nil), pipeline.Batch{Stream: "s"}); err != nil || len(r.Deliveries()) != 0 {
		t.Fatalf("empty batch: %v, %d requests; want nil and none", err, len(r.Deliveries()))
	}
}

func TestMany(t *testing.T) {
	// Many batches through one destination and few connections: the
	// transport reuses its connections (the receiver counts requests, the
	// destination must not leak buffers between concurrent requests).
	r := startReceiver(t, receiver.Config{})
	d := newDest(t, opts(r), "s", nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var want []string
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				data := fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("x", (w*25+i)*37))
				if err := deliver(t, d, batch("s", pipeline.Position((w*25+i)*100000), data)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want = append(want, data)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var got []string
	for _, rec := range r.UniqueRecords() {
		got = append(got, string(rec))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("received %d records, want %d (or contents differ)", len(got), len(want))
	}
}

func TestProxyAddr(t *testing.T) {
	for in, want := range map[string]string{
		"http://proxy.internal":       "proxy.internal:80",
		"https://proxy.internal":      "proxy.internal:443",
		"http://proxy.internal:3128/": "proxy.internal:3128",
		"http://[::1]":                "[::1]:80",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := proxyAddr(u); got != want {
			t.Errorf("proxyAddr(%s) = %s, want %s", in, got, want)
		}
	}
}
