// Package jsonscan validates JSON text quickly, for the destinations that
// must check records before sending them (destinations/postgres,
// destinations/elasticsearch). Valid agrees with encoding/json.Valid
// (fuzzed against it in destinations/postgres) and is several times
// faster.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// SkipWS returns the offset of the first byte at or after i in d that is
// not JSON white space.
func SkipWS(d []byte, i int) int { return skipWS(d, i, false) }

// skipWS is SkipWS; on one line, line breaks are not white space.
func skipWS(d []byte, i int, line bool) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t':
			i++
		case '\n', '\r':
			if line {
				return i
			}
			i++
		default:
			return i
		}
	}
	return i
}

// Valid reports whether d is exactly one JSON value with optional
// white space around, as json.Valid does (and like it, without checking
// UTF-8), several times faster. It keeps one byte per nesting level.
func Valid(d []byte) bool { return scanner{}.valid(d) }

// ValidLine reports whether d is exactly one JSON value on one line of
// UTF-8 text: Valid, with no line break (JSON text holds them only as
// white space) and every string valid UTF-8 (the only place JSON text
// holds bytes above 0x7F), in the same single pass. It agrees with
// json.Valid(d) && utf8.Valid(d) && no '\n' or '\r' in d.
func ValidLine(d []byte) bool { return scanner{line: true}.valid(d) }

// scanner is one kind of validation: line is ValidLine's.
type scanner struct{ line bool }

func (s scanner) valid(d []byte) bool {
	var stackBuf [64]byte
	stack := stackBuf[:0]
	i := skipWS(d, 0, s.line)
	for {
		if i >= len(d) {
			return false
		}
		switch d[i] { // a value starts at i
		case '{':
			if i = skipWS(d, i+1, s.line); i < len(d) && d[i] == '}' {
				i++
				break
			}
			stack = append(stack, '{')
			if i = s.scanKey(d, i); i < 0 {
				return false
			}
			continue
		case '[':
			if i = skipWS(d, i+1, s.line); i < len(d) && d[i] == ']' {
				i++
				break
			}
			stack = append(stack, '[')
			continue
		case '"':
			i = s.scanString(d, i)
		case 't':
			i = scanLiteral(d, i, "true")
		case 'f':
			i = scanLiteral(d, i, "false")
		case 'n':
			i = scanLiteral(d, i, "null")
		default:
			i = scanNumber(d, i)
		}
		if i < 0 {
			return false
		}
		for { // after a value: close containers until a comma
			i = skipWS(d, i, s.line)
			if len(stack) == 0 {
				return i == len(d)
			}
			if i >= len(d) {
				return false
			}
			top := stack[len(stack)-1]
			if d[i] == ',' {
				i = skipWS(d, i+1, s.line)
				if top == '{' {
					if i = s.scanKey(d, i); i < 0 {
						return false
					}
				}
				break
			}
			if d[i] != top+2 { // '{'+2 is '}', '['+2 is ']'
				return false
			}
			stack = stack[:len(stack)-1]
			i++
		}
	}
}

// scanKey scans `"key" :` and the white space after it; -1 if invalid.
func (s scanner) scanKey(d []byte, i int) int {
	if i >= len(d) || d[i] != '"' {
		return -1
	}
	if i = s.scanString(d, i); i < 0 {
		return -1
	}
	if i = skipWS(d, i, s.line); i >= len(d) || d[i] != ':' {
		return -1
	}
	return skipWS(d, i+1, s.line)
}

// scanString returns the offset after the string at d[i] ('"'), -1 if
// it is not a valid JSON string. The first words go a word at a time,
// testing for all three special bytes (quote, backslash, control) at once:
// that ends most keys and values. A longer string continues in scanLong.
// On one line, bytes above 0x7F are flagged too, and each must start a
// valid UTF-8 sequence.
func (s scanner) scanString(d []byte, i int) int {
	i++
	var high uint64
	if s.line {
		high = highs
	}
	for words := 0; words < shortWords && len(d)-i >= 8; {
		x := binary.LittleEndian.Uint64(d[i:])
		m := special8(x) | x&high
		if m == 0 {
			i += 8
			words++
			continue
		}
		// The lowest flagged byte is always a special one (the false
		// positives of the zero-byte test lie above a true one).
		i += bits.TrailingZeros64(m) >> 3
		switch c := d[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i = scanEscape(d, i); i < 0 {
				return -1
			}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && n == 1 {
				return -1
			}
			i += n
		default:
			return -1
		}
	}
	return s.scanLong(d, i)
}

// shortWords is how many words scanString tests before it hands a long
// string to scanLong.
const shortWords = 4

// scanLong scans the rest of a string from d[i] (inside it) and returns
// the offset after its closing quote, -1 if it is not valid. The closing
// quote and the backslashes are found with bytes.IndexByte (vectorised),
// control characters a word at a time; both searches only move forward,
// so a string full of escapes costs no more than its length. On one line,
// the runs between escapes must be UTF-8 too (they end at ASCII bytes, so
// a run holds whole sequences).
func (s scanner) scanLong(d []byte, i int) int {
	q := -1 // the next quote at or after i, once searched for
	for {
		if q < i {
			k := bytes.IndexByte(d[i:], '"')
			if k < 0 {
				return -1
			}
			q = i + k
		}
		end := q
		if k := bytes.IndexByte(d[i:q], '\\'); k >= 0 {
			end = i + k
		}
		if ctrl, high := controlOrHigh(d[i:end]); ctrl || high && s.line && !utf8.Valid(d[i:end]) {
			return -1
		}
		if end == q {
			return q + 1
		}
		if i = scanEscape(d, end); i < 0 {
			return -1
		}
	}
}

// scanEscape returns the offset after the escape sequence at d[i] ('\\'),
// -1 if it is not a valid one.
func scanEscape(d []byte, i int) int {
	if i++; i >= len(d) {
		return -1
	}
	switch d[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 1
	case 'u':
		if i+4 >= len(d) {
			return -1
		}
		for _, c := range d[i+1 : i+5] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return -1
			}
		}
		return i + 5
	}
	return -1
}

// special8 is not zero when any of the eight bytes in x (little endian)
// is a quote, a backslash or a control character (below 0x20): the bytes
// that end the plain run of a string. Each test is the classic "has a
// zero byte" expression, exact as to whether some byte qualifies.
func special8(x uint64) uint64 {
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	return ((quote-ones)&^quote | (backslash-ones)&^backslash | (x-ones*0x20)&^x) & highs
}

// SWAR constants: a byte repeated eight times.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// controlOrHigh reports whether s holds a control character (below
// 0x20), which a JSON string must escape, and whether it holds a byte
// above 0x7F. Eight bytes at a time: the classic "has a byte less than n"
// expression, exact as to whether one does (a word's false positives lie
// above a true one, and are or-ed away).
func controlOrHigh(s []byte) (ctrl, high bool) {
	var c, h uint64
	for len(s) >= 32 { // four words a round: independent, so they overlap
		x0, x1 := binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[8:])
		x2, x3 := binary.LittleEndian.Uint64(s[16:]), binary.LittleEndian.Uint64(s[24:])
		c |= (x0-ones*0x20)&^x0 | (x1-ones*0x20)&^x1 | (x2-ones*0x20)&^x2 | (x3-ones*0x20)&^x3
		h |= x0 | x1 | x2 | x3
		s = s[32:]
	}
	for len(s) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		c |= (x - ones*0x20) &^ x
		h |= x
		s = s[8:]
	}
	for _, b := range s {
		if b < 0x20 {
			c |= highs
		}
		h |= uint64(b)
	}
	return c&highs != 0, h&0x80_80_80_80_80_80_80_80 != 0
}

// Plain reports whether s can go between quotes as it is: no quote,
// backslash, control character or byte above 0x7F (which encoding/json
// would check or escape). Eight bytes at a time.
func Plain(s string) bool {
	for len(s) >= 8 {
		x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		if special8(x)|x&highs != 0 {
			return false
		}
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func scanLiteral(d []byte, i int, lit string) int {
	if len(d)-i >= len(lit) && string(d[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// scanNumber returns the offset after the number at d[i], -1 if invalid.
func scanNumber(d []byte, i int) int {
	digits := func() int {
		start := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i - start
	}
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case digits() == 0:
		return -1
	}
	if i < len(d) && d[i] == '.' {
		if i++; digits() == 0 {
			return -1
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		if i++; i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return -1
		}
	}
	return i
}
