// Package jsonscan validates JSON text quickly, for the destinations that
// must check records before sending them (destinations/postgres,
// destinations/elasticsearch). Valid agrees with encoding/json.Valid
// (fuzzed against it in destinations/postgres) and is several times
// faster.
package jsonscan

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

// strPlain marks the bytes that stand for themselves inside a JSON string.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

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
// invalid.
func scanString(d []byte, i int) int {
	for i++; i < len(d); i++ {
		for i < len(d) && strPlain[d[i]] {
			i++
		}
		if i >= len(d) {
			return -1
		}
		switch d[i] {
		case '"':
			return i + 1
		case '\\':
			i++
			if i >= len(d) {
				return -1
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(d) {
					return -1
				}
				for _, c := range d[i+1 : i+5] {
					if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
	return -1
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
