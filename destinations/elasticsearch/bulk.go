package elasticsearch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/destinations/internal/jsonscan"
	"github.com/sluice-dev/sluice/destinations/internal/retryafter"
	"github.com/sluice-dev/sluice/pipeline"
)

// Error codes (Firehose's OS.* delivery codes; per-document failures carry
// the HTTP status as their code and the cluster's error object as their
// message, as Firehose's failed-document records do) and the error output
// type of failed documents.
const (
	CodeConnectionFailed = "OS.ConnectionFailed"
	CodeRequestTimeout   = "OS.RequestTimeout"
	CodeAccessDenied     = "OS.AccessDenied"
	CodeResourceNotFound = "OS.ResourceNotFound"
	CodeServerError      = "OS.ServerError"
	CodeTooManyRequests  = "OS.TooManyRequests"
	CodeRequestTooLarge  = "OS.RequestEntityTooLarge"
	CodeBadRequest       = "OS.BadRequest"
	CodeInvalidResponse  = "OS.InvalidResponse"
	// CodeInvalidDocument: the record is not single-line UTF-8 JSON
	// object text; it is never sent.
	CodeInvalidDocument = "OS.InvalidDocument"
	// OutputType is the error output folder of failed documents.
	OutputType = "AmazonOpenSearchService-failed"
	// MaxResponseBytes bounds a bulk answer read into memory.
	MaxResponseBytes = 256 << 20
)

// doc is one record to index: its index in the batch, where it goes, and
// its id ("" with NO_DOCUMENT_ID).
type doc struct {
	rec   int
	index string
	id    string
}

// checkDocument reports why data cannot be a bulk document: Firehose
// sends records as they are, one per line, so they must be UTF-8 JSON
// object text on a single line. One pass decides (jsonscan.ValidLine);
// the separate tests only name what is wrong.
func checkDocument(data []byte) error {
	if jsonscan.ValidLine(data) {
		if data[jsonscan.SkipWS(data, 0)] != '{' {
			return fmt.Errorf("the record is JSON but not an object")
		}
		return nil
	}
	switch {
	case len(data) == 0:
		return fmt.Errorf("an empty record is not a JSON document")
	case !utf8.Valid(data):
		return fmt.Errorf("the record is not UTF-8")
	case bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0:
		return fmt.Errorf("the record spans several lines (bulk documents are one line each)")
	}
	return fmt.Errorf("the record is not valid JSON")
}

// appendBulk appends the NDJSON of docs to body: with document ids a
// create (a second create of the same id is a 409, which is success),
// without them an index. The action line up to the id is built once per
// index name.
func (d *Destination) appendBulk(body []byte, docs []doc, recs []pipeline.Record) ([]byte, error) {
	op := `{"index":{"_index":`
	if d.cfg.firehoseIDs {
		op = `{"create":{"_index":`
	}
	var index string
	var head []byte // op, the index name, and the type name for index
	for k, dc := range docs {
		if k == 0 || dc.index != index {
			index = dc.index
			head = appendJSONString(append(head[:0], op...), index)
			if d.cfg.typeName != "" {
				head = append(head, `,"_type":`...)
				head = appendJSONString(head, d.cfg.typeName)
			}
		}
		body = append(body, head...)
		if dc.id != "" {
			body = append(body, `,"_id":`...)
			body = appendJSONString(body, dc.id)
		}
		body = append(body, "}}\n"...)
		body = append(body, recs[dc.rec].Data...)
		body = append(body, '\n')
	}
	return body, nil
}

// appendJSONString appends s as a JSON string: index names, ids and type
// names are plain text, so the fast path copies; anything else goes
// through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	if !jsonscan.Plain(s) {
		b, _ := json.Marshal(s)
		return append(dst, b...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// bulkAnswer is the part of a bulk response Sluice reads.
type bulkAnswer struct {
	Errors *bool      `json:"errors"`
	Items  []bulkItem `json:"items"`
}

// bulkItem is one item of the answer: the action it answers, by name.
type bulkItem struct {
	Create *bulkItemState `json:"create"`
	Index  *bulkItemState `json:"index"`
	Update *bulkItemState `json:"update"`
	Delete *bulkItemState `json:"delete"`
}

type bulkItemState struct {
	Index  string          `json:"_index"`
	ID     string          `json:"_id"`
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

// allCreated is the fast path of reading a bulk answer: one that starts
// with "errors":false (every item succeeded, Elasticsearch's contract)
// and holds n items answering the action sent needs no per-item parse.
// It returns n successful items, or false to parse the answer in full.
func allCreated(data []byte, n int, create bool) ([]bulkItemState, bool) {
	head := data[:min(len(data), 64)]
	if !bytes.Contains(head, []byte(`"errors":false`)) || !jsonscan.Valid(data) {
		return nil, false
	}
	key := []byte(`{"index":`)
	if create {
		key = []byte(`{"create":`)
	}
	if bytes.Count(data, key) != n {
		return nil, false
	}
	items := make([]bulkItemState, n)
	for i := range items {
		items[i].Status = http.StatusCreated
	}
	return items, true
}

// errorType is an item error's "type".
func errorType(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "" // a success: no error object
	}
	var e struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(raw, &e)
	return e.Type
}

// requestFailure classifies a bulk request answered with status other
// than 200. now is when the answer came (for Retry-After dates).
func requestFailure(status int, h http.Header, body []byte, now time.Time) error {
	msg := fmt.Errorf("the cluster answered the bulk request %d: %s", status, quote(body))
	switch {
	case status == http.StatusTooManyRequests:
		return &pipeline.RetryableError{Err: coded(CodeTooManyRequests, msg), After: retryafter.Parse(h.Get("Retry-After"), now)}
	case status >= 500:
		return &pipeline.RetryableError{Err: coded(CodeServerError, msg), After: retryafter.Parse(h.Get("Retry-After"), now)}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &pipeline.RetryableError{Err: coded(CodeAccessDenied, msg)}
	case status == http.StatusNotFound:
		return &pipeline.RetryableError{Err: coded(CodeResourceNotFound, msg)}
	case status == http.StatusRequestTimeout:
		return &pipeline.RetryableError{Err: coded(CodeRequestTimeout, msg)}
	case status == http.StatusRequestEntityTooLarge:
		return coded(CodeRequestTooLarge, msg) // lower max_bulk_bytes; retrying cannot help
	case status >= 300 && status < 400:
		return &pipeline.RetryableError{Err: coded(CodeInvalidResponse, msg)}
	}
	return coded(CodeBadRequest, msg)
}

func coded(code string, err error) *pipeline.CodedError {
	return &pipeline.CodedError{Code: code, OutputType: OutputType, Err: err}
}

// itemRetryable reports whether a failed item may succeed if sent again:
// the cluster was too busy (429, es_rejected_execution_exception) or
// failed (5xx).
func itemRetryable(status int, typ string) bool {
	return status == http.StatusTooManyRequests || status >= 500 || typ == "es_rejected_execution_exception"
}

// quote renders a cluster's answer for an error message: at most 8 KiB.
func quote(b []byte) string {
	const max = 8192
	if len(b) == 0 {
		return "(empty body)"
	}
	if len(b) > max {
		return string(bytes.ToValidUTF8(b[:max], []byte("\uFFFD"))) + "…"
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

// statusLabel is a status as a metric label.
func statusLabel(status int) string { return strconv.Itoa(status) }
