package deaggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// errTooMany is wrapped by the errors of records with more sub-records
// than the limit.
var errTooMany = errors.New("too many sub-records")

// splitJSON appends to dst the JSON objects data holds, concatenated or
// separated by JSON whitespace (JSON Lines), as sub-slices of data without
// the whitespace. Firehose accepts only objects: an array, any other value,
// a separator such as a comma, invalid JSON, or no object at all is an
// error. It fails, wrapping errTooMany, past max objects (max 0: no
// limit); on error dst is returned as it was.
func splitJSON(data []byte, max int, dst [][]byte) ([][]byte, error) {
	start := len(dst)
	for i := skipSpace(data, 0); i < len(data); i = skipSpace(data, i) {
		n := len(dst) - start
		switch data[i] {
		case '{':
		case '[':
			return dst[:start], fmt.Errorf("byte %d: a JSON array is not valid input; send concatenated or newline-separated objects", i)
		default:
			return dst[:start], fmt.Errorf("byte %d: expected a JSON object after %d objects, found %q", i, n, data[i])
		}
		end, ok := objectEnd(data, i)
		if !ok {
			return dst[:start], fmt.Errorf("byte %d: JSON object %d is not terminated", i, n)
		}
		if !json.Valid(data[i:end]) {
			return dst[:start], fmt.Errorf("byte %d: JSON object %d is not valid JSON", i, n)
		}
		if max > 0 && n == max {
			return dst[:start], fmt.Errorf("%w: more than %d JSON objects", errTooMany, max)
		}
		dst = append(dst, data[i:end:end])
		i = end
	}
	if len(dst) == start {
		return dst, errors.New("no JSON object in the record")
	}
	return dst, nil
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
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

// objectEnd returns the index just past the '}' that closes the object
// opening at data[i] == '{', counting brackets outside strings. Whether
// the brackets match and the text is valid JSON is left to json.Valid.
func objectEnd(data []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case '"':
			for i++; ; i++ {
				if i >= len(data) {
					return 0, false
				}
				if data[i] == '\\' {
					i++
					continue
				}
				if data[i] == '"' {
					break
				}
			}
		}
	}
	return 0, false
}

// splitDelimited appends to dst the pieces of data between occurrences of
// delim, without the delimiters, as sub-slices of data. A delimiter ends a
// sub-record: the empty piece after a final delimiter is not one, the empty
// pieces between two adjacent delimiters are. A record without the
// delimiter is one sub-record, even when empty. It fails, wrapping
// errTooMany, past max pieces (max 0: no limit); on error dst is returned
// as it was.
func splitDelimited(data, delim []byte, max int, dst [][]byte) ([][]byte, error) {
	start := len(dst)
	rest := data
	for {
		j := bytes.Index(rest, delim)
		if j < 0 {
			if len(rest) > 0 || len(dst) == start {
				dst = append(dst, rest)
			}
			break
		}
		dst = append(dst, rest[:j:j])
		rest = rest[j+len(delim):]
		if max > 0 && len(dst)-start > max {
			break
		}
	}
	if max > 0 && len(dst)-start > max {
		return dst[:start], fmt.Errorf("%w: more than %d delimited sub-records", errTooMany, max)
	}
	return dst, nil
}
