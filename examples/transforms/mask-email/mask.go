package main

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of JSON values.
const maxDepth = 1000

// redacted replaces non-string email values and strings that do not look
// like addresses.
const redacted = `"***"`

// maskEmails validates data as one JSON value and appends to dst a copy
// where every "email" value is redacted. It reports whether anything was
// redacted; when not, dst is returned as given (the caller keeps data).
func maskEmails(dst, data []byte) ([]byte, bool, error) {
	s := scanner{in: data, out: dst}
	s.space()
	if err := s.value(0); err != nil {
		return dst, false, err
	}
	s.space()
	if s.pos != len(s.in) {
		return dst, false, s.errorf("data after the JSON value")
	}
	if !s.changed {
		return dst, false, nil
	}
	return append(s.out, s.in[s.copied:]...), true, nil
}

// scanner walks one JSON value. Output is lazy: out receives in[copied:a]
// and the replacement when a value at [a,b) is redacted, so a record
// without email fields is never copied.
type scanner struct {
	in      []byte
	pos     int
	out     []byte
	copied  int
	changed bool
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", s.pos, fmt.Sprintf(format, args...))
}

func (s *scanner) space() {
	for s.pos < len(s.in) {
		switch s.in[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return s.errorf("nested deeper than %d", maxDepth)
	}
	if s.pos >= len(s.in) {
		return s.errorf("unexpected end of data")
	}
	switch c := s.in[s.pos]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		return s.errorf("unexpected character %q", c)
	}
}

func (s *scanner) object(depth int) error {
	s.pos++ // {
	s.space()
	if s.pos < len(s.in) && s.in[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		if s.pos >= len(s.in) || s.in[s.pos] != '"' {
			return s.errorf("expected a string key")
		}
		start := s.pos
		escaped, err := s.str()
		if err != nil {
			return err
		}
		email := isEmail(s.in[start:s.pos], escaped)
		s.space()
		if s.pos >= len(s.in) || s.in[s.pos] != ':' {
			return s.errorf("expected ':' after an object key")
		}
		s.pos++
		s.space()
		if email {
			err = s.redact(depth + 1)
		} else {
			err = s.value(depth + 1)
		}
		if err != nil {
			return err
		}
		s.space()
		if s.pos >= len(s.in) {
			return s.errorf("unexpected end of data in an object")
		}
		switch s.in[s.pos] {
		case ',':
			s.pos++
			s.space()
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf("expected ',' or '}' in an object")
		}
	}
}

func (s *scanner) array(depth int) error {
	s.pos++ // [
	s.space()
	if s.pos < len(s.in) && s.in[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.space()
		if s.pos >= len(s.in) {
			return s.errorf("unexpected end of data in an array")
		}
		switch s.in[s.pos] {
		case ',':
			s.pos++
			s.space()
		case ']':
			s.pos++
			return nil
		default:
			return s.errorf("expected ',' or ']' in an array")
		}
	}
}

// str scans a string starting at its opening quote and reports whether it
// contains escapes.
func (s *scanner) str() (escaped bool, err error) {
	s.pos++ // "
	for s.pos < len(s.in) {
		c := s.in[s.pos]
		switch {
		case c == '"':
			s.pos++
			return escaped, nil
		case c == '\\':
			escaped = true
			if s.pos+1 >= len(s.in) {
				return escaped, s.errorf("unexpected end of data in a string")
			}
			switch s.in[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.in) || !isHex4(s.in[s.pos+2:s.pos+6]) {
					return escaped, s.errorf(`invalid \u escape`)
				}
				s.pos += 6
			default:
				return escaped, s.errorf("invalid escape %q", s.in[s.pos+1])
			}
		case c < 0x20:
			return escaped, s.errorf("control character %#x in a string", c)
		default:
			s.pos++
		}
	}
	return escaped, s.errorf("unexpected end of data in a string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func (s *scanner) literal(lit string) error {
	if len(s.in)-s.pos < len(lit) || string(s.in[s.pos:s.pos+len(lit)]) != lit {
		return s.errorf("invalid literal, expected %s", lit)
	}
	s.pos += len(lit)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number() error {
	if s.in[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.in) && s.in[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		return s.errorf("invalid number")
	}
	if s.pos < len(s.in) && s.in[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.errorf("invalid number: no digit after '.'")
		}
	}
	if s.pos < len(s.in) && (s.in[s.pos] == 'e' || s.in[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.in) && (s.in[s.pos] == '+' || s.in[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return s.errorf("invalid number: no digit in the exponent")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	start := s.pos
	for s.pos < len(s.in) && s.in[s.pos] >= '0' && s.in[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

// isEmail reports whether the quoted key is "email".
func isEmail(quoted []byte, escaped bool) bool {
	if !escaped {
		return string(quoted) == `"email"`
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == "email"
}

// redact scans the value of an email field and replaces it in the output.
func (s *scanner) redact(depth int) error {
	start := s.pos
	if s.pos < len(s.in) && s.in[s.pos] == '"' {
		escaped, err := s.str()
		if err != nil {
			return err
		}
		s.out = redactString(s.flush(start), s.in[start:s.pos], escaped)
		return nil
	}
	if err := s.value(depth); err != nil {
		return err
	}
	if string(s.in[start:s.pos]) != "null" {
		s.out = append(s.flush(start), redacted...)
	}
	return nil
}

// flush returns the output with the input up to start (the beginning of
// the value being replaced, which ends at pos) and marks that value as
// replaced.
func (s *scanner) flush(start int) []byte {
	out := append(s.out, s.in[s.copied:start]...)
	s.copied = s.pos
	s.changed = true
	return out
}

// redactString appends the redacted form of the quoted JSON string q.
func redactString(out, q []byte, escaped bool) []byte {
	if escaped {
		var v string
		if json.Unmarshal(q, &v) != nil {
			return append(out, redacted...)
		}
		local, domain, ok := splitAddress([]byte(v))
		if !ok {
			return append(out, redacted...)
		}
		_, n := utf8.DecodeRune(local)
		buf := append(append(local[:n:n], "***@"...), domain...)
		return appendJSONString(out, buf)
	}
	// Without escapes the raw bytes are valid string content as they are.
	local, domain, ok := splitAddress(q[1 : len(q)-1])
	if !ok {
		return append(out, redacted...)
	}
	_, n := utf8.DecodeRune(local)
	out = append(out, '"')
	out = append(out, local[:n]...)
	out = append(out, "***@"...)
	out = append(out, domain...)
	return append(out, '"')
}

// splitAddress splits an address at its last '@'; ok is false without one
// or with nothing before it.
func splitAddress(a []byte) (local, domain []byte, ok bool) {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == '@' {
			return a[:i], a[i+1:], i > 0
		}
	}
	return nil, nil, false
}

// appendJSONString appends b as a JSON string.
func appendJSONString(out, b []byte) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
