package jq

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/itchyny/gojq"
)

// Projection: most extraction queries read a record only through a few
// top-level fields (.customer_id, .type.device, .ts | strftime("%Y")).
// For those, the record is still validated as a whole, but only the
// members the query reads are decoded; the others are skipped without
// allocating. The query sees an object holding just those members, and
// gives the same result as on the whole record since it cannot observe the
// others. Records that are not JSON objects are decoded whole, so that
// errors read the same.

// rootFields returns the top-level field names the query's values read
// from the record, and false when some value may read the record in any
// other way (., .., keys, a function applied to the record, a computed
// index, a variable binding, …); records are then decoded whole.
func rootFields(obj *gojq.Object) (map[string]struct{}, bool) {
	fields := map[string]struct{}{}
	for _, kv := range obj.KeyVals {
		if kv.Val == nil { // {a} and {"a"} read .a
			name, ok := staticKey(kv)
			if !ok || kv.Key != "" && kv.Key[0] == '$' {
				return nil, false
			}
			fields[name] = struct{}{}
			continue
		}
		if !queryFields(kv.Val, fields) {
			return nil, false
		}
	}
	return fields, true
}

// queryFields adds to fields the top-level fields q reads from its input
// and reports whether that is all q can read of it.
func queryFields(q *gojq.Query, fields map[string]struct{}) bool {
	if q == nil || len(q.FuncDefs) > 0 || len(q.Patterns) > 0 || len(q.Imports) > 0 {
		return false
	}
	switch q.Op {
	case 0:
		return termFields(q.Term, fields)
	case gojq.OpPipe:
		// The right side only sees the left side's output.
		return queryFields(q.Left, fields)
	case gojq.OpComma, gojq.OpAdd, gojq.OpSub, gojq.OpMul, gojq.OpDiv, gojq.OpMod,
		gojq.OpEq, gojq.OpNe, gojq.OpGt, gojq.OpLt, gojq.OpGe, gojq.OpLe,
		gojq.OpAnd, gojq.OpOr, gojq.OpAlt:
		return queryFields(q.Left, fields) && queryFields(q.Right, fields)
	default: // assignments and updates
		return false
	}
}

func termFields(t *gojq.Term, fields map[string]struct{}) bool {
	if t == nil || !constSuffixes(t.SuffixList) {
		return false
	}
	switch t.Type {
	case gojq.TermTypeNull, gojq.TermTypeTrue, gojq.TermTypeFalse, gojq.TermTypeNumber:
		return true
	case gojq.TermTypeString:
		for _, sq := range t.Str.Queries {
			if sq.Term == nil || sq.Term.Type != gojq.TermTypeString || sq.Term.Str.Queries != nil {
				if !queryFields(sq, fields) {
					return false
				}
			}
		}
		return true
	case gojq.TermTypeIndex:
		name, ok := constName(t.Index)
		if !ok {
			return false
		}
		fields[name] = struct{}{}
		return true
	case gojq.TermTypeQuery:
		return queryFields(t.Query, fields)
	case gojq.TermTypeArray:
		return t.Array.Query == nil || queryFields(t.Array.Query, fields)
	case gojq.TermTypeUnary:
		return termFields(t.Unary.Term, fields)
	default: // ., .., functions, formats, objects, if, try, reduce, …
		return false
	}
}

// constName returns the field an index such as .name or .["name"] reads.
func constName(ix *gojq.Index) (string, bool) {
	switch {
	case ix == nil || ix.IsSlice || ix.End != nil:
		return "", false
	case ix.Name != "":
		return ix.Name, true
	case ix.Str != nil:
		return ix.Str.Str, ix.Str.Queries == nil
	case ix.Start != nil:
		s := ix.Start
		if s.Op == 0 && s.Term != nil && s.Term.Type == gojq.TermTypeString && s.Term.Str.Queries == nil && len(s.Term.SuffixList) == 0 {
			return s.Term.Str.Str, true
		}
	}
	return "", false
}

// constSuffixes reports whether suffixes (.b, ["b"], [0], [], ?) read only
// the value they follow: an index computed from a query would be evaluated
// on the record.
func constSuffixes(ss []*gojq.Suffix) bool {
	for _, s := range ss {
		if s.Index == nil {
			continue // [] or ?
		}
		if s.Index.Name != "" || (s.Index.Str != nil && s.Index.Str.Queries == nil) {
			continue
		}
		for _, q := range []*gojq.Query{s.Index.Start, s.Index.End} {
			if q != nil && !constScalar(q) {
				return false
			}
		}
	}
	return true
}

func constScalar(q *gojq.Query) bool {
	if q.Op != 0 || q.Term == nil || len(q.Term.SuffixList) > 0 {
		return false
	}
	switch q.Term.Type {
	case gojq.TermTypeNumber, gojq.TermTypeNull:
		return true
	case gojq.TermTypeString:
		return q.Term.Str.Queries == nil
	case gojq.TermTypeUnary:
		return q.Term.Unary.Term.Type == gojq.TermTypeNumber && len(q.Term.Unary.Term.SuffixList) == 0
	}
	return false
}

// decode parses data as one JSON value. With fields non-nil and data a
// JSON object, only the members named in fields are decoded (the last one
// wins, as in a full decode); data is validated whole either way.
func decode(data []byte, fields map[string]struct{}) (any, error) {
	if fields == nil {
		return decodeWhole(data)
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' || !json.Valid(data) {
		return decodeWhole(data)
	}
	obj := make(map[string]any, len(fields))
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return obj, nil
	}
	for {
		// data is valid JSON: a member is "key" : value, then , or }.
		keyStart := i
		i = skipString(data, i)
		rawKey := data[keyStart+1 : i-1]
		i = skipSpace(data, i)
		i = skipSpace(data, i+1) // ':'
		valStart := i
		i = skipValue(data, i)
		if key, ok := memberName(rawKey, data[keyStart:i], fields); ok {
			var v any
			if err := json.Unmarshal(data[valStart:i], &v); err != nil {
				return nil, nonJSONError{err}
			}
			obj[key] = v
		}
		i = skipSpace(data, i)
		if data[i] == '}' {
			return obj, nil
		}
		i = skipSpace(data, i+1) // ','
	}
}

func decodeWhole(data []byte) (any, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, nonJSONError{err}
	}
	return v, nil
}

// memberName returns the decoded member name if fields holds it. quoted is
// the name with its quotes; names with escapes are unquoted first.
func memberName(raw, quoted []byte, fields map[string]struct{}) (string, bool) {
	decode, high := false, false
	for _, c := range raw {
		if c == '\\' {
			decode = true
			break
		}
		high = high || c >= 0x80
	}
	// encoding/json, which decodes the whole record, turns invalid UTF-8
	// into U+FFFD: so must the projection, or the two would disagree.
	if decode || high && !utf8.Valid(raw) {
		var s string
		if json.Unmarshal(quoted[:len(raw)+2], &s) != nil {
			return "", false
		}
		_, ok := fields[s]
		return s, ok
	}
	if _, ok := fields[string(raw)]; !ok { // no allocation for the lookup
		return "", false
	}
	return string(raw), true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at data[i] ('"').
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the valid JSON value starting at
// data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}
