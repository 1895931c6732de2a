package esbulk

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// ItemError is a per-item failure, as answered in a bulk item's "error".
type ItemError struct {
	Status   int    // HTTP status of the item: 400, 404, 409, 429, 500...
	Type     string // e.g. "es_rejected_execution_exception"
	Reason   string
	CausedBy *Cause // optional
}

// Cause is an error's "caused_by".
type Cause struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// RejectedExecution is the 429 a node under pressure answers for an item.
func RejectedExecution() *ItemError {
	return &ItemError{
		Status: http.StatusTooManyRequests,
		Type:   "es_rejected_execution_exception",
		Reason: "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=1024, max_coordinating_and_primary_bytes=1024]",
	}
}

// MapperParsing is the 400 for a document that does not fit its mapping.
func MapperParsing(reason string) *ItemError {
	return &ItemError{
		Status:   http.StatusBadRequest,
		Type:     "mapper_parsing_exception",
		Reason:   reason,
		CausedBy: &Cause{Type: "illegal_argument_exception", Reason: reason},
	}
}

// DocumentParsing is ES 8.x's 400 for a document that cannot be parsed or
// mapped.
func DocumentParsing(reason string) *ItemError {
	return &ItemError{
		Status:   http.StatusBadRequest,
		Type:     "document_parsing_exception",
		Reason:   reason,
		CausedBy: &Cause{Type: "illegal_argument_exception", Reason: reason},
	}
}

type index struct {
	docs     map[string]*doc
	nextSeq  int64
	readOnly bool
	uuid     string
}

func newIndex(readOnly bool) *index {
	return &index{docs: map[string]*doc{}, readOnly: readOnly, uuid: newID()}
}

func (ix *index) live() int {
	n := 0
	for _, d := range ix.docs {
		if !d.deleted {
			n++
		}
	}
	return n
}

type doc struct {
	source            []byte
	version, seqNo    int64
	deleted           bool
	routing, pipeline string
}

// op is one parsed bulk action with its source line.
type op struct {
	action            string // index, create, update, delete
	index, id         string
	autoID            bool
	routing, pipeline string
	ifSeqNo, ifTerm   *int64
	source            []byte // index/create: the document; update: the update body
	update            updateBody
}

type updateBody struct {
	Doc         json.RawMessage `json:"doc"`
	DocAsUpsert bool            `json:"doc_as_upsert"`
	Upsert      json.RawMessage `json:"upsert"`
	DetectNoop  *bool           `json:"detect_noop"`
	Script      json.RawMessage `json:"script"`
	Source      json.RawMessage `json:"_source"`
}

type requestError struct {
	status      int
	typ, reason string
}

var knownMeta = map[string]bool{
	"_index": true, "_id": true, "routing": true, "pipeline": true, "if_seq_no": true,
	"if_primary_term": true, "version": true, "version_type": true, "retry_on_conflict": true,
	"require_alias": true, "require_data_stream": true, "dynamic_templates": true, "_source": true,
	"list_executed_pipelines": true,
}

// parseBulk splits an NDJSON bulk body into operations, failing the whole
// request the way Elasticsearch does for a malformed body.
func parseBulk(body []byte, defaultIndex, defaultPipeline, defaultRouting string) ([]op, *requestError) {
	if len(body) == 0 {
		return nil, &requestError{http.StatusBadRequest, "parse_exception", "request body is required"}
	}
	if body[len(body)-1] != '\n' {
		return nil, &requestError{http.StatusBadRequest, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"}
	}
	lines := bytes.Split(body[:len(body)-1], []byte("\n"))
	var ops []op
	for i := 0; i < len(lines); i++ {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 {
			continue
		}
		o, err := parseAction(line, i+1)
		if err != nil {
			return nil, err
		}
		if o.index == "" {
			o.index = defaultIndex
		}
		if o.index == "" {
			return nil, &requestError{http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index is missing;"}
		}
		if o.pipeline == "" {
			o.pipeline = defaultPipeline
		}
		if o.routing == "" {
			o.routing = defaultRouting
		}
		if o.action != "delete" {
			if i+1 >= len(lines) {
				return nil, &requestError{http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: source is missing;"}
			}
			i++
			o.source = bytes.TrimRight(lines[i], "\r")
		}
		switch o.action {
		case "update":
			if o.id == "" {
				return nil, &requestError{http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: id is missing;"}
			}
			if err := json.Unmarshal(o.source, &o.update); err != nil {
				return nil, &requestError{http.StatusBadRequest, "x_content_parse_exception", fmt.Sprintf("[%d:1] [UpdateRequest] failed to parse: %v", i+1, err)}
			}
			if len(o.update.Script) > 0 {
				return nil, &requestError{http.StatusBadRequest, "illegal_argument_exception", "esbulk: update scripts are not supported"}
			}
			if len(o.update.Doc) == 0 && len(o.update.Upsert) == 0 {
				return nil, &requestError{http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;"}
			}
		case "delete":
			if o.id == "" {
				return nil, &requestError{http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: id is missing;"}
			}
		default:
			o.autoID = o.id == ""
		}
		ops = append(ops, o)
	}
	if len(ops) == 0 {
		return nil, &requestError{http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no requests added;"}
	}
	return ops, nil
}

func parseAction(line []byte, n int) (op, *requestError) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(line, &outer); err != nil || len(outer) != 1 {
		return op{}, &requestError{http.StatusBadRequest, "illegal_argument_exception",
			fmt.Sprintf("Malformed action/metadata line [%d], expected START_OBJECT or END_OBJECT with exactly one action", n)}
	}
	var o op
	var rawMeta json.RawMessage
	for k, v := range outer {
		o.action, rawMeta = k, v
	}
	switch o.action {
	case "index", "create", "update", "delete":
	default:
		return op{}, &requestError{http.StatusBadRequest, "illegal_argument_exception",
			fmt.Sprintf("Malformed action/metadata line [%d], expected field [create], [delete], [index] or [update] but found [%s]", n, o.action)}
	}
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(rawMeta, &meta); err != nil {
		return op{}, &requestError{http.StatusBadRequest, "illegal_argument_exception",
			fmt.Sprintf("Malformed action/metadata line [%d], expected START_OBJECT but found [%s]", n, bytes.TrimSpace(rawMeta))}
	}
	for k, v := range meta {
		if !knownMeta[k] {
			return op{}, &requestError{http.StatusBadRequest, "illegal_argument_exception",
				fmt.Sprintf("Action/metadata line [%d] contains an unknown parameter [%s]", n, k)}
		}
		var err error
		switch k {
		case "_index":
			err = json.Unmarshal(v, &o.index)
		case "_id":
			o.id, err = simpleValue(v)
		case "routing":
			o.routing, err = simpleValue(v)
		case "pipeline":
			err = json.Unmarshal(v, &o.pipeline)
		case "if_seq_no":
			o.ifSeqNo = new(int64)
			err = json.Unmarshal(v, o.ifSeqNo)
		case "if_primary_term":
			o.ifTerm = new(int64)
			err = json.Unmarshal(v, o.ifTerm)
		}
		if err != nil {
			return op{}, &requestError{http.StatusBadRequest, "illegal_argument_exception",
				fmt.Sprintf("Malformed action/metadata line [%d], expected a simple value for field [%s] but found [%s]", n, k, bytes.TrimSpace(v))}
		}
	}
	return o, nil
}

// simpleValue accepts a JSON string or number as a string.
func simpleValue(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return "", fmt.Errorf("not a simple value: %w", err)
	}
	return n.String(), nil
}

type shards struct {
	Total      int `json:"total"`
	Successful int `json:"successful"`
	Failed     int `json:"failed"`
}

type errorDoc struct {
	Type      string `json:"type"`
	Reason    string `json:"reason"`
	IndexUUID string `json:"index_uuid,omitempty"`
	Shard     string `json:"shard,omitempty"`
	Index     string `json:"index,omitempty"`
	CausedBy  *Cause `json:"caused_by,omitempty"`
}

type itemResult struct {
	Index       string    `json:"_index"`
	ID          string    `json:"_id"`
	Version     *int64    `json:"_version,omitempty"`
	Result      string    `json:"result,omitempty"`
	Shards      *shards   `json:"_shards,omitempty"`
	SeqNo       *int64    `json:"_seq_no,omitempty"`
	PrimaryTerm *int64    `json:"_primary_term,omitempty"`
	Status      int       `json:"status"`
	Error       *errorDoc `json:"error,omitempty"`
}

type bulkResponse struct {
	Took   int64                    `json:"took"`
	Errors bool                     `json:"errors"`
	Items  []map[string]*itemResult `json:"items"`
}

// process applies ops in order and builds the answer.
func (s *Server) process(ops []op, rec *RequestRecord) bulkResponse {
	resp := bulkResponse{Items: make([]map[string]*itemResult, 0, len(ops))}
	for _, o := range ops {
		res, injected := s.apply(o)
		if res.Error != nil {
			resp.Errors = true
			rec.Failed++
			if injected {
				rec.Injected++
			}
		}
		resp.Items = append(resp.Items, map[string]*itemResult{o.action: res})
	}
	return resp
}

func (s *Server) fail(res *itemResult, e *ItemError, uuid string) *itemResult {
	res.Status = e.Status
	res.Error = &errorDoc{Type: e.Type, Reason: e.Reason, IndexUUID: uuid, Index: res.Index, CausedBy: e.CausedBy}
	if uuid != "_na_" {
		res.Error.Shard = "0"
	}
	return res
}

// apply runs one operation against the store; injected tells whether its
// failure came from the FailItems hook.
func (s *Server) apply(o op) (*itemResult, bool) {
	if o.autoID {
		o.id = newID()
	}
	res := &itemResult{Index: o.index, ID: o.id}
	if reason := invalidIndexName(o.index); reason != "" {
		return s.fail(res, &ItemError{Status: http.StatusBadRequest, Type: "invalid_index_name_exception", Reason: reason}, "_na_"), false
	}

	s.mu.Lock()
	key := docKey{o.index, o.id}
	s.attempts[key]++
	attempt := s.attempts[key]
	ix := s.indices[o.index]
	hook := s.hook
	s.mu.Unlock()

	switch {
	case ix != nil && ix.readOnly:
		return s.fail(res, &ItemError{Status: http.StatusForbidden, Type: "cluster_block_exception",
			Reason: fmt.Sprintf("index [%s] blocked by: [FORBIDDEN/8/index write (api)];", o.index)}, ix.uuid), false
	case ix == nil && s.cfg.NoAutoCreateIndex:
		res.Error = &errorDoc{Type: "index_not_found_exception", Reason: fmt.Sprintf("no such index [%s]", o.index), IndexUUID: "_na_", Index: o.index}
		res.Status = http.StatusNotFound
		return res, false
	}
	if o.action == "index" || o.action == "create" {
		if e := s.checkDocument(o.source); e != nil {
			return s.fail(res, e, ""), false
		}
	}
	if hook != nil && o.action != "delete" {
		if e := hook(o.index, o.id, o.source, attempt); e != nil {
			return s.fail(res, e, ""), true
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	ix = s.indices[o.index]
	if ix == nil {
		ix = newIndex(false)
		s.indices[o.index] = ix
	}
	d := ix.docs[o.id]
	exists := d != nil && !d.deleted
	if o.ifSeqNo != nil || o.ifTerm != nil {
		wantSeq, wantTerm := int64(-2), int64(1)
		if o.ifSeqNo != nil {
			wantSeq = *o.ifSeqNo
		}
		if o.ifTerm != nil {
			wantTerm = *o.ifTerm
		}
		if !exists || d.seqNo != wantSeq || wantTerm != 1 {
			reason := fmt.Sprintf("[%s]: version conflict, required seqNo [%d], primary term [%d]. but no document was found", o.id, wantSeq, wantTerm)
			if exists {
				reason = fmt.Sprintf("[%s]: version conflict, required seqNo [%d], primary term [%d]. current document has seqNo [%d] and primary term [1]", o.id, wantSeq, wantTerm, d.seqNo)
			}
			return s.fail(res, &ItemError{Status: http.StatusConflict, Type: "version_conflict_engine_exception", Reason: reason}, ix.uuid), false
		}
	}
	nextVersion := int64(1)
	if d != nil {
		nextVersion = d.version + 1
	}
	write := func(source []byte, deleted bool) {
		seq := ix.nextSeq
		ix.nextSeq++
		nd := &doc{source: source, version: nextVersion, seqNo: seq, deleted: deleted, routing: o.routing, pipeline: o.pipeline}
		if o.action == "update" && exists {
			nd.routing, nd.pipeline = d.routing, d.pipeline // a partial update keeps them
		}
		ix.docs[o.id] = nd
		s.writes[key]++
		res.Version, res.SeqNo, res.PrimaryTerm = &nextVersion, &seq, ptr(int64(1))
		res.Shards = &shards{Total: 2, Successful: 1}
	}
	switch o.action {
	case "create":
		if exists {
			return s.fail(res, &ItemError{Status: http.StatusConflict, Type: "version_conflict_engine_exception",
				Reason: fmt.Sprintf("[%s]: version conflict, document already exists (current version [%d])", o.id, d.version)}, ix.uuid), false
		}
		write(bytes.Clone(o.source), false)
		res.Result, res.Status = "created", http.StatusCreated
	case "index":
		write(bytes.Clone(o.source), false)
		res.Result, res.Status = "created", http.StatusCreated
		if exists {
			res.Result, res.Status = "updated", http.StatusOK
		}
	case "delete":
		if !exists {
			v, seq := nextVersion, ix.nextSeq
			ix.nextSeq++
			res.Version, res.SeqNo, res.PrimaryTerm = &v, &seq, ptr(int64(1))
			res.Shards = &shards{Total: 2, Successful: 1}
			res.Result, res.Status = "not_found", http.StatusNotFound
			return res, false
		}
		write(nil, true)
		res.Result, res.Status = "deleted", http.StatusOK
	case "update":
		return s.update(o, ix, d, exists, res, write), false
	}
	return res, false
}

func (s *Server) update(o op, ix *index, d *doc, exists bool, res *itemResult, write func([]byte, bool)) *itemResult {
	u := o.update
	if !exists {
		var src json.RawMessage
		switch {
		case len(u.Upsert) > 0:
			src = u.Upsert
		case u.DocAsUpsert:
			src = u.Doc
		default:
			return s.fail(res, &ItemError{Status: http.StatusNotFound, Type: "document_missing_exception",
				Reason: fmt.Sprintf("[%s]: document missing", o.id)}, ix.uuid)
		}
		if e := s.checkDocument(src); e != nil {
			return s.fail(res, e, ix.uuid)
		}
		write(bytes.Clone(src), false)
		res.Result, res.Status = "created", http.StatusCreated
		return res
	}
	if e := s.checkDocument(u.Doc); e != nil {
		return s.fail(res, e, ix.uuid)
	}
	var current, partial map[string]any
	_ = json.Unmarshal(d.source, &current) // stored sources are valid objects
	_ = json.Unmarshal(u.Doc, &partial)
	before, _ := json.Marshal(current)
	merged, _ := json.Marshal(merge(current, partial))
	if (u.DetectNoop == nil || *u.DetectNoop) && bytes.Equal(before, merged) {
		v, seq := d.version, d.seqNo
		res.Version, res.SeqNo, res.PrimaryTerm = &v, &seq, ptr(int64(1))
		res.Shards = &shards{}
		res.Result, res.Status = "noop", http.StatusOK
		return res
	}
	write(merged, false)
	res.Result, res.Status = "updated", http.StatusOK
	return res
}

// merge applies a partial document recursively, as an update's "doc" does.
func merge(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range src {
		sv, sok := v.(map[string]any)
		dv, dok := dst[k].(map[string]any)
		if sok && dok {
			dst[k] = merge(dv, sv)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// checkDocument fails a source that is not one JSON object.
func (s *Server) checkDocument(src []byte) *ItemError {
	typ := "document_parsing_exception"
	if s.cfg.OpenSearch {
		typ = "mapper_parsing_exception"
	}
	trimmed := bytes.TrimSpace(src)
	var v any
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	err := dec.Decode(&v)
	if err == nil && dec.More() {
		err = fmt.Errorf("unexpected content after the document")
	}
	if err != nil {
		return &ItemError{Status: http.StatusBadRequest, Type: typ, Reason: "[1:1] failed to parse: " + err.Error(),
			CausedBy: &Cause{Type: "json_parse_exception", Reason: err.Error()}}
	}
	if _, ok := v.(map[string]any); !ok {
		return &ItemError{Status: http.StatusBadRequest, Type: typ, Reason: "[1:1] failed to parse: the document is not a JSON object",
			CausedBy: &Cause{Type: "not_x_content_exception", Reason: "Compressor detection can only be called on some xcontent bytes or compressed xcontent bytes"}}
	}
	return nil
}

// invalidIndexName returns why name is not a valid index name, or "".
func invalidIndexName(name string) string {
	switch {
	case name == "":
		return "Invalid index name [], must not be empty"
	case strings.ToLower(name) != name:
		return fmt.Sprintf("Invalid index name [%s], must be lowercase", name)
	case strings.ContainsAny(name, "\\/*?\"<>| ,#:"):
		return fmt.Sprintf("Invalid index name [%s], must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]", name)
	case strings.HasPrefix(name, "_") || strings.HasPrefix(name, "-") || strings.HasPrefix(name, "+"):
		return fmt.Sprintf("Invalid index name [%s], must not start with '_', '-', or '+'", name)
	case name == "." || name == "..":
		return fmt.Sprintf("Invalid index name [%s], must not be '.' or '..'", name)
	}
	return ""
}

// newID is an auto-generated document id: 20 URL-safe base64 characters,
// like Elasticsearch's.
func newID() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func ptr[T any](v T) *T { return &v }
