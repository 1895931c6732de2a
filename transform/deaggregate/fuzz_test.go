package deaggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/sluice-dev/sluice/pipeline"
)

// FuzzKPL feeds arbitrary protobuf bodies (framed with a valid digest, so
// that the decoder runs) and arbitrary raw records: no panic, and every
// user record's data lies inside the record.
func FuzzKPL(f *testing.F) {
	f.Add(aggregatedMessage([]string{"a", "b"}, []string{"e"}, []userRecord{{pk: 1, ehk: 0, data: "x"}, {pk: 0, ehk: -1, data: ""}}), false)
	f.Add((&pbw{}).tag(5, 3).b, false)
	f.Add([]byte{0xF3, 0x89, 0x9A, 0xC2, 1, 2, 3}, true)
	f.Add([]byte{0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f}, false)
	p, _ := newProc(f, Options{SubRecordType: TypeKPL})
	f.Fuzz(func(t *testing.T, body []byte, raw bool) {
		data := body
		if !raw {
			data = frame(body)
		}
		out, failed, err := p.Process(context.Background(), pipeline.Batch{Stream: "s", Records: []pipeline.Record{{ID: "r", Data: data}}})
		if err != nil || len(failed) != 0 {
			t.Fatalf("err=%v failed=%v", err, failed)
		}
		for _, r := range out.Records {
			if len(r.Data) > 0 && !within(data, r.Data) {
				t.Fatalf("record %q data is not inside the input", r.ID)
			}
		}
		// The sub-record limit cuts nothing silently: under it, the records
		// are those decoded without a limit; over it, errTooMany, and
		// without a limit either more records or another error.
		limited, err := decodeKPL(body, 3, nil)
		all, allErr := decodeKPL(body, 0, nil)
		switch {
		case errors.Is(allErr, errTooMany):
			t.Fatalf("no limit, yet %v", allErr)
		case err == nil && (allErr != nil || len(all) != len(limited) || len(limited) > 3):
			t.Fatalf("limit 3: %d records; no limit: %d records, %v", len(limited), len(all), allErr)
		case errors.Is(err, errTooMany) && allErr == nil && len(all) <= 3:
			t.Fatalf("limit 3: %v, but only %d records", err, len(all))
		case err != nil && !errors.Is(err, errTooMany) && (allErr == nil || err.Error() != allErr.Error()):
			t.Fatalf("limit 3: %v; no limit: %v", err, allErr)
		}
	})
}

// FuzzSplitJSON: no panic; on success every piece is a valid JSON object,
// the pieces appear in order in the input, and only whitespace lies
// between them.
func FuzzSplitJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}{"a":2}`, "{\"a\":\"}\\\"\"}\n{}", `[{}]`, `{"a":[}`, `{`, `"`, ` `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pieces, err := splitJSON(data, 0, nil)
		if err != nil {
			if len(pieces) != 0 {
				t.Fatalf("error %v with %d pieces", err, len(pieces))
			}
			return
		}
		rest := data
		for _, pc := range pieces {
			var obj map[string]any
			if err := json.Unmarshal(pc, &obj); err != nil || obj == nil {
				t.Fatalf("piece %q is not a JSON object: %v", pc, err)
			}
			i := bytes.Index(rest, pc)
			if i < 0 || len(bytes.Trim(rest[:i], " \t\r\n")) != 0 {
				t.Fatalf("piece %q is not next in %q", pc, rest)
			}
			rest = rest[i+len(pc):]
		}
		if len(bytes.Trim(rest, " \t\r\n")) != 0 {
			t.Fatalf("trailing %q", rest)
		}
	})
}

// FuzzSplitDelimited: joining the pieces with the delimiter gives the
// input back, less one final delimiter.
func FuzzSplitDelimited(f *testing.F) {
	f.Add([]byte("a####b####"), []byte("####"))
	f.Add([]byte("aaa"), []byte("aa"))
	f.Add([]byte(""), []byte("\n"))
	f.Fuzz(func(t *testing.T, data, delim []byte) {
		if len(delim) == 0 {
			return // Validate refuses an empty delimiter
		}
		pieces, err := splitDelimited(data, delim, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		joined := bytes.Join(pieces, delim)
		if !bytes.Equal(joined, data) && !bytes.Equal(append(joined, delim...), data) {
			t.Fatalf("split(%q, %q) = %q", data, delim, pieces)
		}
	})
}

// within reports whether sub is a sub-slice of b (same memory).
func within(b, sub []byte) bool {
	if len(b) == 0 || len(sub) == 0 || cap(sub) == 0 {
		return false
	}
	for i := range b {
		if &b[i] == &sub[0] {
			return i+len(sub) <= len(b)
		}
	}
	return false
}
