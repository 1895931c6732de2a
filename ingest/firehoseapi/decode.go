package firehoseapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/pipeline"
)

// The PutRecord/PutRecordBatch request decoder.
//
// It accepts exactly the documents encoding/json accepts when unmarshalling
// into
//
//	struct{ DeliveryStreamName string; Records []struct{ Data []byte } } // PutRecordBatch
//	struct{ DeliveryStreamName string; Record struct{ Data []byte } }    // PutRecord
//
// and produces the same values, including encoding/json's less obvious
// rules: keys match case-insensitively (with Unicode simple folding), a
// duplicated key is decoded again into the same value (so a repeated
// "Records" array decodes into the elements of the previous one, and a
// record object without "Data" keeps the previous Data), null leaves strings
// and structs untouched and sets slices to nil, nesting deeper than 10000
// is rejected, and Data is decoded with
// base64.StdEncoding (which ignores \r and \n). One difference: the
// top-level value must be an object, as the service requires, so a
// top-level null (a no-op for encoding/json) is an error like any other
// non-object (notObjectError). decode_fuzz_test.go checks this against
// encoding/json.
//
// It does not use reflection and does not allocate on the common path: Data
// is base64-decoded straight into an arena owned by the request state, and
// the stream name aliases the request body.

// maxNestingDepth is encoding/json's limit on nested arrays and objects.
const maxNestingDepth = 10000

// syntaxError is a request body that is not acceptable JSON for the
// operation (syntax, type mismatch or invalid base64). It becomes a
// SerializationException.
type syntaxError struct {
	Offset int
	Msg    string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.Msg, e.Offset) }

// putRequest is the decoded body of a PutRecord or PutRecordBatch call.
// It is reused (pooled) between requests; its slices alias the request body
// and the arena, so they are valid until the next decode.
type putRequest struct {
	// name is DeliveryStreamName (nil when absent or null).
	name    []byte
	hasName bool
	nameBuf []byte

	// recs holds the decoded records: for PutRecordBatch recs[:n] are the
	// records of the last "Records" array; recs[n:] are elements of an
	// earlier, longer duplicate "Records" array that encoding/json would
	// reuse. For PutRecord recs[0] is the record.
	recs []pipeline.Record
	n    int
	// count is the number of elements of the last "Records" array,
	// including those past maxBatchRecords that are validated but not kept.
	count      int
	hasRecords bool // "Records" present and not null (PutRecordBatch)
	hasRecord  bool // "Record" present as an object (PutRecord)

	arena []byte // Data storage; cap fixed for one decode
	off   int
	// scratch holds an unescaped Data string before base64 decoding.
	scratch []byte
	// stack tracks open containers while skipping unknown values.
	stack []byte
}

// reset prepares r to decode a body of bodyLen bytes.
func (r *putRequest) reset(bodyLen int) {
	r.name, r.hasName = nil, false
	r.n, r.count = 0, 0
	r.hasRecords, r.hasRecord = false, false
	clear(r.recs)
	r.recs = r.recs[:0]
	// Every Data string is a disjoint span of the body, and base64 yields at
	// most 3 bytes per 4 characters, so the arena never needs to grow.
	need := bodyLen/4*3 + 4
	if cap(r.arena) < need {
		r.arena = make([]byte, need)
	}
	r.arena = r.arena[:cap(r.arena)]
	r.off = 0
}

// records returns the decoded PutRecordBatch records.
func (r *putRequest) records() []pipeline.Record { return r.recs[:r.n] }

type parser struct {
	b     []byte
	i     int
	depth int
	req   *putRequest
}

func (p *parser) errorf(format string, args ...any) error {
	return &syntaxError{Offset: p.i, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// errEOF is returned when the input ends inside a value.
func (p *parser) errEOF() error {
	return &syntaxError{Offset: len(p.b), Msg: "unexpected end of JSON input"}
}

func (p *parser) expect(c byte) error {
	if p.i >= len(p.b) {
		return p.errEOF()
	}
	if p.b[p.i] != c {
		return p.errorf("invalid character %q, expected %q", p.b[p.i], c)
	}
	p.i++
	return nil
}

func (p *parser) push() error {
	p.depth++
	if p.depth > maxNestingDepth {
		return p.errorf("exceeded max depth")
	}
	return nil
}

// decodePutRequest decodes body into r. batch selects the PutRecordBatch
// shape (Records) instead of the PutRecord one (Record).
func decodePutRequest(r *putRequest, body []byte, batch bool) error {
	r.reset(len(body))
	p := parser{b: body, req: r}
	p.ws()
	if p.i >= len(body) {
		return p.errEOF()
	}
	c := body[p.i]
	var err error
	if c == '{' {
		err = p.topObject(batch)
	} else {
		err = p.skipValue()
	}
	if err != nil {
		return err
	}
	p.ws()
	if p.i != len(body) {
		return p.errorf("invalid character %q after top-level value", body[p.i])
	}
	if c != '{' {
		// Valid JSON, but not the request object (encoding/json would
		// accept a top-level null; the service does not).
		return notObjectError(kindOf(c))
	}
	return nil
}

// notObjectError is a request body that is valid JSON but not an object.
type notObjectError string

func (e notObjectError) Error() string {
	return "The request body must be a JSON object, got " + string(e)
}

// kindOf names the kind of the JSON value starting with c.
func kindOf(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '"':
		return "a string"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

type field int

const (
	fieldUnknown field = iota
	fieldName
	fieldRecords
	fieldRecord
	fieldData
)

// Upper-case (folded) field names, as encoding/json's foldName produces.
const (
	foldedName    = "DELIVERYSTREAMNAME"
	foldedRecords = "RECORDS"
	foldedRecord  = "RECORD"
	foldedData    = "DATA"
)

// topObject decodes the request object. The parser is at '{'.
func (p *parser) topObject(batch bool) error {
	return p.object(func(k []byte) (bool, error) {
		switch matchField(k) {
		case fieldName:
			return true, p.nameValue()
		case fieldRecords:
			if batch {
				return true, p.recordsValue()
			}
		case fieldRecord:
			if !batch {
				return true, p.recordValue()
			}
		}
		return false, nil
	})
}

// object parses an object at p.i, calling member for each key with the
// parser positioned at the value. member returns handled=false to have the
// value skipped.
func (p *parser) object(member func(key []byte) (handled bool, err error)) error {
	p.i++ // '{'
	if err := p.push(); err != nil {
		return err
	}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		return nil
	}
	for {
		if p.i >= len(p.b) {
			return p.errEOF()
		}
		if p.b[p.i] != '"' {
			return p.errorf("invalid character %q looking for beginning of object key string", p.b[p.i])
		}
		key, _, err := p.stringValue()
		if err != nil {
			return err
		}
		p.ws()
		if err := p.expect(':'); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return p.errEOF()
		}
		handled, err := member(key)
		if err != nil {
			return err
		}
		if !handled {
			if err := p.skipValue(); err != nil {
				return err
			}
		}
		p.ws()
		if p.i >= len(p.b) {
			return p.errEOF()
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			p.depth--
			return nil
		default:
			return p.errorf("invalid character %q after object key:value pair", p.b[p.i])
		}
	}
}

// matchField maps a decoded key to a field the way encoding/json does:
// exact match, else case-insensitive match under Unicode simple folding.
func matchField(k []byte) field {
	switch string(k) {
	case "DeliveryStreamName":
		return fieldName
	case "Records":
		return fieldRecords
	case "Record":
		return fieldRecord
	case "Data":
		return fieldData
	}
	if len(k) > 4*len(foldedName) { // a rune of at most 4 bytes folds to at least 1
		return fieldUnknown
	}
	var buf [80]byte
	switch string(appendFoldedName(buf[:0], k)) {
	case foldedName:
		return fieldName
	case foldedRecords:
		return fieldRecords
	case foldedRecord:
		return fieldRecord
	case foldedData:
		return fieldData
	}
	return fieldUnknown
}

// appendFoldedName is encoding/json's key folding (fold.go).
func appendFoldedName(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

// foldRune returns the smallest rune of r's simple-folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// nameValue decodes DeliveryStreamName: a string, or null (no effect).
func (p *parser) nameValue() error {
	switch p.b[p.i] {
	case '"':
		s, copied, err := p.stringValue()
		if err != nil {
			return err
		}
		if copied { // s is in the scratch buffer, which Data reuses
			p.req.nameBuf = append(p.req.nameBuf[:0], s...)
			s = p.req.nameBuf
		}
		p.req.name, p.req.hasName = s, true
		return nil
	case 'n':
		return p.literal("null")
	default:
		return p.typeError("DeliveryStreamName", "string")
	}
}

func (p *parser) typeError(field, want string) error {
	start := p.i
	c := p.b[p.i]
	if err := p.skipValue(); err != nil {
		return err
	}
	return &syntaxError{Offset: start, Msg: fmt.Sprintf("cannot unmarshal %s into field %s of type %s", kindOf(c), field, want)}
}

// recordsValue decodes Records: an array of record objects, or null.
func (p *parser) recordsValue() error {
	r := p.req
	switch p.b[p.i] {
	case 'n':
		if err := p.literal("null"); err != nil {
			return err
		}
		clear(r.recs)
		r.recs, r.n, r.count, r.hasRecords = r.recs[:0], 0, 0, false
		return nil
	case '[':
	default:
		return p.typeError("Records", "array")
	}
	p.i++
	if err := p.push(); err != nil {
		return err
	}
	r.hasRecords = true
	count := 0
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
	} else {
		for {
			if p.i >= len(p.b) {
				return p.errEOF()
			}
			var rec *pipeline.Record
			switch {
			case count < len(r.recs):
				rec = &r.recs[count] // encoding/json decodes into the old element
			case count < maxBatchRecords:
				r.recs = append(r.recs, pipeline.Record{})
				rec = &r.recs[count]
			default:
				var discard pipeline.Record // validated, never kept
				rec = &discard
			}
			if err := p.recordElement(rec, "Records"); err != nil {
				return err
			}
			count++
			p.ws()
			if p.i >= len(p.b) {
				return p.errEOF()
			}
			if p.b[p.i] == ',' {
				p.i++
				p.ws()
				continue
			}
			if p.b[p.i] == ']' {
				p.i++
				p.depth--
				break
			}
			return p.errorf("invalid character %q after array element", p.b[p.i])
		}
	}
	r.count = count
	r.n = min(count, maxBatchRecords)
	if count == 0 {
		// encoding/json replaces the slice with a new empty one.
		clear(r.recs)
		r.recs = r.recs[:0]
	}
	return nil
}

// recordValue decodes PutRecord's Record: an object, or null (no effect).
func (p *parser) recordValue() error {
	r := p.req
	if len(r.recs) == 0 {
		r.recs = append(r.recs, pipeline.Record{})
	}
	switch p.b[p.i] {
	case '{':
		r.hasRecord = true
		return p.recordElement(&r.recs[0], "Record")
	case 'n':
		return p.literal("null")
	default:
		return p.typeError("Record", "object")
	}
}

// recordElement decodes a record object (or null, no effect) into rec.
func (p *parser) recordElement(rec *pipeline.Record, field string) error {
	switch p.b[p.i] {
	case 'n':
		return p.literal("null")
	case '{':
	default:
		return p.typeError(field, "object")
	}
	return p.object(func(k []byte) (bool, error) {
		if matchField(k) != fieldData {
			return false, nil
		}
		switch p.b[p.i] {
		case 'n':
			rec.Data = nil
			return true, p.literal("null")
		case '"':
			d, err := p.dataValue()
			if err != nil {
				return true, err
			}
			rec.Data = d
			return true, nil
		default:
			return true, p.typeError("Data", "[]uint8")
		}
	})
}

// dataValue base64-decodes the string at p.i into the arena.
func (p *parser) dataValue() ([]byte, error) {
	r := p.req
	start := p.i
	rest := p.b[p.i+1:]
	q := bytes.IndexByte(rest, '"')
	plainEnd := r.off + base64.StdEncoding.DecodedLen(max(q, 0))
	if q >= 0 && plainEnd <= len(r.arena) {
		// Fastest path: only the alphabet and '=' in the string (so no
		// escape, no \r or \n), correctly padded: decoded in one pass.
		if n, ok := decodeBase64Plain(r.arena[r.off:plainEnd], rest[:q]); ok {
			d := r.arena[r.off : r.off+n : r.off+n]
			r.off += n
			p.i += q + 2
			return d, nil
		}
	}
	var src []byte
	if q >= 0 && bytes.IndexByte(rest[:q], '\\') < 0 {
		// Fast path: no escapes. Base64 accepts only its alphabet, '=' and
		// \r \n; the latter are invalid raw inside a JSON string.
		src = rest[:q]
		p.i += q + 2
		if bytes.IndexByte(src, '\n') >= 0 || bytes.IndexByte(src, '\r') >= 0 {
			return nil, &syntaxError{Offset: start, Msg: "invalid control character in string literal"}
		}
	} else {
		s, _, err := p.stringValue()
		if err != nil {
			return nil, err
		}
		src = s
	}
	end := r.off + base64.StdEncoding.DecodedLen(len(src))
	if end > len(r.arena) {
		return nil, errArenaFull // cannot happen: see reset
	}
	dst := r.arena[r.off:end]
	n, err := base64.StdEncoding.Decode(dst, src)
	if err != nil {
		return nil, &syntaxError{Offset: start, Msg: fmt.Sprintf("invalid base64 in Data: %v", err)}
	}
	d := dst[:n:n]
	r.off += n
	return d, nil
}

// stringValue parses the string at p.i (which is '"') and returns its
// unquoted bytes. The result aliases the body when the string has no escape
// and is ASCII; otherwise it is unquoted exactly as encoding/json does into
// the request's scratch buffer, and copied is true.
func (p *parser) stringValue() (s []byte, copied bool, err error) {
	start := p.i
	i := p.i + 1
	simple := true
	for ; i < len(p.b); i++ {
		c := p.b[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return nil, false, &syntaxError{Offset: i, Msg: "invalid control character in string literal"}
		}
		if c >= utf8.RuneSelf {
			simple = false
			continue
		}
		if c == '\\' {
			simple = false
			i++
			if i >= len(p.b) {
				return nil, false, p.errEOF()
			}
			switch p.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for j := 0; j < 4; j++ {
					i++
					if i >= len(p.b) {
						return nil, false, p.errEOF()
					}
					if !isHex(p.b[i]) {
						return nil, false, &syntaxError{Offset: i, Msg: "invalid character in \\u hexadecimal character escape"}
					}
				}
			default:
				return nil, false, &syntaxError{Offset: i, Msg: "invalid character in string escape code"}
			}
		}
	}
	if i >= len(p.b) {
		return nil, false, p.errEOF()
	}
	p.i = i + 1
	raw := p.b[start:p.i]
	if simple {
		return raw[1 : len(raw)-1], false, nil
	}
	s, err = p.unquote(raw)
	return s, true, err
}

// unquote unquotes a valid JSON string token. Simple ASCII escapes are
// handled here; anything else (\u escapes, non-ASCII bytes, which
// encoding/json rewrites when they are invalid UTF-8) goes through
// encoding/json itself, so the result is identical by construction.
func (p *parser) unquote(raw []byte) ([]byte, error) {
	r := p.req
	out := r.scratch[:0]
	for i := 1; i < len(raw)-1; i++ {
		c := raw[i]
		if c >= utf8.RuneSelf {
			return p.unquoteSlow(raw)
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		default: // 'u'
			return p.unquoteSlow(raw)
		}
	}
	r.scratch = out
	return out, nil
}

func (p *parser) unquoteSlow(raw []byte) ([]byte, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, &syntaxError{Offset: p.i, Msg: fmt.Sprintf("invalid string: %v", err)}
	}
	p.req.scratch = append(p.req.scratch[:0], s...)
	return p.req.scratch, nil
}

// errArenaFull would mean the arena sizing in reset is wrong.
var errArenaFull = errors.New("firehoseapi: decode arena exhausted")
