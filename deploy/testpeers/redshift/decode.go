package redshift

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// column is a target column as the upstream catalog describes it.
type column struct {
	name    string
	typ     string // pg_type.typname
	cat     byte   // pg_type.typcategory: 'S' string, 'N' numeric, 'D' date/time, ...
	typmod  int32
	notNull bool
	auto    bool // identity or generated
}

func (c column) isString() bool { return c.cat == 'S' }
func (c column) isJSON() bool   { return c.typ == "json" || c.typ == "jsonb" }

// charLimit is the declared length of a varchar/char column, or -1.
func (c column) charLimit() int {
	if (c.typ == "varchar" || c.typ == "bpchar") && c.typmod >= 4 {
		return int(c.typmod - 4)
	}
	return -1
}

// numericScale is the declared scale of a numeric column, or -1.
func (c column) numericScale() int {
	if c.typ == "numeric" && c.typmod >= 4 {
		return int((c.typmod - 4) & 0xffff)
	}
	return -1
}

// field is one value of a decoded record.
type field struct {
	s      string
	null   bool   // JSON null, a missing JSON key, or the NULL AS string
	quoted bool   // a quoted CSV field
	json   string // the value's JSON text, for JSON input
}

// recordFunc receives a decoded record (fields in column order) or the
// reason it could not be decoded.
type recordFunc func(line int, fields []field, bad *LoadError) error

// skipLines drops IGNOREHEADER's n lines.
func skipLines(data []byte, n int) ([]byte, int) {
	for i := 0; i < n; i++ {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			return nil, i + 1
		}
		data = data[j+1:]
	}
	return data, n
}

// decodeJSON decodes a sequence of JSON objects (JSON 'auto'): each
// object's keys name columns (case-sensitively, or not with 'auto
// ignorecase'); a key no column has is ignored, a column no key names is
// NULL. line is the number of the data's first line.
func decodeJSON(data []byte, line int, cols []column, cmd *copyCmd, emit recordFunc) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	ignoreCase := cmd.jsonOpt == "auto ignorecase"
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return nil
		}
		end := int(dec.InputOffset())
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				end = int(se.Offset)
			} else { // truncated: the value starts after the white space
				for end < len(data) && strings.IndexByte(" \t\r\n", data[end]) >= 0 {
					end++
				}
			}
			at := line + bytes.Count(data[:min(end, len(data))], []byte{'\n'})
			// The stream cannot be resynchronised: one error, and the rest
			// of the object is not loaded.
			return emit(at, nil, &LoadError{Code: 1216, Reason: "Invalid JSON: " + err.Error()})
		}
		at := line + bytes.Count(data[:end], []byte{'\n'})
		if !utf8.Valid(raw) {
			if !cmd.acceptInvChars {
				if err := emit(at, nil, &LoadError{Code: 1220, Reason: "String contains invalid or unsupported UTF8 codepoints",
					RawValue: truncate(string(raw), 1024)}); err != nil {
					return err
				}
				continue
			}
			raw = []byte(replaceInvalid(string(raw), cmd.invCharRepl))
		}
		var obj map[string]json.RawMessage
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
			if err := emit(at, nil, &LoadError{Code: 1216,
				Reason: "Invalid JSON: JSON 'auto' needs an object per record", RawValue: truncate(string(raw), 1024)}); err != nil {
				return err
			}
			continue
		}
		if ignoreCase {
			lower := make(map[string]json.RawMessage, len(obj))
			for k, v := range obj {
				lower[strings.ToLower(k)] = v
			}
			obj = lower
		}
		fields := make([]field, len(cols))
		for i, c := range cols {
			name := c.name
			if ignoreCase {
				name = strings.ToLower(name)
			}
			v, ok := obj[name]
			switch {
			case !ok || string(v) == "null":
				fields[i].null = true
			case v[0] == '"':
				var s string
				_ = json.Unmarshal(v, &s)
				fields[i] = field{s: s, json: string(v)}
			default: // number, boolean, object or array: its JSON text
				fields[i] = field{s: string(v), json: string(v)}
			}
		}
		if err := emit(at, fields, nil); err != nil {
			return err
		}
	}
}

// decodeText decodes Redshift's default format: records end at a newline,
// fields are separated by the delimiter; with ESCAPE a backslash makes the
// next character (delimiter, newline, backslash) literal. A field equal to
// the NULL AS string (default \N) is NULL.
func decodeText(data []byte, line, ncols int, cmd *copyCmd, emit recordFunc) error {
	delim := []byte(cmd.delimiter)
	for len(data) > 0 {
		recLine := line
		var fields []field
		var buf []byte
		i, rawStart := 0, 0
		endField := func(rawEnd int) {
			f := field{s: string(buf)}
			if string(data[rawStart:rawEnd]) == cmd.nullAs {
				f.null = true
			}
			fields = append(fields, f)
			buf = buf[:0]
		}
		for {
			if i >= len(data) {
				endField(i)
				data = data[i:]
				break
			}
			c := data[i]
			if cmd.escape && c == '\\' && i+1 < len(data) {
				if data[i+1] == '\n' {
					line++
				}
				buf = append(buf, data[i+1])
				i += 2
				continue
			}
			if c == '\n' {
				endField(i)
				data = data[i+1:]
				line++
				break
			}
			if bytes.HasPrefix(data[i:], delim) {
				endField(i)
				i += len(delim)
				rawStart = i
				continue
			}
			buf = append(buf, c)
			i++
		}
		if err := emitRecord(recLine, fields, ncols, cmd, emit); err != nil {
			return err
		}
	}
	return nil
}

// decodeCSV decodes CSV (RFC 4180) with the COPY's delimiter and quote
// character. White space between a delimiter and a quoted field is
// ignored; a CRLF line end is taken as a newline.
func decodeCSV(data []byte, line, ncols int, cmd *copyCmd, emit recordFunc) error {
	q, delim := cmd.quote, []byte(cmd.delimiter)
	blank := func(k int) bool {
		return k < len(data) && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r') && !bytes.HasPrefix(data[k:], delim)
	}
	i := 0
	for i < len(data) {
		recLine := line
		var fields []field
		var bad *LoadError
	record:
		for {
			j := i
			for blank(j) && data[j] != '\r' {
				j++
			}
			if j < len(data) && data[j] == q {
				var buf []byte
				k, closed := j+1, false
				for k < len(data) {
					if data[k] == q {
						if k+1 < len(data) && data[k+1] == q {
							buf = append(buf, q)
							k += 2
							continue
						}
						closed = true
						k++
						break
					}
					if data[k] == '\n' {
						line++
					}
					buf = append(buf, data[k])
					k++
				}
				if !closed {
					bad = &LoadError{Code: 1216, Reason: "Unterminated quoted field", RawValue: truncate(string(data[j:]), 1024)}
					i = len(data)
					break record
				}
				for blank(k) {
					k++
				}
				fields = append(fields, field{s: string(buf), quoted: true})
				i = k
			} else {
				k := i
				for k < len(data) && data[k] != '\n' && !bytes.HasPrefix(data[k:], delim) {
					k++
				}
				s := string(data[i:k])
				if k == len(data) || data[k] == '\n' {
					s = strings.TrimSuffix(s, "\r")
				}
				fields = append(fields, field{s: s, null: s == cmd.nullAs})
				i = k
			}
			switch {
			case i >= len(data):
				break record
			case data[i] == '\n':
				i++
				line++
				break record
			case bytes.HasPrefix(data[i:], delim):
				i += len(delim)
				if i == len(data) {
					fields = append(fields, field{})
					break record
				}
			default:
				end := bytes.IndexByte(data[i:], '\n')
				bad = &LoadError{Code: 1216, Reason: "Invalid quote formatting for CSV", RawValue: truncate(string(data[i:]), 80)}
				if end < 0 {
					i = len(data)
				} else {
					i += end + 1
					line++
				}
				break record
			}
		}
		if bad != nil {
			if err := emit(recLine, nil, bad); err != nil {
				return err
			}
			continue
		}
		if err := emitRecord(recLine, fields, ncols, cmd, emit); err != nil {
			return err
		}
	}
	return nil
}

// emitRecord checks a delimited record's field count (FILLRECORD pads a
// short one) and passes it on; IGNOREBLANKLINES drops empty lines.
func emitRecord(line int, fields []field, ncols int, cmd *copyCmd, emit recordFunc) error {
	if len(fields) == 1 && fields[0].s == "" && !fields[0].null && !fields[0].quoted && cmd.ignoreBlankLines {
		return nil
	}
	switch {
	case len(fields) > ncols:
		return emit(line, nil, &LoadError{Code: 1202, Reason: "Extra column(s) found", RawValue: truncate(fields[ncols].s, 1024)})
	case len(fields) < ncols && !cmd.fillRecord:
		return emit(line, nil, &LoadError{Code: 1214, Reason: "Delimiter not found"})
	}
	for len(fields) < ncols {
		fields = append(fields, field{})
	}
	return emit(line, fields, nil)
}

var decimalText = regexp.MustCompile(`^\s*([+-]?[0-9]*)\.([0-9]+)\s*$`)

// convert applies Redshift's conversion rules to a field for its column.
func convert(f field, c column, cmd *copyCmd) (field, *LoadError) {
	out := field{}
	v := f.s
	if !f.null {
		if c.isJSON() && f.json != "" {
			v = f.json
		}
		if !utf8.ValidString(v) {
			if !cmd.acceptInvChars {
				return out, &LoadError{Code: 1220, Reason: "String contains invalid or unsupported UTF8 codepoints"}
			}
			v = replaceInvalid(v, cmd.invCharRepl)
		}
		if cmd.trimBlanks && c.typ == "varchar" {
			v = strings.TrimRight(v, " ")
		}
		blank := strings.TrimSpace(v) == ""
		// Empty and blank fields of non-character columns are always NULL;
		// of character columns with EMPTYASNULL / BLANKSASNULL.
		switch {
		case v == "" && (!c.isString() || (cmd.emptyAsNull && !f.quoted)):
			f.null = true
		case blank && (!c.isString() || cmd.blanksAsNull):
			f.null = true
		}
	}
	if f.null {
		if c.notNull {
			return out, &LoadError{Code: 1213, Reason: "Missing data for not-null field"}
		}
		return field{null: true}, nil
	}
	if (c.typ == "timestamp" || c.typ == "timestamptz") && strings.HasPrefix(cmd.timeFormat, "epoch") {
		t, ok := epoch(strings.TrimSpace(v), cmd.timeFormat == "epochmillisecs")
		if !ok {
			return out, &LoadError{Code: 1206, Reason: "Invalid timestamp format or value [" + cmd.timeFormat + "]"}
		}
		v = t.Format("2006-01-02 15:04:05.999999")
		if c.typ == "timestamptz" {
			v += "+00"
		}
	}
	if scale := c.numericScale(); scale >= 0 && !cmd.roundDec {
		// Redshift's COPY truncates digits past the column's scale (ROUNDEC
		// rounds, as PostgreSQL always does).
		if m := decimalText.FindStringSubmatch(v); m != nil && len(m[2]) > scale {
			ip := m[1]
			if ip == "" || ip == "+" || ip == "-" {
				ip += "0"
			}
			v = ip
			if scale > 0 {
				v += "." + m[2][:scale]
			}
		}
	}
	if n := c.charLimit(); n >= 0 {
		check := v
		if c.typ == "bpchar" {
			check = strings.TrimRight(v, " ")
		}
		// Redshift measures CHAR and VARCHAR lengths in bytes.
		if len(check) > n {
			if !cmd.truncateColumns {
				return out, &LoadError{Code: 1204, Reason: fmt.Sprintf("String length exceeds DDL length (%d bytes > %d)", len(check), n)}
			}
			v = truncBytes(v, n)
		}
	}
	return field{s: v}, nil
}

// epoch reads TIMEFORMAT 'epochsecs' / 'epochmillisecs' values.
func epoch(v string, millis bool) (time.Time, bool) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if millis {
			return time.UnixMilli(n).UTC(), true
		}
		return time.Unix(n, 0).UTC(), true
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return time.Time{}, false
	}
	if millis {
		x /= 1000
	}
	sec, frac := math.Modf(x)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1000).UTC(), true
}

// truncBytes cuts s to at most n bytes without splitting a character.
func truncBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// replaceInvalid replaces each byte of an invalid UTF-8 sequence with repl
// (ACCEPTINVCHARS).
func replaceInvalid(s string, repl byte) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteByte(repl)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
