package wasm

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/pipeline"
)

// fzResult is a result as a guest means it (ABI.md §2.2): data nil means
// "unchanged".
type fzResult struct {
	code byte
	id   string
	data []byte
	keys [][2]string
	msg  string
}

func fzU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func fzBytes(b, s []byte) []byte { return append(fzU32(b, uint32(len(s))), s...) }

// fzOutput encodes a status-0 output buffer.
func fzOutput(rs ...fzResult) []byte {
	b := fzU32(fzU32(fzU32([]byte(magicOut), ABIVersion), statusResults), uint32(len(rs)))
	for _, r := range rs {
		b = append(b, r.code)
		b = fzBytes(b, []byte(r.id))
		if r.data == nil {
			b = fzU32(b, dataUnchanged)
		} else {
			b = fzBytes(b, r.data)
		}
		b = fzU32(b, uint32(len(r.keys)))
		for _, kv := range r.keys {
			b = fzBytes(fzBytes(b, []byte(kv[0])), []byte(kv[1]))
		}
		b = fzBytes(b, []byte(r.msg))
	}
	return b
}

// fzFailure encodes a status-1 output buffer.
func fzFailure(msg string) []byte {
	return fzBytes(fzU32(fzU32([]byte(magicOut), ABIVersion), statusFailed), []byte(msg))
}

// reencode encodes decoded results back: the output format has exactly
// one encoding per content, so a buffer decodeOutput accepts must come
// back byte for byte.
func reencode(rs []outResult) []byte {
	b := fzU32(fzU32(fzU32([]byte(magicOut), ABIVersion), statusResults), uint32(len(rs)))
	for _, r := range rs {
		b = append(b, r.result)
		b = fzBytes(b, r.id)
		if r.unchanged {
			b = fzU32(b, dataUnchanged)
		} else {
			b = fzBytes(b, r.data)
		}
		b = fzU32(b, r.nkeys)
		b = append(b, r.keys...)
		b = fzBytes(b, r.msg)
	}
	return b
}

// fzInput is the batch the fuzzed output answers.
func fzInput() []pipeline.Record {
	return []pipeline.Record{
		{ID: "r0", Data: []byte(`{"a":1}`)},
		{ID: "r1", Data: []byte("plain"), Keys: map[string]string{"partitionKeyFromQuery:q": "v"}},
		{ID: "r2", Data: nil},
	}
}

// FuzzDecodeOutput feeds arbitrary guest output buffers to decodeOutput
// and applies what it accepts to a fixed input batch, as a call does.
//
// decodeOutput: no panic; an error is a *guestError (status 1, whose
// buffer is exactly the message's encoding) or wraps errInvalid; an
// accepted buffer is exactly the encoding of its results (nothing
// skipped, nothing trailing), each with a known result code, unchanged
// data only as "unchanged", and non-empty, unique partition keys.
//
// apply: every input record has exactly one outcome, in input order, as
// ABI.md §6 says: no result for its recordId → Lambda.MissingRecordId,
// several → Lambda.DuplicatedRecordId, else its result's code (Ok records
// with the new data or the input's, and the input's keys plus the
// guest's under KeyPrefix; ProcessingFailed with its message); results
// for other recordIds change nothing; error indexes are those of the
// batch; and the output does not alias the guest's buffer, which the next
// call overwrites.
func FuzzDecodeOutput(f *testing.F) {
	unchanged := []byte(nil)
	for _, b := range [][]byte{
		fzOutput(),
		fzOutput(fzResult{id: "r0", data: unchanged}, fzResult{id: "r1", data: []byte("new")}, fzResult{id: "r2", data: []byte{}}),
		fzOutput(fzResult{id: "r0", data: unchanged, keys: [][2]string{{"k", "v"}}}),
		fzOutput(fzResult{id: "r2", code: resultDropped, data: unchanged}, fzResult{id: "r0", code: resultProcessingFailed, data: []byte{}, msg: "bad"},
			fzResult{id: "r1", data: []byte("x"), keys: [][2]string{{"year", "2024"}, {"q", ""}}}),
		fzOutput(fzResult{id: "r0", data: unchanged}, fzResult{id: "r0", code: resultDropped, data: unchanged}, fzResult{id: "zz", data: []byte("?")}),
		fzOutput(fzResult{id: "r1", data: unchanged, keys: [][2]string{{"a", "1"}, {"b", "2"}, {"a", "3"}}}),
		fzOutput(fzResult{id: "r1", data: unchanged, keys: [][2]string{{"", "1"}}}),
		fzOutput(fzResult{id: "r1", code: 3, data: unchanged}),
		fzFailure("the module reported a failure"),
		fzFailure(""),
		[]byte("SLUO"),
		[]byte("SLUO\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"),
		// ABI.md §7.
		[]byte("SLUO\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x02\x00\x00\x00r1\xff\xff\xff\xff\x01\x00\x00\x00\x01\x00\x00\x00k\x01\x00\x00\x00v\x00\x00\x00\x00"),
	} {
		f.Add(b)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	p := &Processor{e: &engine{name: "fuzz.wasm"}, m: m, log: slog.New(slog.DiscardHandler), unknown: newLineLimiter(1, time.Hour)}
	var reuse []outResult // as instance.results
	const base = 7
	f.Fuzz(func(t *testing.T, buf []byte) {
		buf = bytes.Clone(buf) // it stands for guest memory: overwritten below
		rs, err := decodeOutput(buf, reuse)
		if err != nil {
			var ge *guestError
			switch {
			case errors.As(err, &ge):
				if !bytes.Equal(fzFailure(ge.msg), buf) {
					t.Fatalf("status 1 with message %q, from %q", ge.msg, buf)
				}
			case !errors.Is(err, errInvalid):
				t.Fatalf("error neither invalid output nor the guest's: %v", err)
			}
			if rs != nil {
				t.Fatalf("error %v with %d results", err, len(rs))
			}
			return
		}
		reuse = rs
		if again := reencode(rs); !bytes.Equal(again, buf) {
			t.Fatalf("accepted %q, which is not the encoding of its results %q", buf, again)
		}
		for i, r := range rs {
			if r.result > resultProcessingFailed {
				t.Fatalf("result %d: code %d", i, r.result)
			}
			if r.unchanged && r.data != nil {
				t.Fatalf("result %d: unchanged with data %q", i, r.data)
			}
			seen := map[string]bool{}
			n := uint32(0)
			eachKey(r.keys, r.nkeys, func(k, _ []byte) {
				n++
				if len(k) == 0 || seen[string(k)] {
					t.Fatalf("result %d: partition key %q empty or repeated", i, k)
				}
				seen[string(k)] = true
			})
			if n != r.nkeys {
				t.Fatalf("result %d: %d keys, %d visited", i, r.nkeys, n)
			}
		}

		// The expected outcome of each input record.
		recs := fzInput()
		type want struct {
			code string // "" Ok, "-" Dropped, else the error code
			data []byte
			keys map[string]string
			msg  string
		}
		wants := make([]want, len(recs))
		for i, rec := range recs {
			var mine []outResult
			for _, r := range rs {
				if string(r.id) == rec.ID {
					mine = append(mine, r)
				}
			}
			switch {
			case len(mine) == 0:
				wants[i] = want{code: CodeMissingRecordID}
			case len(mine) > 1:
				wants[i] = want{code: CodeDuplicatedRecordID}
			case mine[0].result == resultDropped:
				wants[i] = want{code: "-"}
			case mine[0].result == resultProcessingFailed:
				msg := MsgProcessingFailed
				if len(mine[0].msg) > 0 {
					msg += ": " + string(mine[0].msg)
				}
				wants[i] = want{code: CodeProcessingFailedStatus, msg: msg}
			default:
				w := want{data: rec.Data, keys: rec.Keys}
				if !mine[0].unchanged {
					w.data = bytes.Clone(mine[0].data)
				}
				if mine[0].nkeys > 0 {
					w.keys = maps.Clone(rec.Keys)
					if w.keys == nil {
						w.keys = map[string]string{}
					}
					eachKey(mine[0].keys, mine[0].nkeys, func(k, v []byte) { w.keys[KeyPrefix+string(k)] = string(v) })
				}
				wants[i] = w
			}
		}

		out := make([]pipeline.Record, len(recs))
		res := p.apply("s", recs, base, rs, out)
		// The next call overwrites the guest's memory.
		for i := range buf {
			buf[i] = 0xAA
		}
		if res.err != nil {
			t.Fatalf("apply: %v", res.err)
		}
		ok, ei := 0, 0
		for i, w := range wants {
			switch w.code {
			case "-":
			case "":
				if ok >= res.ok {
					t.Fatalf("record %d: Ok expected, only %d Ok records", i, res.ok)
				}
				o := out[ok]
				ok++
				if o.ID != recs[i].ID || !bytes.Equal(o.Data, w.data) || !maps.Equal(o.Keys, w.keys) {
					t.Fatalf("record %d: output %q %q %v, want %q %v", i, o.ID, o.Data, o.Keys, w.data, w.keys)
				}
			default:
				if ei >= len(res.errs) {
					t.Fatalf("record %d: %s expected, only %d errors", i, w.code, len(res.errs))
				}
				e := res.errs[ei]
				ei++
				var ce *pipeline.CodedError
				if e.Index != base+i || !errors.As(e.Err, &ce) || ce.Code != w.code || ce.OutputType != pipeline.OutputProcessingFailed ||
					w.msg != "" && ce.Err.Error() != w.msg {
					t.Fatalf("record %d: error %d %v, want index %d code %s %q", i, e.Index, e.Err, base+i, w.code, w.msg)
				}
			}
		}
		if ok != res.ok || ei != len(res.errs) {
			t.Fatalf("%d Ok records and %d errors, want %d and %d", res.ok, len(res.errs), ok, ei)
		}
	})
}
