package postgres

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/destinations/internal/jsonscan"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds the JSON side of the mapping: the path syntax, the trie of
// all columns' paths, a validator, a single-pass walk over a valid record
// that finds the raw JSON text of every column's value without decoding
// anything else, and the exact decoding of strings and numbers.

// segment is one step of a path: an object key, or an array index when
// index >= 0.
type segment struct {
	key   string
	index int
}

// parsePath parses a column's path: "." is the whole record; otherwise keys
// separated by dots ("a.b.c"), array indexes in brackets ("a[0].b") and keys
// that are not plain words as JSON strings in brackets (`a["odd.key"]`). A
// leading dot is allowed (".a.b" is "a.b"). A plain key is any run of
// characters other than . [ ] " and white space.
func parsePath(p string) ([]segment, error) {
	if p == "." {
		return nil, nil
	}
	if p == "" {
		return nil, errors.New("path is empty")
	}
	s := p
	if s[0] == '.' {
		s = s[1:]
	}
	var segs []segment
	afterDot := true // at the start, or just after a dot: a plain key (or a bracket at the start) must follow
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '[':
			if afterDot && len(segs) > 0 {
				return nil, fmt.Errorf("path %q: a dot must be followed by a key, not %q", p, "[")
			}
			seg, n, err := parseBracket(s[i:])
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", p, err)
			}
			segs = append(segs, seg)
			i += n
			afterDot = false
		case c == '.':
			if afterDot {
				return nil, fmt.Errorf("path %q: empty key", p)
			}
			afterDot = true
			i++
		default:
			if !afterDot {
				return nil, fmt.Errorf("path %q: expected . or [ at offset %d", p, i)
			}
			j := i
			for j < len(s) && plainKeyByte(s[j]) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("path %q: unexpected %q at offset %d (quote such keys: [\"...\"])", p, s[i], i)
			}
			segs = append(segs, segment{key: s[i:j], index: -1})
			i = j
			afterDot = false
		}
	}
	if afterDot {
		return nil, fmt.Errorf("path %q: ends with a dot", p)
	}
	return segs, nil
}

func plainKeyByte(c byte) bool {
	switch c {
	case '.', '[', ']', '"', ' ', '\t', '\n', '\r':
		return false
	}
	return c >= 0x20
}

// parseBracket parses "[12]" or `["key"]` at the start of s and returns the
// segment and the bytes consumed.
func parseBracket(s string) (segment, int, error) {
	if len(s) < 3 {
		return segment{}, 0, errors.New("unterminated [")
	}
	if s[1] == '"' {
		j := 2
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) || j+1 >= len(s) || s[j+1] != ']' {
			return segment{}, 0, errors.New(`a quoted key must be written ["key"]`)
		}
		var key string
		if err := json.Unmarshal([]byte(s[1:j+1]), &key); err != nil {
			return segment{}, 0, fmt.Errorf("bad quoted key %s: %w", s[1:j+1], err)
		}
		return segment{key: key, index: -1}, j + 2, nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return segment{}, 0, errors.New("unterminated [")
	}
	digits := s[1:end]
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || digits[0] == '+' || digits[0] == '-' || n > 1<<30 {
		return segment{}, 0, fmt.Errorf("bad array index %q (a non-negative integer, or a quoted key)", digits)
	}
	return segment{index: n}, end + 1, nil
}

// renderPath writes segs in the canonical path syntax (for messages).
func renderPath(segs []segment) string {
	if len(segs) == 0 {
		return "."
	}
	var b strings.Builder
	for i, s := range segs {
		switch {
		case s.index >= 0:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case isPlainKey(s.key):
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		default:
			q, _ := json.Marshal(s.key)
			b.WriteString("[" + string(q) + "]")
		}
	}
	return b.String()
}

func isPlainKey(k string) bool {
	if k == "" || !utf8.ValidString(k) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !plainKeyByte(k[i]) {
			return false
		}
	}
	return true
}

// pathNode is one node of the trie of all columns' paths.
type pathNode struct {
	label   string // the path leading here, for messages
	keys    map[string]*pathNode
	indexes map[int]*pathNode
	here    []int // columns whose value is this node's
	all     []int // every column at or below this node
	keyCols []int // columns below a key child (they need an object here)
	idxCols []int // columns below an index child (they need an array here)
}

func (n *pathNode) add(col int, segs []segment, done []segment) {
	n.all = append(n.all, col)
	if len(segs) == 0 {
		n.here = append(n.here, col)
		return
	}
	s := segs[0]
	var child *pathNode
	if s.index >= 0 {
		n.idxCols = append(n.idxCols, col)
		if n.indexes == nil {
			n.indexes = map[int]*pathNode{}
		}
		child = n.indexes[s.index]
		if child == nil {
			child = &pathNode{}
			n.indexes[s.index] = child
		}
	} else {
		n.keyCols = append(n.keyCols, col)
		if n.keys == nil {
			n.keys = map[string]*pathNode{}
		}
		child = n.keys[s.key]
		if child == nil {
			child = &pathNode{}
			n.keys[s.key] = child
		}
	}
	done = append(done, s)
	child.label = renderPath(done)
	child.add(col, segs[1:], done)
}

// slot is what the walk found for one column: the raw JSON text of its value
// (nil: not there), or the node where the record's shape did not fit the path
// (bad, with the first byte of the value found there).
type slot struct {
	raw     []byte
	bad     *pathNode
	badKind byte
	need    byte // '{' or '['
}

// walker finds the columns' values in one record.
type walker struct {
	data  []byte
	slots []slot
}

// walk visits the value starting at data[i] (no white space before it) for
// node n and returns the offset just after it.
func (w *walker) walk(n *pathNode, i int, root bool) int {
	d := w.data
	start := i
	var end int
	switch c := d[i]; c {
	case '{':
		if n.keys != nil {
			end = w.object(n, i)
		} else {
			end = skipValue(d, i)
		}
		w.mismatch(n.idxCols, n, c, '[')
	case '[':
		if n.indexes != nil {
			end = w.array(n, i)
		} else {
			end = skipValue(d, i)
		}
		w.mismatch(n.keyCols, n, c, '{')
	case 'n':
		// null: everything at and below is missing (SQL NULL), except
		// that a null record does not fit a path into it.
		end = i + 4
		if root {
			w.mismatch(n.keyCols, n, c, '{')
			w.mismatch(n.idxCols, n, c, '[')
		}
	default:
		end = skipValue(d, i)
		w.mismatch(n.keyCols, n, c, '{')
		w.mismatch(n.idxCols, n, c, '[')
	}
	for _, col := range n.here {
		w.slots[col].raw = d[start:end]
	}
	return end
}

func (w *walker) mismatch(cols []int, n *pathNode, kind, need byte) {
	for _, c := range cols {
		w.slots[c] = slot{bad: n, badKind: kind, need: need}
	}
}

// reset forgets what an earlier occurrence of a duplicate key found (the
// last occurrence wins, as in jsonb).
func (w *walker) reset(n *pathNode) {
	for _, c := range n.all {
		w.slots[c] = slot{}
	}
}

func (w *walker) object(n *pathNode, i int) int {
	d := w.data
	i = skipWS(d, i+1)
	if d[i] == '}' {
		return i + 1
	}
	for {
		ks := i
		ke := skipString(d, i)
		key := d[ks+1 : ke-1]
		i = skipWS(d, ke)
		i = skipWS(d, i+1) // past ':'
		var child *pathNode
		if bytes.IndexByte(key, '\\') < 0 {
			child = n.keys[string(key)]
		} else if k, ok := unquote(d[ks:ke]); ok {
			child = n.keys[k] // an escaped key ("\u0061") matches its decoded form
		}
		if child == nil {
			i = skipValue(d, i)
		} else {
			w.reset(child)
			i = w.walk(child, i, false)
		}
		i = skipWS(d, i)
		if d[i] == '}' {
			return i + 1
		}
		i = skipWS(d, i+1) // past ','
	}
}

func (w *walker) array(n *pathNode, i int) int {
	d := w.data
	i = skipWS(d, i+1)
	if d[i] == ']' {
		return i + 1
	}
	for idx := 0; ; idx++ {
		if child := n.indexes[idx]; child != nil {
			i = w.walk(child, i, false)
		} else {
			i = skipValue(d, i)
		}
		i = skipWS(d, i)
		if d[i] == ']' {
			return i + 1
		}
		i = skipWS(d, i+1)
	}
}

func skipWS(d []byte, i int) int { return jsonscan.SkipWS(d, i) }

// trimWS trims JSON white space from both ends.
func trimWS(d []byte) []byte { return bytes.Trim(d, " \t\n\r") }

// skipString returns the offset after the string starting at d[i] ('"').
func skipString(d []byte, i int) int {
	for i++; i < len(d); i++ {
		switch d[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the offset after the (valid) JSON value at d[i].
func skipValue(d []byte, i int) int {
	switch d[i] {
	case '"':
		return skipString(d, i)
	case '{', '[':
		depth := 0
		for i < len(d) {
			switch d[i] {
			case '"':
				i = skipString(d, i)
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
	}
	for i < len(d) {
		switch d[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// arrayElems calls f with the raw text of each element of the (valid) JSON
// array raw, stopping at f's first error.
func arrayElems(raw []byte, f func(elem []byte) error) error {
	i := skipWS(raw, 1)
	if raw[i] == ']' {
		return nil
	}
	for {
		end := skipValue(raw, i)
		if err := f(raw[i:end]); err != nil {
			return err
		}
		i = skipWS(raw, end)
		if raw[i] == ']' {
			return nil
		}
		i = skipWS(raw, i+1)
	}
}

// unquote decodes the JSON string literal raw (quotes included; valid JSON).
// ok is false when it holds a lone UTF-16 surrogate or invalid UTF-8, which
// PostgreSQL text cannot hold either.
func unquote(raw []byte) (string, bool) {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		if !utf8.Valid(s) {
			return "", false
		}
		return string(s), true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(s[i+1 : i+5])
			i += 4
			if r >= 0xD800 && r < 0xDC00 {
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					lo := hex4(s[i+3 : i+7])
					if lo >= 0xDC00 && lo < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
						i += 6
						b = utf8.AppendRune(b, r)
						continue
					}
				}
				return "", false
			}
			if r >= 0xDC00 && r < 0xE000 {
				return "", false
			}
			b = utf8.AppendRune(b, r)
		default: // " \ /
			b = append(b, s[i])
		}
	}
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// decimal is an exactly decoded JSON number: digits × 10^exp.
type decimal struct {
	neg    bool
	digits []byte // decimal digits without leading zeros; empty for zero
	exp    int64
}

// maxExp bounds exponents (saturating) so that arithmetic on them cannot
// overflow; every type's range is far inside it.
const maxExp = 1 << 40

// parseDecimal decodes s, which must follow the JSON number grammar
// exactly. Digits may be appended to buf.
func parseDecimal(s []byte, buf []byte) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	intStart := i
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return d, false
	}
	digits := s[intStart:i]
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == fracStart {
			return d, false
		}
		buf = append(append(buf, digits...), s[fracStart:i]...)
		digits = buf
		d.exp = -int64(i - fracStart)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		expStart := i
		var e int64
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if e < maxExp {
				e = e*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == expStart {
			return d, false
		}
		if eneg {
			e = -e
		}
		d.exp += e
	}
	if i != len(s) {
		return d, false
	}
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
	}
	d.digits = digits
	return d, true
}

// numberArg returns the text of a JSON number, or of a string holding one.
func numberArg(raw []byte) ([]byte, error) {
	switch raw[0] {
	case '"':
		s, ok := unquote(raw)
		if !ok {
			return nil, fmt.Errorf("want a number, got a string that is not valid UTF-8")
		}
		return []byte(s), nil
	case '{', '[', 't', 'f':
		return nil, fmt.Errorf("want a number or a numeric string, got %s", kindName(raw[0]))
	}
	return raw, nil
}

func numberDecimal(raw []byte, buf []byte) (decimal, []byte, error) {
	num, err := numberArg(raw)
	if err != nil {
		return decimal{}, nil, err
	}
	d, ok := parseDecimal(num, buf)
	if !ok {
		return decimal{}, nil, fmt.Errorf("want a number, got %s", snippet(raw))
	}
	return d, num, nil
}

var intTypeNames = map[int]string{16: "smallint", 32: "integer", 64: "bigint"}

// integerValue decodes an integer of the given bit size exactly.
func integerValue(raw []byte, bits int) (int64, error) {
	var buf [32]byte
	d, _, err := numberDecimal(raw, buf[:0])
	if err != nil {
		return 0, err
	}
	digits, exp := d.digits, d.exp
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if len(digits) == 0 {
		return 0, nil
	}
	if exp < 0 {
		return 0, fmt.Errorf("%s is not an integer", snippet(raw))
	}
	limit := uint64(1)<<(bits-1) - 1 // the largest positive value
	if d.neg {
		limit++
	}
	if int64(len(digits))+exp > 19 {
		return 0, fmt.Errorf("%s is out of range for type %s", snippet(raw), intTypeNames[bits])
	}
	var u uint64
	for _, c := range digits {
		u = u*10 + uint64(c-'0')
	}
	for ; exp > 0; exp-- {
		u *= 10
	}
	if u > limit {
		return 0, fmt.Errorf("%s is out of range for type %s", snippet(raw), intTypeNames[bits])
	}
	if d.neg {
		return int64(-u), nil // two's complement: -(1<<63) wraps correctly
	}
	return int64(u), nil
}
