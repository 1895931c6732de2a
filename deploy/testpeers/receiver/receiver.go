// Package receiver is an HTTP endpoint written from Firehose's "HTTP
// endpoint delivery request and response specifications" (the contract in
// ../shared/firehose-contract.md §4.8), independently of Sluice's sender,
// for tests and benchmarks of anything that delivers to HTTP endpoints.
//
// It checks every request the way the specification describes it: method
// POST, Content-Type application/json, X-Amz-Firehose-Protocol-Version 1.0,
// a body (gzip when Content-Encoding is gzip) of at most 64 MiB holding
// {"requestId", "timestamp", "records": [{"data": <base64>}, ...]} with
// 1 to 10000 records, a requestId equal to the X-Amz-Firehose-Request-Id
// header, a timestamp that is a number or a string, every record's data
// valid base64, X-Amz-Firehose-Common-Attributes (when present) of the
// form {"commonAttributes": {name: value}}, and X-Amz-Firehose-Access-Key
// when Config.AccessKey is set. A conforming request is answered 200 with
// {"requestId", "timestamp"} and Content-Type application/json; a body over
// 64 MiB is answered 413, any other problem 400 (401 for a wrong access
// key), each with an errorMessage.
//
// Every request is recorded (Deliveries) with its headers, its decoded
// records and whether its request id was seen before. SetBehaviour makes it
// misbehave the ways real endpoints do: slow answers, failures with any
// status (500, 429 with Retry-After, 413, 201, 204...), redirects,
// mismatched request ids, bodies that are not JSON, connections dropped
// without an answer; Stop and Restart take it off the network and back.
//
// GET /stats answers the counters (Stats) as JSON, for scripts. The package
// imports nothing of Sluice.
package receiver

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits of the specification.
const (
	// MaxBodyBytes is the most a request body may hold before
	// compression.
	MaxBodyBytes = 64 << 20
	// MaxRecords is the most records a request may hold.
	MaxRecords = 10000
	// ProtocolVersion is the only X-Amz-Firehose-Protocol-Version.
	ProtocolVersion = "1.0"
)

// Header names of the specification.
const (
	HeaderProtocolVersion  = "X-Amz-Firehose-Protocol-Version"
	HeaderRequestID        = "X-Amz-Firehose-Request-Id"
	HeaderSourceARN        = "X-Amz-Firehose-Source-Arn"
	HeaderAccessKey        = "X-Amz-Firehose-Access-Key"
	HeaderCommonAttributes = "X-Amz-Firehose-Common-Attributes"
)

// Config configures a Receiver.
type Config struct {
	// Addr is the listen address; default "127.0.0.1:0" (a free port).
	Addr string
	// AccessKey, when set, must be the request's X-Amz-Firehose-Access-Key
	// (401 otherwise).
	AccessKey string
	// CountOnly keeps the counters (Stats) but neither deliveries nor
	// records, for long benchmarks.
	CountOnly bool
	// MaxRecords is the most records accepted per request: 0 means the
	// specification's MaxRecords, a negative value no limit (for suites
	// that hand a sender larger batches than its limits).
	MaxRecords int
}

// Answer is how the receiver answers a request.
type Answer int

// Answers.
const (
	// Accept validates the request and answers 200 with the matching
	// requestId (the default). An invalid request is still rejected.
	Accept Answer = iota
	// Fail answers Behaviour.Status (500 when zero) with
	// {"requestId", "timestamp", "errorMessage"} (no body for 204).
	Fail
	// Redirect answers 302 Found to <URL>redirected.
	Redirect
	// MismatchedID answers 200 with a requestId other than the request's.
	MismatchedID
	// NotJSON answers 200 with a text/plain body.
	NotJSON
	// Hangup closes the connection without answering.
	Hangup
)

// Behaviour is how the receiver answers the next requests.
type Behaviour struct {
	Answer Answer
	// Status is the status of Fail answers; 0 means 500.
	Status int
	// ErrorMessage is the errorMessage of Fail answers; default a
	// description of the status.
	ErrorMessage string
	// RetryAfter, when set, is sent as the Retry-After header of Fail
	// answers.
	RetryAfter string
	// Times is how many requests get Answer, after which the receiver
	// accepts again; 0 means every request until the next SetBehaviour.
	Times int
	// Delay is waited before answering every request (also after Times
	// runs out), or until the client goes away.
	Delay time.Duration
}

// Delivery is one request the receiver got.
type Delivery struct {
	// RequestID is the X-Amz-Firehose-Request-Id header.
	RequestID string
	// Header is the request's headers.
	Header http.Header
	// Timestamp is the body's timestamp as sent (a JSON number or string).
	Timestamp json.RawMessage
	// Records are the decoded data of the body's records.
	Records [][]byte
	// CommonAttributes are the decoded X-Amz-Firehose-Common-Attributes
	// (nil when the header is absent).
	CommonAttributes map[string]string
	// Repeat is true when a request with the same id came before.
	Repeat bool
	// Status is the status answered (0 for Hangup).
	Status int
	// Problem says why the request does not conform ("" when it does).
	Problem string
	// Accepted is true when the request conformed and was answered 200
	// with its own requestId: the sender has delivered it.
	Accepted bool
}

// Stats are the receiver's counters.
type Stats struct {
	Requests int64 `json:"requests"`
	// Accepted counts the accepted requests and Records their records,
	// repeats included; UniqueRecords counts the records of the first
	// accepted request of each request id.
	Accepted      int64 `json:"accepted"`
	Records       int64 `json:"records"`
	UniqueRecords int64 `json:"uniqueRecords"`
	// Bytes is the decoded record bytes of the accepted requests.
	Bytes int64 `json:"bytes"`
	// Rejected counts the requests that did not conform.
	Rejected int64 `json:"rejected"`
}

// Receiver is a running HTTP endpoint.
type Receiver struct {
	cfg Config

	mu         sync.Mutex
	addr       string
	srv        *http.Server
	behaviour  Behaviour
	left       int // requests left for behaviour.Answer when Times > 0
	seen       map[string]bool
	accepted   map[string]bool
	deliveries []Delivery
	stats      Stats
	serving    sync.WaitGroup
}

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Receiver, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = MaxRecords
	}
	r := &Receiver{cfg: cfg, seen: map[string]bool{}, accepted: map[string]bool{}}
	if err := r.listen(cfg.Addr); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Receiver) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("receiver: listen: %w", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.addr = l.Addr().String()
	r.srv = srv
	r.mu.Unlock()
	r.serving.Go(func() { _ = srv.Serve(l) })
	return nil
}

// Addr is the host:port the receiver listens on.
func (r *Receiver) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// URL is the endpoint's URL, "http://<addr>/".
func (r *Receiver) URL() string { return "http://" + r.Addr() + "/" }

// SetBehaviour changes how the next requests are answered.
func (r *Receiver) SetBehaviour(b Behaviour) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.behaviour, r.left = b, b.Times
}

// Stop stops listening and cuts open connections; Restart listens again
// on the same address. Recorded deliveries are kept.
func (r *Receiver) Stop() error {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	r.serving.Wait()
	return err
}

// Restart listens again on the address of before Stop.
func (r *Receiver) Restart() error {
	r.mu.Lock()
	running := r.srv != nil
	r.mu.Unlock()
	if running {
		return errors.New("receiver: Restart while running")
	}
	return r.listen(r.Addr())
}

// Close stops the receiver for good.
func (r *Receiver) Close() error { return r.Stop() }

// Deliveries returns every request received so far, in arrival order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Records returns the records of every accepted request in arrival order,
// repeats of a request id included.
func (r *Receiver) Records() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]byte
	for _, d := range r.deliveries {
		if d.Accepted {
			out = append(out, d.Records...)
		}
	}
	return out
}

// UniqueRecords returns the records of the first accepted request of each
// request id: what an endpoint that deduplicates on the id (as the
// specification suggests) stores.
func (r *Receiver) UniqueRecords() [][]byte {
	var out [][]byte
	for _, d := range r.UniqueDeliveries() {
		out = append(out, d.Records...)
	}
	return out
}

// UniqueDeliveries returns the first accepted request of each request id.
func (r *Receiver) UniqueDeliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Delivery
	first := map[string]bool{}
	for _, d := range r.deliveries {
		if d.Accepted && !first[d.RequestID] {
			first[d.RequestID] = true
			out = append(out, d)
		}
	}
	return out
}

// Stats returns the counters.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// next returns the answer for the request about to be handled.
func (r *Receiver) next() Behaviour {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.behaviour
	if b.Times > 0 {
		if r.left == 0 {
			b.Answer = Accept
		} else {
			r.left--
		}
	}
	return b
}

// ServeHTTP handles one request.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet && req.URL.Path == "/stats" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Stats())
		return
	}
	b := r.next()
	if b.Delay > 0 {
		t := time.NewTimer(b.Delay)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
		}
	}
	d, status, problem := r.parse(req)
	d.Problem = problem
	msg := ""
	switch {
	case problem != "":
		d.Status, msg = status, problem
	case b.Answer == Fail:
		d.Status, msg = b.Status, b.ErrorMessage
		if d.Status == 0 {
			d.Status = http.StatusInternalServerError
		}
		if msg == "" {
			msg = http.StatusText(d.Status)
		}
	case b.Answer == Redirect:
		d.Status = http.StatusFound
	case b.Answer == MismatchedID, b.Answer == NotJSON:
		d.Status = http.StatusOK
	case b.Answer == Hangup:
	default:
		d.Status, d.Accepted = http.StatusOK, true
	}
	// Recorded before answering: once the sender has its answer, the
	// delivery is visible.
	r.record(d)
	switch {
	case problem != "":
		writeJSON(w, d.Status, d.RequestID, msg, "")
	case b.Answer == Fail:
		writeJSON(w, d.Status, d.RequestID, msg, b.RetryAfter)
	case b.Answer == Redirect:
		w.Header().Set("Location", "/redirected")
		w.WriteHeader(http.StatusFound)
	case b.Answer == MismatchedID:
		writeJSON(w, http.StatusOK, d.RequestID+"-other", "", "")
	case b.Answer == NotJSON:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "OK")
	case b.Answer == Hangup:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
			}
		}
	default:
		writeJSON(w, http.StatusOK, d.RequestID, "", "")
	}
}

// record stores d and counts it.
func (r *Receiver) record(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d.Repeat = r.seen[d.RequestID]
	r.seen[d.RequestID] = true
	r.stats.Requests++
	if d.Problem != "" {
		r.stats.Rejected++
	}
	if d.Accepted {
		r.stats.Accepted++
		r.stats.Records += int64(len(d.Records))
		for _, rec := range d.Records {
			r.stats.Bytes += int64(len(rec))
		}
		if !r.accepted[d.RequestID] {
			r.accepted[d.RequestID] = true
			r.stats.UniqueRecords += int64(len(d.Records))
		}
	}
	if r.cfg.CountOnly {
		return
	}
	r.deliveries = append(r.deliveries, d)
}

// body is the request body of the specification.
type body struct {
	RequestID *string         `json:"requestId"`
	Timestamp json.RawMessage `json:"timestamp"`
	Records   []struct {
		Data *string `json:"data"`
	} `json:"records"`
}

// parse reads and checks req. It returns the delivery, and for a
// non-conforming request the status to answer and the problem.
func (r *Receiver) parse(req *http.Request) (Delivery, int, string) {
	d := Delivery{RequestID: req.Header.Get(HeaderRequestID), Header: req.Header.Clone()}
	bad := func(format string, args ...any) (Delivery, int, string) {
		return d, http.StatusBadRequest, fmt.Sprintf(format, args...)
	}
	if req.Method != http.MethodPost {
		return d, http.StatusMethodNotAllowed, "method " + req.Method + ", want POST"
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return bad("Content-Type %q, want application/json", req.Header.Get("Content-Type"))
	}
	if v := req.Header.Get(HeaderProtocolVersion); v != ProtocolVersion {
		return bad("%s %q, want %s", HeaderProtocolVersion, v, ProtocolVersion)
	}
	if d.RequestID == "" {
		return bad("missing %s", HeaderRequestID)
	}
	if req.Header.Get(HeaderSourceARN) == "" {
		return bad("missing %s", HeaderSourceARN)
	}
	if r.cfg.AccessKey != "" && req.Header.Get(HeaderAccessKey) != r.cfg.AccessKey {
		return d, http.StatusUnauthorized, "wrong or missing " + HeaderAccessKey
	}
	if v, ok := req.Header[HeaderCommonAttributes]; ok {
		var ca struct {
			CommonAttributes map[string]string `json:"commonAttributes"`
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(v[0])))
		dec.DisallowUnknownFields()
		if len(v) != 1 || dec.Decode(&ca) != nil || ca.CommonAttributes == nil {
			return bad("%s %q is not {\"commonAttributes\": {name: value}}", HeaderCommonAttributes, v)
		}
		d.CommonAttributes = ca.CommonAttributes
	}
	var in io.Reader = req.Body
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return bad("Content-Encoding gzip: %v", err)
		}
		defer zr.Close()
		in = zr
	default:
		return bad("Content-Encoding %q, want gzip or none", enc)
	}
	var buf bytes.Buffer
	if n := req.ContentLength; n > 0 && in == req.Body {
		buf.Grow(int(min(n, MaxBodyBytes) + 1))
	}
	_, err := buf.ReadFrom(io.LimitReader(in, MaxBodyBytes+1))
	raw := buf.Bytes()
	if err != nil {
		return bad("reading the body: %v", err)
	}
	if len(raw) > MaxBodyBytes {
		return d, http.StatusRequestEntityTooLarge, "body exceeds 64 MiB"
	}
	var bd body
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bd); err != nil {
		return bad("body is not the specification's JSON: %v", err)
	}
	if dec.More() {
		return bad("body holds more than one JSON value")
	}
	switch {
	case bd.RequestID == nil:
		return bad("body has no requestId")
	case *bd.RequestID != d.RequestID:
		return bad("body requestId %q differs from %s %q", *bd.RequestID, HeaderRequestID, d.RequestID)
	}
	if p := checkTimestamp(bd.Timestamp); p != "" {
		return bad("%s", p)
	}
	d.Timestamp = bd.Timestamp
	if len(bd.Records) == 0 {
		return bad("body has no records")
	}
	if r.cfg.MaxRecords > 0 && len(bd.Records) > r.cfg.MaxRecords {
		return bad("%d records, at most %d", len(bd.Records), r.cfg.MaxRecords)
	}
	d.Records = make([][]byte, len(bd.Records))
	for i, rec := range bd.Records {
		if rec.Data == nil {
			return bad("records[%d] has no data", i)
		}
		data, err := base64.StdEncoding.DecodeString(*rec.Data)
		if err != nil {
			return bad("records[%d].data is not base64: %v", i, err)
		}
		d.Records[i] = data
	}
	return d, 0, ""
}

// checkTimestamp accepts an integer JSON number (epoch milliseconds) or a
// non-empty string.
func checkTimestamp(ts json.RawMessage) string {
	if len(ts) == 0 || string(ts) == "null" {
		return "body has no timestamp"
	}
	if ts[0] == '"' {
		var s string
		if json.Unmarshal(ts, &s) != nil || s == "" {
			return fmt.Sprintf("timestamp %s is an empty or invalid string", ts)
		}
		return ""
	}
	if _, err := strconv.ParseInt(string(ts), 10, 64); err != nil {
		return fmt.Sprintf("timestamp %s is neither epoch milliseconds nor a string", ts)
	}
	return ""
}

// writeJSON answers the specification's response body; errorMessage only
// on failures, no body at all for 204.
func writeJSON(w http.ResponseWriter, status int, requestID, errorMessage, retryAfter string) {
	h := w.Header()
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	resp := struct {
		RequestID    string `json:"requestId"`
		Timestamp    int64  `json:"timestamp"`
		ErrorMessage string `json:"errorMessage,omitempty"`
	}{requestID, time.Now().UnixMilli(), errorMessage}
	out, _ := json.Marshal(resp)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	_, _ = w.Write(out)
}
