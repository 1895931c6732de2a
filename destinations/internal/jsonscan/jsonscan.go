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
)

// SkipWS returns the offset of the first byte at or after i in d that is
// not JSON white space.
func SkipWS(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
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
func Valid(d []byte) bool {
	var stackBuf [64]byte
	stack := stackBuf[:0]
	i := SkipWS(d, 0)
	for {
		if i >= len(d) {
			return false
		}
		switch d[i] { // a value starts at i
		case '{':
			if i = SkipWS(d, i+1); i < len(d) && d[i] == '}' {
				i++
				break
			}
			stack = append(stack, '{')
			if i = scanKey(d, i); i < 0 {
				return false
			}
			continue
		case '[':
			if i = SkipWS(d, i+1); i < len(d) && d[i] == ']' {
				i++
				break
			}
			stack = append(stack, '[')
			continue
		case '"':
			i = scanString(d, i)
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
			i = SkipWS(d, i)
			if len(stack) == 0 {
				return i == len(d)
			}
			if i >= len(d) {
				return false
			}
			top := stack[len(stack)-1]
			if d[i] == ',' {
				i = SkipWS(d, i+1)
				if top == '{' {
					if i = scanKey(d, i); i < 0 {
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
func scanKey(d []byte, i int) int {
	if i >= len(d) || d[i] != '"' {
		return -1
	}
	if i = scanString(d, i); i < 0 {
		return -1
	}
	if i = SkipWS(d, i); i >= len(d) || d[i] != ':' {
		return -1
	}
	return SkipWS(d, i+1)
}

// scanString returns the offset after the string at d[i] ('"'), -1 if
// it is not a valid JSON string. The first words go a word at a time,
// testing for all three special bytes (quote, backslash, control) at once:
// that ends most keys and values. A longer string continues in scanLong.
func scanString(d []byte, i int) int {
	i++
	for words := 0; words < shortWords && len(d)-i >= 8; {
		m := special8(binary.LittleEndian.Uint64(d[i:]))
		if m == 0 {
			i += 8
			words++
			continue
		}
		// The lowest flagged byte is always a special one (the false
		// positives of the zero-byte test lie above a true one).
		i += bits.TrailingZeros64(m) >> 3
		switch d[i] {
		case '"':
			return i + 1
		case '\\':
			if i = scanEscape(d, i); i < 0 {
				return -1
			}
		default:
			return -1
		}
	}
	return scanLong(d, i)
}

// shortWords is how many words scanString tests before it hands a long
// string to scanLong.
const shortWords = 4

// scanLong scans the rest of a string from d[i] (inside it) and returns
// the offset after its closing quote, -1 if it is not valid. The closing
// quote and the backslashes are found with bytes.IndexByte (vectorised),
// control characters a word at a time; both searches only move forward,
// so a string full of escapes costs no more than its length.
func scanLong(d []byte, i int) int {
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
		if hasControl(d[i:end]) {
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

// hasControl reports whether s holds a control character (below 0x20),
// which a JSON string must escape. Eight bytes at a time: the classic
// "has a byte less than n" expression, exact as to whether one does.
func hasControl(s []byte) bool {
	for len(s) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		if (x-ones*0x20)&^x&highs != 0 {
			return true
		}
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 {
			return true
		}
	}
	return false
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
