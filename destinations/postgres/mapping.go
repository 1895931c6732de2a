package postgres

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/destinations/internal/jsonscan"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/sluice-dev/sluice/pipeline"
)

// Column is one column of the mapping from a JSON record to a table row, as
// written in the configuration.
//
// Values are converted as follows; a JSON null, or a path that is not in the
// record (a missing key, an index past the end, a null on the way), loads SQL
// NULL, or rejects the record when Required.
//
//   - text: a JSON string as is; any other JSON value as its JSON text
//     exactly as written in the record (`{"a": 1}` keeps its spacing).
//     Strings holding \u0000 (PostgreSQL text cannot) or lone UTF-16
//     surrogates, and invalid UTF-8, are rejected.
//   - smallint, integer, bigint: a JSON number, or a string holding a JSON
//     number ("42"), whose value is an integer within the type's range. The
//     value is decoded exactly (never through float64), and any notation of
//     an integer is accepted: 1e3 and 1000.0 load 1000, -0 loads 0. A value
//     with a fractional part (1.5) is rejected, never rounded.
//   - numeric: a JSON number or numeric string, exactly, keeping its scale
//     as PostgreSQL's own input does ("1.50" loads 1.50, 1.5e3 loads 1500);
//     also the strings "NaN", "Infinity", "-Infinity" (and "inf", any case).
//   - real, double precision: a JSON number or numeric string, correctly
//     rounded to the type; "NaN", "Infinity", "-Infinity" strings; -0 stays
//     -0. Values that overflow, or underflow to zero, are rejected, as
//     PostgreSQL rejects them.
//   - boolean: true, false, or the strings "true" and "false".
//   - timestamptz: by Format. "rfc3339": a string such as
//     "2006-01-02T15:04:05.999999Z07:00", with any zone offset (Z, +05:30;
//     the space form "2006-01-02 15:04:05+01:00" too); a zone offset is
//     required. "epoch_s", "epoch_ms": a number (or numeric string) of
//     seconds or milliseconds since 1970, fractions allowed, decoded
//     exactly. "auto" (the default): a string is RFC 3339, a number is epoch
//     seconds when its magnitude is below 1e11, else epoch milliseconds. The
//     strings "infinity" and "-infinity" load PostgreSQL's infinities. The
//     instant is kept exactly to the microsecond; finer digits are truncated
//     toward the past (PostgreSQL's own text input rounds instead).
//   - date: a string "2006-01-02" (or "infinity", "-infinity").
//   - jsonb, json: the value's JSON text exactly as in the record (for path
//     "." the whole record, without surrounding white space). The server
//     rejects jsonb holding \u0000 (SQLSTATE 22P05); Row does not check that.
//   - bytea: a string, by Format: "base64" (the default; standard alphabet,
//     padding optional), "hex" (an optional leading \x), or "text" (the
//     UTF-8 bytes of the string).
//   - text or bytea with Format "raw" and path ".": the record's bytes as
//     they are, JSON or not (text: valid UTF-8 without NUL, else the record
//     is rejected). A mapping of raw columns only takes any record.
//   - uuid: a string in the canonical 8-4-4-4-12 hex form, either case.
//   - arrays ("bigint[]"): a JSON array whose elements convert as the
//     element type; null elements are NULL. One dimension only.
type Column struct {
	// Name is the table column: a PostgreSQL identifier used exactly as
	// written (always quoted, so case-sensitive). Required.
	Name string `yaml:"name"`
	// Path is where the value is in the record: "." is the whole record,
	// "a.b.c" nested keys, "a[0].b" array elements, `a["odd.key"]` keys
	// that are not plain words. Default: Name as a top-level key.
	Path string `yaml:"path"`
	// Type is the column's PostgreSQL type (see Column for the list);
	// case-insensitive, aliases normalised (int4 is integer, float8 is
	// double precision, timestamp with time zone is timestamptz ...).
	// Default: jsonb.
	Type string `yaml:"type"`
	// Format tells how timestamptz (rfc3339, epoch_s, epoch_ms, auto) and
	// bytea (base64, hex, text) values are written in the record; other
	// types take none.
	Format string `yaml:"format"`
	// Required rejects a record whose value is missing or null instead of
	// loading NULL; the column is created NOT NULL.
	Required bool `yaml:"required"`
}

type baseType uint8

const (
	typeText baseType = iota + 1
	typeSmallint
	typeInteger
	typeBigint
	typeNumeric
	typeReal
	typeDouble
	typeBoolean
	typeTimestamptz
	typeDate
	typeJSONB
	typeJSON
	typeBytea
	typeUUID
)

var typeNames = [...]string{
	typeText: "text", typeSmallint: "smallint", typeInteger: "integer", typeBigint: "bigint",
	typeNumeric: "numeric", typeReal: "real", typeDouble: "double precision", typeBoolean: "boolean",
	typeTimestamptz: "timestamptz", typeDate: "date", typeJSONB: "jsonb", typeJSON: "json",
	typeBytea: "bytea", typeUUID: "uuid",
}

var typeAliases = map[string]baseType{
	"text": typeText, "smallint": typeSmallint, "int2": typeSmallint,
	"integer": typeInteger, "int": typeInteger, "int4": typeInteger,
	"bigint": typeBigint, "int8": typeBigint, "numeric": typeNumeric, "decimal": typeNumeric,
	"real": typeReal, "float4": typeReal,
	"double precision": typeDouble, "double": typeDouble, "float8": typeDouble,
	"boolean": typeBoolean, "bool": typeBoolean,
	"timestamptz": typeTimestamptz, "timestamp with time zone": typeTimestamptz,
	"date": typeDate, "jsonb": typeJSONB, "json": typeJSON, "bytea": typeBytea, "uuid": typeUUID,
}

const supportedTypes = "text, smallint, integer, bigint, numeric, real, double precision, boolean, " +
	"timestamptz, date, jsonb, json, bytea, uuid, and arrays of them but json and jsonb (\"bigint[]\")"

type valueFormat uint8

const (
	formatNone valueFormat = iota
	formatAuto
	formatRFC3339
	formatEpochS
	formatEpochMS
	formatBase64
	formatHex
	formatText
	// formatRaw (text and bytea, path "." only): the record's bytes as
	// they are, JSON or not.
	formatRaw
)

var timestampFormats = map[string]valueFormat{"auto": formatAuto, "rfc3339": formatRFC3339, "epoch_s": formatEpochS, "epoch_ms": formatEpochMS}
var byteaFormats = map[string]valueFormat{"base64": formatBase64, "hex": formatHex, "text": formatText, "raw": formatRaw}

// column is one compiled column.
type column struct {
	name     string
	label    string // the path, for messages
	typ      baseType
	array    bool
	format   valueFormat
	required bool
}

// Mapping is a compiled, validated list of columns, turning JSON records
// into rows for COPY. It is safe for concurrent use.
type Mapping struct {
	cols  []Column
	comp  []column
	names []string
	root  *pathNode
	whole bool
	// raw: every column is format raw, so records need not be JSON.
	raw   bool
	slots sync.Pool // *[]slot
}

// CompileMapping validates cols and compiles their paths. Every problem is
// an *pipeline.OptionError keyed "columns[i].name", ".path", ".type" or
// ".format" (or "columns" when there is none), all joined with errors.Join.
func CompileMapping(cols []Column) (*Mapping, error) {
	var errs []error
	if len(cols) == 0 {
		errs = append(errs, pipeline.OptionErrorf("columns", "at least one column is needed"))
	}
	m := &Mapping{root: &pathNode{label: "."}}
	seen := map[string]int{}
	for i, c := range cols {
		key := fmt.Sprintf("columns[%d]", i)
		nameOK := false
		switch {
		case c.Name == "":
			errs = append(errs, pipeline.OptionErrorf(key+".name", "a column needs a name"))
		case len(c.Name) > 63:
			errs = append(errs, pipeline.OptionErrorf(key+".name", "%q is longer than 63 bytes, PostgreSQL's limit for a name", c.Name))
		case !utf8.ValidString(c.Name) || strings.IndexByte(c.Name, 0) >= 0:
			errs = append(errs, pipeline.OptionErrorf(key+".name", "%q is not valid UTF-8 without NUL", c.Name))
		default:
			if j, dup := seen[c.Name]; dup {
				errs = append(errs, pipeline.OptionErrorf(key+".name", "duplicate column %q (also columns[%d]; names are exact, case-sensitive)", c.Name, j))
			} else {
				seen[c.Name] = i
				nameOK = true
			}
		}

		typ, array, ok := parseType(c.Type)
		if !ok {
			errs = append(errs, pipeline.OptionErrorf(key+".type", "unknown type %q (supported: %s)", c.Type, supportedTypes))
		}

		format := formatNone
		fname := strings.ToLower(strings.TrimSpace(c.Format))
		switch {
		case !ok:
		case typ == typeTimestamptz:
			if fname == "" {
				fname = "auto"
			}
			if format, ok = timestampFormats[fname]; !ok {
				errs = append(errs, pipeline.OptionErrorf(key+".format", "unknown timestamptz format %q (rfc3339, epoch_s, epoch_ms or auto)", c.Format))
			}
		case typ == typeBytea:
			if fname == "" {
				fname = "base64"
			}
			if format, ok = byteaFormats[fname]; !ok {
				errs = append(errs, pipeline.OptionErrorf(key+".format", "unknown bytea format %q (base64, hex, text, or raw with path \".\")", c.Format))
			}
		case typ == typeText && fname == "raw":
			format = formatRaw
		case fname != "":
			errs = append(errs, pipeline.OptionErrorf(key+".format", "type %s takes no format (only timestamptz and bytea do)", typeNames[typ]))
		}

		var segs []segment
		path := c.Path
		if path == "" {
			segs = []segment{{key: c.Name, index: -1}}
			path = renderPath(segs)
		} else {
			var err error
			if segs, err = parsePath(path); err != nil {
				errs = append(errs, pipeline.OptionErrorf(key+".path", "%v", err))
			}
		}
		if format == formatRaw && (array || strings.TrimSpace(c.Path) != ".") {
			errs = append(errs, pipeline.OptionErrorf(key+".format", "format raw is the whole record's bytes: it needs path \".\" and a text or bytea column"))
		}
		if !nameOK || !ok || len(errs) > 0 {
			continue // errors are reported; nothing more to build
		}
		canon := typeNames[typ]
		if array {
			canon += "[]"
		}
		m.cols = append(m.cols, Column{Name: c.Name, Path: path, Type: canon, Format: fname, Required: c.Required})
		m.comp = append(m.comp, column{name: c.Name, label: renderPath(segs), typ: typ, array: array, format: format, required: c.Required})
		m.names = append(m.names, c.Name)
		m.root.add(len(m.comp)-1, segs, nil)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m.init()
	return m, nil
}

func (m *Mapping) init() {
	n := len(m.comp)
	m.slots.New = func() any { s := make([]slot, n); return &s }
	c := m.comp[0]
	m.whole = n == 1 && c.label == "." && !c.array && (c.typ == typeJSONB || c.typ == typeJSON)
	m.raw = true
	for i := range m.comp {
		m.raw = m.raw && m.comp[i].format == formatRaw
	}
}

// parseType normalises a type name: lower case, single spaces, aliases
// resolved, a "[]" suffix for arrays. Empty is jsonb.
func parseType(s string) (baseType, bool, bool) {
	s = strings.Join(strings.Fields(strings.ToLower(s)), " ")
	if s == "" {
		return typeJSONB, false, true
	}
	array := false
	if base, ok := strings.CutSuffix(s, "[]"); ok {
		array, s = true, strings.TrimSpace(base)
	}
	t, ok := typeAliases[s]
	if array && (t == typeJSON || t == typeJSONB) {
		return 0, false, false
	}
	return t, array, ok
}

// WholeRecord returns the default mapping: one jsonb column name holding
// the whole record.
func WholeRecord(name string) *Mapping {
	m := &Mapping{
		root:  &pathNode{label: "."},
		cols:  []Column{{Name: name, Path: ".", Type: "jsonb"}},
		comp:  []column{{name: name, label: ".", typ: typeJSONB}},
		names: []string{name},
	}
	m.root.add(0, nil, nil)
	m.init()
	return m
}

// Columns returns the columns, normalised: canonical types ("integer",
// "double precision", "bigint[]"), paths and formats defaulted.
func (m *Mapping) Columns() []Column { return slices.Clone(m.cols) }

// Names returns the column names in the order of Row's values.
func (m *Mapping) Names() []string { return slices.Clone(m.names) }

// WholeJSON reports whether the mapping is a single json or jsonb column
// holding the whole record: Row then only validates the record.
func (m *Mapping) WholeJSON() bool { return m.whole }

// ColumnDDL returns the column definitions for CREATE TABLE, in order:
// `"name" jsonb`, `"n" bigint NOT NULL` for a required column.
func (m *Mapping) ColumnDDL() []string {
	out := make([]string, len(m.cols))
	for i, c := range m.cols {
		out[i] = quoteIdent(c.Name) + " " + c.Type
		if c.Required {
			out[i] += " NOT NULL"
		}
	}
	return out
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Row appends to dst the values of the record data's columns, one per name
// of Names, ready for pgx's binary COPY into a table of ColumnDDL's types,
// and returns it. A record that cannot be mapped (not JSON, a value of the
// wrong kind or out of the type's range, a required value missing ...)
// returns dst unchanged and an error naming the column and the reason,
// quoting at most a few dozen bytes of the record.
//
// json, jsonb values alias data: data must stay unchanged until the row has
// been sent (until CopyFrom returns).
func (m *Mapping) Row(data []byte, dst []any) ([]any, error) {
	if m.raw {
		n := len(dst)
		for i := range m.comp {
			v, err := m.comp[i].rawValue(data)
			if err != nil {
				clear(dst[n:])
				return dst[:n], err
			}
			dst = append(dst, v)
		}
		return dst, nil
	}
	rec := trimWS(data)
	if !jsonscan.Valid(rec) {
		return dst, invalidJSON(rec)
	}
	if m.whole {
		c := &m.comp[0]
		if string(rec) == "null" {
			if c.required {
				return dst, c.errorf("required value is null")
			}
			return append(dst, nil), nil
		}
		if !utf8.Valid(rec) {
			return dst, c.errorf("record is not valid UTF-8")
		}
		return append(dst, rec), nil
	}

	sp := m.slots.Get().(*[]slot)
	slots := *sp
	defer func() {
		clear(slots)
		m.slots.Put(sp)
	}()
	w := walker{data: rec, slots: slots}
	w.walk(m.root, 0, true)
	n := len(dst)
	for i := range m.comp {
		if m.comp[i].format == formatRaw {
			v, err := m.comp[i].rawValue(data)
			if err != nil {
				clear(dst[n:])
				return dst[:n], err
			}
			dst = append(dst, v)
			continue
		}
		v, err := m.comp[i].value(&slots[i])
		if err != nil {
			clear(dst[n:])
			return dst[:n], err
		}
		dst = append(dst, v)
	}
	return dst, nil
}

func invalidJSON(rec []byte) error {
	if len(rec) == 0 {
		return errors.New("record is empty, not JSON")
	}
	var v json.RawMessage
	var se *json.SyntaxError
	if err := json.Unmarshal(rec, &v); errors.As(err, &se) {
		return fmt.Errorf("record is not valid JSON: %s at offset %d", se.Error(), se.Offset)
	}
	return errors.New("record is not valid JSON")
}

func (c *column) errorf(format string, args ...any) error {
	return fmt.Errorf("column %q (path %s): %w", c.name, c.label, fmt.Errorf(format, args...))
}

// rawValue is a format raw column's value: the record's bytes (bytea,
// aliasing data), or its text (text: valid UTF-8 without NUL, which
// PostgreSQL text cannot hold).
func (c *column) rawValue(data []byte) (any, error) {
	if c.typ == typeBytea {
		return data, nil
	}
	if !utf8.Valid(data) {
		return nil, c.errorf("record is not valid UTF-8 (a text column cannot hold it; use bytea)")
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, c.errorf("record holds a NUL byte (a text column cannot hold it; use bytea)")
	}
	return string(data), nil
}

// value converts what the walk found for c.
func (c *column) value(s *slot) (any, error) {
	if s.bad != nil {
		where := s.bad.label
		if where == "." {
			where = "the record"
		}
		return nil, c.errorf("%s is %s, not %s", where, kindName(s.badKind), kindName(s.need))
	}
	raw := s.raw
	if raw == nil || raw[0] == 'n' {
		if c.required {
			if raw == nil {
				return nil, c.errorf("required value is missing")
			}
			return nil, c.errorf("required value is null")
		}
		return nil, nil
	}
	if !c.array {
		v, err := c.scalar(raw)
		if err != nil {
			return nil, c.errorf("%w", err)
		}
		return v, nil
	}
	if raw[0] != '[' {
		return nil, c.errorf("want a JSON array, got %s", kindName(raw[0]))
	}
	elems := make(pgtype.FlatArray[any], 0, 8)
	err := arrayElems(raw, func(e []byte) error {
		if e[0] == 'n' {
			elems = append(elems, nil)
			return nil
		}
		if e[0] == '[' && c.typ != typeText {
			return fmt.Errorf("element %d: nested arrays are not supported", len(elems))
		}
		v, err := c.scalar(e)
		if err != nil {
			return fmt.Errorf("element %d: %w", len(elems), err)
		}
		elems = append(elems, v)
		return nil
	})
	if err != nil {
		return nil, c.errorf("%w", err)
	}
	return elems, nil
}

func kindName(b byte) string {
	switch b {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// snippet quotes at most 40 bytes of s for a message.
func snippet(s []byte) string {
	const max = 40
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", s[:cut])
}

// scalar converts the raw JSON text of one non-null value to c's element
// type.
func (c *column) scalar(raw []byte) (any, error) {
	switch c.typ {
	case typeText:
		if raw[0] == '"' {
			return textString(raw)
		}
		if !utf8.Valid(raw) {
			return nil, errors.New("value is not valid UTF-8")
		}
		return string(raw), nil
	case typeJSONB, typeJSON:
		if !utf8.Valid(raw) {
			return nil, errors.New("value is not valid UTF-8")
		}
		return raw, nil
	case typeSmallint:
		v, err := integerValue(raw, 16)
		return int16(v), err
	case typeInteger:
		v, err := integerValue(raw, 32)
		return int32(v), err
	case typeBigint:
		return integerValue(raw, 64)
	case typeNumeric:
		return numericValue(raw)
	case typeReal:
		f, err := floatValue(raw, 32)
		return float32(f), err
	case typeDouble:
		return floatValue(raw, 64)
	case typeBoolean:
		switch {
		case raw[0] == 't' || string(raw) == `"true"`:
			return true, nil
		case raw[0] == 'f' || string(raw) == `"false"`:
			return false, nil
		}
		return nil, fmt.Errorf("want true or false, got %s %s", kindName(raw[0]), snippet(raw))
	case typeTimestamptz:
		return timestampValue(raw, c.format)
	case typeDate:
		return dateValue(raw)
	case typeBytea:
		return byteaValue(raw, c.format)
	case typeUUID:
		return uuidValue(raw)
	}
	return nil, fmt.Errorf("unsupported type %d", c.typ)
}

// textString decodes a JSON string for a text value.
func textString(raw []byte) (string, error) {
	s, ok := unquote(raw)
	if !ok {
		return "", errors.New("string is not valid UTF-8 (or holds a lone \\u surrogate)")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("string holds \\u0000, which PostgreSQL text cannot")
	}
	return s, nil
}

// stringArg returns the content of a JSON string, or an error naming what
// was wanted.
func stringArg(raw []byte, want string) (string, error) {
	if raw[0] != '"' {
		return "", fmt.Errorf("want %s, got %s %s", want, kindName(raw[0]), snippet(raw))
	}
	return textString(raw)
}

// pgMinUnixMicro is PostgreSQL's earliest timestamptz (4714-11-24 BC
// 00:00 UTC) in microseconds since 1970; its latest (294276 AD) is past
// what an int64 of microseconds since 1970 can reach.
const pgMinUnixMicro = -211813488000000000 + 946684800000000

func infinity(s string) pgtype.InfinityModifier {
	switch strings.ToLower(s) {
	case "infinity", "+infinity":
		return pgtype.Infinity
	case "-infinity":
		return pgtype.NegativeInfinity
	}
	return pgtype.Finite
}

// timestampValue decodes a timestamptz by format f.
func timestampValue(raw []byte, f valueFormat) (any, error) {
	var us int64
	if raw[0] == '"' && f != formatEpochS && f != formatEpochMS || f == formatRFC3339 {
		s, err := stringArg(raw, "an RFC 3339 timestamp string")
		if err != nil {
			return nil, err
		}
		if inf := infinity(s); inf != pgtype.Finite {
			return pgtype.Timestamptz{InfinityModifier: inf, Valid: true}, nil
		}
		if us, err = parseRFC3339(s); err != nil {
			return nil, err
		}
	} else {
		if raw[0] == '"' {
			if inf := infinity(string(raw[1 : len(raw)-1])); inf != pgtype.Finite {
				return pgtype.Timestamptz{InfinityModifier: inf, Valid: true}, nil
			}
		}
		var buf [32]byte
		d, _, err := numberDecimal(raw, buf[:0])
		if err != nil {
			return nil, err
		}
		shift := int64(6) // seconds to microseconds
		if f == formatEpochMS || f == formatAuto && int64(len(d.digits))+d.exp > 11 {
			shift = 3 // |value| >= 1e11: milliseconds
		}
		var ok bool
		if us, ok = epochMicros(d, shift); !ok {
			return nil, fmt.Errorf("%s is out of range for type timestamptz", snippet(raw))
		}
	}
	if us < pgMinUnixMicro {
		return nil, fmt.Errorf("%s is out of range for type timestamptz", snippet(raw))
	}
	return pgtype.Timestamptz{Time: time.UnixMicro(us).UTC(), Valid: true}, nil
}

// parseRFC3339 returns the microseconds since 1970 of an RFC 3339 time
// (T, t or a space between date and time), truncated toward the past.
func parseRFC3339(s string) (int64, error) {
	b := s
	if len(b) > 10 && (b[10] == ' ' || b[10] == 't') {
		b = b[:10] + "T" + b[11:]
	}
	if strings.HasSuffix(b, "z") {
		b = b[:len(b)-1] + "Z"
	}
	t, err := time.Parse(time.RFC3339Nano, b)
	if err != nil {
		msg := ""
		var pe *time.ParseError
		if errors.As(err, &pe) && pe.Message != "" {
			msg = " (" + strings.TrimPrefix(pe.Message, ": ") + ")"
		}
		return 0, fmt.Errorf("%s is not an RFC 3339 timestamp with a zone offset%s", snippet([]byte(s)), msg)
	}
	return t.Unix()*1_000_000 + int64(t.Nanosecond()/1000), nil
}

// epochMicros returns d × 10^shift as an int64, floored; ok is false when
// it does not fit.
func epochMicros(d decimal, shift int64) (int64, bool) {
	digits, exp := d.digits, d.exp+shift
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if len(digits) == 0 {
		return 0, true
	}
	frac := false
	if exp < 0 {
		frac = true // the dropped digits end in a non-zero one
		if -exp >= int64(len(digits)) {
			digits = nil
		} else {
			digits = digits[:int64(len(digits))+exp]
		}
		exp = 0
	}
	if int64(len(digits))+exp > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range digits {
		u = u*10 + uint64(c-'0')
	}
	for ; exp > 0; exp-- {
		u *= 10
	}
	limit := uint64(math.MaxInt64)
	if d.neg {
		limit++
	}
	if u > limit {
		return 0, false
	}
	if !d.neg {
		return int64(u), true
	}
	v := int64(-u)
	if frac {
		if v == math.MinInt64 {
			return 0, false
		}
		v--
	}
	return v, true
}

func dateValue(raw []byte) (any, error) {
	s, err := stringArg(raw, "a date string")
	if err != nil {
		return nil, err
	}
	if inf := infinity(s); inf != pgtype.Finite {
		return pgtype.Date{InfinityModifier: inf, Valid: true}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return nil, fmt.Errorf("%s is not a date (2006-01-02)", snippet(raw))
	}
	return pgtype.Date{Time: t, Valid: true}, nil
}

func byteaValue(raw []byte, f valueFormat) ([]byte, error) {
	if raw[0] != '"' {
		return nil, fmt.Errorf("want a string, got %s %s", kindName(raw[0]), snippet(raw))
	}
	s, ok := unquote(raw)
	if !ok {
		return nil, errors.New("string is not valid UTF-8 (or holds a lone \\u surrogate)")
	}
	var b []byte
	var err error
	switch f {
	case formatText:
		b = []byte(s)
	case formatHex:
		if b, err = hex.DecodeString(strings.TrimPrefix(s, `\x`)); err != nil {
			return nil, fmt.Errorf("bad hex: %w", err)
		}
	default:
		b, err = base64.StdEncoding.DecodeString(s)
		if err != nil && !strings.Contains(s, "=") {
			b, err = base64.RawStdEncoding.DecodeString(s)
		}
		if err != nil {
			return nil, fmt.Errorf("bad base64: %w", err)
		}
	}
	if b == nil {
		b = []byte{} // empty, not NULL
	}
	return b, nil
}

func uuidValue(raw []byte) (any, error) {
	s, err := stringArg(raw, "a UUID string")
	if err != nil {
		return nil, err
	}
	u := pgtype.UUID{Valid: true}
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' {
		var h [32]byte
		copy(h[:], s[0:8])
		copy(h[8:], s[9:13])
		copy(h[12:], s[14:18])
		copy(h[16:], s[19:23])
		copy(h[20:], s[24:])
		if _, err := hex.Decode(u.Bytes[:], h[:]); err == nil {
			return u, nil
		}
	}
	return nil, fmt.Errorf("%s is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", snippet(raw))
}

// PostgreSQL's numeric limits: digits before and after the decimal point.
const (
	numericMaxWeightDigits = 131072
	numericMaxScale        = 16383
)

// Special values of numeric and the float types, from strings.
const (
	notSpecial = iota
	specialNaN
	specialInf
	specialNegInf
)

// special recognises "NaN", "Infinity", "-Infinity" ("inf", "+inf", any
// case).
func special(raw []byte) int {
	if raw[0] != '"' || len(raw) > 12 {
		return notSpecial
	}
	switch strings.ToLower(string(raw[1 : len(raw)-1])) {
	case "nan":
		return specialNaN
	case "infinity", "+infinity", "inf", "+inf":
		return specialInf
	case "-infinity", "-inf":
		return specialNegInf
	}
	return notSpecial
}

// numericValue decodes a numeric exactly, keeping its scale.
func numericValue(raw []byte) (pgtype.Numeric, error) {
	switch special(raw) {
	case specialNaN:
		return pgtype.Numeric{NaN: true, Valid: true}, nil
	case specialInf:
		return pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}, nil
	case specialNegInf:
		return pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
	}
	var buf [64]byte
	d, _, err := numberDecimal(raw, buf[:0])
	switch {
	case err != nil:
		return pgtype.Numeric{}, err
	case -d.exp > numericMaxScale:
		return pgtype.Numeric{}, fmt.Errorf("%s is out of range for type numeric (more than %d digits after the decimal point)", snippet(raw), numericMaxScale)
	case len(d.digits) == 0:
		return pgtype.Numeric{Int: new(big.Int), Exp: int32(min(d.exp, 0)), Valid: true}, nil
	case int64(len(d.digits))+d.exp > numericMaxWeightDigits:
		return pgtype.Numeric{}, fmt.Errorf("%s is out of range for type numeric (more than %d digits before the decimal point)", snippet(raw), numericMaxWeightDigits)
	}
	n := new(big.Int)
	if len(d.digits) <= 18 {
		var u int64
		for _, c := range d.digits {
			u = u*10 + int64(c-'0')
		}
		n.SetInt64(u)
	} else if _, ok := n.SetString(string(d.digits), 10); !ok {
		return pgtype.Numeric{}, fmt.Errorf("want a number, got %s", snippet(raw))
	}
	if d.neg {
		n.Neg(n)
	}
	return pgtype.Numeric{Int: n, Exp: int32(d.exp), Valid: true}, nil
}

// floatValue decodes a real (bits 32) or double precision (64), correctly
// rounded.
func floatValue(raw []byte, bits int) (float64, error) {
	switch special(raw) {
	case specialNaN:
		return math.NaN(), nil
	case specialInf:
		return math.Inf(1), nil
	case specialNegInf:
		return math.Inf(-1), nil
	}
	var buf [32]byte
	d, num, err := numberDecimal(raw, buf[:0])
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(num), bits)
	if err != nil || (f == 0 && len(d.digits) > 0) {
		name := "double precision"
		if bits == 32 {
			name = "real"
		}
		return 0, fmt.Errorf("%s is out of range for type %s", snippet(raw), name)
	}
	return f, nil
}
