package esbulk

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxBodyBytes is Elasticsearch's default http.max_content_length (100mb):
// a larger request body, before or after gzip, is answered 413.
const MaxBodyBytes = 100 << 20

// Versions answered by GET /.
const (
	ElasticsearchVersion = "8.15.0"
	OpenSearchVersion    = "2.15.0"
)

// Config configures a Server.
type Config struct {
	// OpenSearch makes the server answer like OpenSearch 2.x: no
	// X-Elastic-Product header, GET / with "distribution":"opensearch",
	// and mapper_parsing_exception where ES 8 says
	// document_parsing_exception.
	OpenSearch bool
	// NoAutoCreateIndex turns off the creation of an index on its first
	// write (action.auto_create_index: false): a write to an index that
	// does not exist fails with 404 index_not_found_exception. Indices can
	// be made with Server.CreateIndex.
	NoAutoCreateIndex bool
	// ReadOnlyIndices are created at start with the write block set:
	// writes to them fail with 403 cluster_block_exception.
	ReadOnlyIndices []string
	// TLS, when set, makes the server listen with it (https URLs); with
	// ClientAuth set it demands a client certificate, as a cluster with
	// xpack.security.http.ssl.client_authentication: required does.
	TLS *tls.Config
	// Authorization, when not empty, lists the Authorization header values
	// the server accepts ("Basic ...", "ApiKey ...", "Bearer ..."); any
	// other request is answered 401 security_exception, as a secured
	// cluster answers.
	Authorization []string
}

// DropMode says whether a dropped request is processed before its
// connection is cut.
type DropMode int

const (
	// DropBeforeProcessing reads the body, stores nothing, writes part of a
	// status line and headers, and closes the connection.
	DropBeforeProcessing DropMode = iota
	// DropAfterProcessing reads and processes the body (the documents are
	// stored), writes the answer's headers and half its body, and closes
	// the connection.
	DropAfterProcessing
)

// Bodies for NonBulkAnswer.
const (
	HTMLBody        = "<html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>\n"
	EmptyObjectBody = "{}"
)

// RequestRecord is one bulk request the server saw.
type RequestRecord struct {
	Time     time.Time
	Method   string
	Path     string // with the query
	Bytes    int    // body bytes as received (compressed when Gzip)
	Gzip     bool
	Items    int    // actions parsed (0 when the body did not parse)
	Failed   int    // items answered with an error
	Injected int    // of which by the FailItems hook
	Status   int    // HTTP status answered (0 when the connection was cut)
	Fault    string // "", "fail-requests", "storm", "non-bulk", "drop-before", "drop-after"
}

// Server is a running fake Elasticsearch. Its methods are safe for
// concurrent use.
type Server struct {
	cfg Config
	hs  *httptest.Server

	mu       sync.Mutex
	indices  map[string]*index
	attempts map[docKey]int
	writes   map[docKey]int
	requests []RequestRecord

	hook        func(index, id string, source []byte, attempt int) *ItemError
	failN       int
	failStatus  int
	failBody    string
	failRetry   string
	stormUntil  time.Time
	stormStatus int
	dropN       int
	dropMode    DropMode
	slow        time.Duration
	nonBulkN    int
	nonBulkBody string
}

type docKey struct{ index, id string }

// Start starts a server on 127.0.0.1 with a free port.
func Start(cfg Config) (*Server, error) {
	s := &Server{
		cfg:      cfg,
		indices:  map[string]*index{},
		attempts: map[docKey]int{},
		writes:   map[docKey]int{},
	}
	for _, name := range cfg.ReadOnlyIndices {
		if reason := invalidIndexName(name); reason != "" {
			return nil, fmt.Errorf("esbulk: read-only index: %s", reason)
		}
		s.indices[name] = newIndex(true)
	}
	if cfg.TLS != nil {
		s.hs = httptest.NewUnstartedServer(s)
		s.hs.TLS = cfg.TLS.Clone()
		s.hs.StartTLS()
	} else {
		s.hs = httptest.NewServer(s)
	}
	return s, nil
}

// URL is the server's base URL, without a trailing slash.
func (s *Server) URL() string { return s.hs.URL }

// Close stops the server and closes its connections.
func (s *Server) Close() error {
	s.hs.CloseClientConnections()
	s.hs.Close()
	return nil
}

// CreateIndex makes an empty index if it does not exist (for
// NoAutoCreateIndex).
func (s *Server) CreateIndex(name string) error {
	if reason := invalidIndexName(name); reason != "" {
		return fmt.Errorf("esbulk: create index: %s", reason)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indices[name] == nil {
		s.indices[name] = newIndex(false)
	}
	return nil
}

// SetReadOnly sets or clears an index's write block (index.blocks.write),
// creating the index if needed.
func (s *Server) SetReadOnly(name string, readOnly bool) error {
	if err := s.CreateIndex(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.indices[name].readOnly = readOnly
	return nil
}

// FailItems sets the hook that decides, for every index, create and update
// item, whether it fails: a non-nil *ItemError fails it with that error
// (nothing is stored). attempt counts how many times the id was seen in
// that index, this one included (1 on the first). The hook runs without the
// server's lock, possibly from several requests at once: it must be safe
// for concurrent use. nil removes it.
func (s *Server) FailItems(hook func(index, id string, source []byte, attempt int) *ItemError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

// FailRequests answers the next n bulk requests with status and body
// (processing nothing); an empty body is replaced by Elasticsearch's error
// for that status (es_rejected_execution_exception for 429...). A non-empty
// retryAfter is sent as Retry-After.
func (s *Server) FailRequests(n, status int, body, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus, s.failBody, s.failRetry = n, status, body, retryAfter
}

// Storm answers every bulk request with status (and Elasticsearch's error
// body for it) for d from now, processing nothing.
func (s *Server) Storm(d time.Duration, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stormUntil, s.stormStatus = time.Now().Add(d), status
}

// DropConnection cuts the connection of the next n bulk requests
// mid-answer, after processing them or not (mode).
func (s *Server) DropConnection(n int, mode DropMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropN, s.dropMode = n, mode
}

// Slow delays every bulk answer by d, after the request was processed (the
// documents are stored even when the client gives up waiting). 0 stops it.
func (s *Server) Slow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slow = d
}

// NonBulkAnswer answers the next n bulk requests 200 with body (HTMLBody
// when empty, as text/html; EmptyObjectBody or any JSON as
// application/json), processing nothing.
func (s *Server) NonBulkAnswer(n int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonBulkN, s.nonBulkBody = n, body
}

// ClearFaults removes every fault and the hook.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = nil
	s.failN, s.stormUntil, s.dropN, s.slow, s.nonBulkN = 0, time.Time{}, 0, 0, 0
}

// Requests returns every bulk request seen, in order.
func (s *Server) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Docs returns a copy of the live documents of index: id → source as sent
// (after partial updates, the merged document re-encoded).
func (s *Server) Docs(indexName string) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	if ix := s.indices[indexName]; ix != nil {
		for id, d := range ix.docs {
			if !d.deleted {
				out[id] = slices.Clone(d.source)
			}
		}
	}
	return out
}

// Document is a stored document with its metadata.
type Document struct {
	Source   []byte
	Version  int64
	SeqNo    int64
	Routing  string
	Pipeline string // the pipeline named by the item or the request
}

// Doc returns one live document.
func (s *Server) Doc(indexName, id string) (Document, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[indexName]
	if ix == nil || ix.docs[id] == nil || ix.docs[id].deleted {
		return Document{}, false
	}
	d := ix.docs[id]
	return Document{Source: slices.Clone(d.source), Version: d.version, SeqNo: d.seqNo, Routing: d.routing, Pipeline: d.pipeline}, true
}

// Count returns the number of live documents in all indices.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ix := range s.indices {
		n += ix.live()
	}
	return n
}

// Indices returns the names of the existing indices, sorted.
func (s *Server) Indices() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.indices))
	for name := range s.indices {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Writes returns how many times the document id of index was written
// successfully (index, create, an update that changed it, delete).
func (s *Server) Writes(indexName, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[docKey{indexName, id}]
}

// Attempts returns how many items named id in index were seen, failed ones
// included.
func (s *Server) Attempts(indexName, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[docKey{indexName, id}]
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.OpenSearch {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	if len(s.cfg.Authorization) > 0 && !slices.ContainsFunc(s.cfg.Authorization, func(a string) bool { return sameCredentials(a, r.Header.Get("Authorization")) }) {
		s.unauthorized(w, r)
		return
	}
	path := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(path, "/")
	switch {
	case path == "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		s.info(w, r)
	case path == "_esbulk/state" || path == "_esbulk/faults":
		s.control(w, r, path)
	case path == "_bulk" || (len(parts) == 2 && parts[1] == "_bulk"):
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			s.methodNotAllowed(w, r, "POST, PUT")
			return
		}
		defaultIndex := ""
		if len(parts) == 2 {
			defaultIndex = parts[0]
		}
		s.bulk(w, r, defaultIndex)
	default:
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error":  fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.RequestURI(), r.Method),
			"status": http.StatusBadRequest,
		})
	}
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed string) {
	w.Header().Set("Allow", allowed)
	writeJSON(w, http.StatusMethodNotAllowed, map[string]any{
		"error":  fmt.Sprintf("Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]", r.URL.RequestURI(), r.Method, allowed),
		"status": http.StatusMethodNotAllowed,
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if s.cfg.OpenSearch {
		body = map[string]any{
			"name": "esbulk", "cluster_name": "esbulk", "cluster_uuid": "esbulk-cluster-uuid",
			"version": map[string]any{
				"distribution": "opensearch", "number": OpenSearchVersion, "build_type": "tar",
				"build_hash": "esbulk", "build_date": "2024-06-20T03:26:49.193630411Z", "build_snapshot": false,
				"lucene_version": "9.10.0", "minimum_wire_compatibility_version": "7.10.0",
				"minimum_index_compatibility_version": "7.0.0",
			},
			"tagline": "The OpenSearch Project: https://opensearch.org/",
		}
	} else {
		body = map[string]any{
			"name": "esbulk", "cluster_name": "esbulk", "cluster_uuid": "esbulk-cluster-uuid",
			"version": map[string]any{
				"number": ElasticsearchVersion, "build_flavor": "default", "build_type": "docker",
				"build_hash": "esbulk", "build_date": "2024-08-05T10:05:34.233336849Z", "build_snapshot": false,
				"lucene_version": "9.11.1", "minimum_wire_compatibility_version": "7.17.0",
				"minimum_index_compatibility_version": "7.0.0",
			},
			"tagline": "You Know, for Search",
		}
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// bulk handles one bulk request: read, decode, parse, faults, process,
// answer.
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, defaultIndex string) {
	start := time.Now()
	rec := RequestRecord{Time: start, Method: r.Method, Path: r.URL.RequestURI()}
	// The record is kept before a connection is cut, so a client that
	// sees the cut and sends its next request finds them in order.
	recorded := false
	keep := func() {
		if !recorded {
			recorded = true
			s.mu.Lock()
			s.requests = append(s.requests, rec)
			s.mu.Unlock()
		}
	}
	defer keep()

	raw, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	rec.Bytes = len(raw)
	if err != nil {
		rec.Status = http.StatusBadRequest
		writeError(w, rec.Status, "parse_exception", "failed to read the request body: "+err.Error(), "")
		return
	}
	if len(raw) > MaxBodyBytes {
		rec.Status = http.StatusRequestEntityTooLarge
		w.WriteHeader(rec.Status)
		return
	}
	body := raw
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		rec.Gzip = true
		if body, err = gunzip(raw); err != nil {
			rec.Status = http.StatusBadRequest
			writeError(w, rec.Status, "parse_exception", "failed to decompress the gzip request body: "+err.Error(), "")
			return
		}
	}
	if ct := r.Header.Get("Content-Type"); !acceptedContentType(ct) {
		rec.Status = http.StatusNotAcceptable
		writeJSON(w, rec.Status, map[string]any{
			"error":  fmt.Sprintf("Content-Type header [%s] is not supported", ct),
			"status": rec.Status,
		})
		return
	}
	q := r.URL.Query()
	ops, perr := parseBulk(body, defaultIndex, q.Get("pipeline"), q.Get("routing"))
	rec.Items = len(ops)

	if fault, ok := s.wholeRequestFault(); ok {
		rec.Fault, rec.Status = fault.name, fault.status
		switch {
		case fault.name == "non-bulk":
			contentType := "application/json"
			if strings.HasPrefix(strings.TrimSpace(fault.body), "<") {
				contentType = "text/html; charset=utf-8"
			}
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, fault.body)
		case fault.body != "":
			if fault.retryAfter != "" {
				w.Header().Set("Retry-After", fault.retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(fault.status)
			_, _ = io.WriteString(w, fault.body)
		default:
			writeStatusError(w, fault.status, fault.retryAfter)
		}
		return
	}

	drop, mode := s.takeDrop()
	if drop && mode == DropBeforeProcessing {
		rec.Fault = "drop-before"
		keep()
		cut(w, []byte("HTTP/1.1 200 OK\r\nContent-Type: appl"))
		return
	}

	var answer []byte
	status := http.StatusOK
	if perr != nil {
		status = perr.status
		answer = errorBody(perr.status, perr.typ, perr.reason, "")
	} else {
		resp := s.process(ops, &rec)
		resp.Took = time.Since(start).Milliseconds()
		answer, _ = json.Marshal(resp)
	}
	if drop {
		rec.Fault = "drop-after"
		keep()
		head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", status, http.StatusText(status), len(answer))
		if !s.cfg.OpenSearch {
			head += "X-Elastic-Product: Elasticsearch\r\n"
		}
		cut(w, append([]byte(head+"\r\n"), answer[:len(answer)/2]...))
		return
	}
	if d := s.slowness(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client gave up; rec.Status stays 0
		}
	}
	rec.Status = status
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

type wholeFault struct {
	name, body, retryAfter string
	status                 int
}

func (s *Server) wholeRequestFault() (wholeFault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case time.Now().Before(s.stormUntil):
		return wholeFault{name: "storm", status: s.stormStatus}, true
	case s.failN > 0:
		s.failN--
		return wholeFault{name: "fail-requests", status: s.failStatus, body: s.failBody, retryAfter: s.failRetry}, true
	case s.nonBulkN > 0:
		s.nonBulkN--
		body := s.nonBulkBody
		if body == "" {
			body = HTMLBody
		}
		return wholeFault{name: "non-bulk", status: http.StatusOK, body: body}, true
	}
	return wholeFault{}, false
}

func (s *Server) takeDrop() (bool, DropMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropN > 0 {
		s.dropN--
		return true, s.dropMode
	}
	return false, 0
}

func (s *Server) slowness() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slow
}

// cut writes partial bytes on the raw connection and closes it.
func cut(w http.ResponseWriter, partial []byte) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // no hijacking (HTTP/2): abort the stream
	}
	_, _ = buf.Write(partial)
	_ = buf.Flush()
	_ = conn.Close()
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip header: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("gzip stream: %w", err)
	}
	if len(out) > MaxBodyBytes {
		return nil, errors.New("decompressed body over 100mb")
	}
	return out, nil
}

func acceptedContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-ndjson", "application/json",
		"application/vnd.elasticsearch+x-ndjson", "application/vnd.elasticsearch+json":
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"esbulk: encoding the answer failed","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorBody is Elasticsearch's whole-request error document.
func errorBody(status int, typ, reason, indexName string) []byte {
	cause := map[string]any{"type": typ, "reason": reason}
	if indexName != "" {
		cause["index"] = indexName
	}
	b, _ := json.Marshal(map[string]any{
		"error":  map[string]any{"root_cause": []any{cause}, "type": typ, "reason": reason},
		"status": status,
	})
	return b
}

// sameCredentials compares Authorization values: the scheme without regard
// to case (RFC 9110 §11.1; the Go clients send "APIKey", Elasticsearch
// documents "ApiKey"), the credentials exactly.
func sameCredentials(want, got string) bool {
	ws, wc, _ := strings.Cut(want, " ")
	gs, gc, _ := strings.Cut(got, " ")
	return strings.EqualFold(ws, gs) && wc == gc
}

// unauthorized answers a request without accepted credentials as a
// secured Elasticsearch does.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	reason := fmt.Sprintf("missing authentication credentials for REST request [%s]", r.URL.RequestURI())
	if r.Header.Get("Authorization") != "" {
		reason = "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8"`)
	w.Header().Add("WWW-Authenticate", "ApiKey")
	w.Header().Add("WWW-Authenticate", "Bearer realm=\"security\"")
	writeError(w, http.StatusUnauthorized, "security_exception", reason, "")
}

func writeError(w http.ResponseWriter, status int, typ, reason, indexName string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(status, typ, reason, indexName))
}

// writeStatusError writes what a cluster (or the proxy before it) answers
// with status.
func writeStatusError(w http.ResponseWriter, status int, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	switch status {
	case http.StatusTooManyRequests:
		writeError(w, status, "es_rejected_execution_exception",
			"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1048576, max_coordinating_and_primary_bytes=1024]", "")
	case http.StatusServiceUnavailable:
		writeError(w, status, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];", "")
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", status, http.StatusText(status))
	default:
		writeError(w, status, "exception", "esbulk injected failure: "+http.StatusText(status), "")
	}
}
