package jq

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/pipeline"
)

// fuzzRecords are evaluated with every compiled query, after the fuzzed
// record.
var fuzzRecords = []string{
	`{"customer_id":"1234567890","type":{"device":"mobile"},"event_timestamp":1565382027,"region":"sample_region","n":[1,2.5,{"x":null}]}`,
	`{"a":1,"a":"last wins","b":true,"\u0061\u0062":"ab","":0}`,
	`not json`,
	`[1,2]`,
	`"str"`,
	`{}`,
	``,
}

type fuzzOutcome struct {
	keys   map[string]string // nil when failed
	failed string            // the error, when failed
}

// fuzzRun processes one batch of data with c and returns each record's
// outcome, checking what Process promises: with a live context it does
// not fail as a whole, every record is either in the output (in order,
// data untouched, with every key set) or failed with the metadata
// extraction code, output type and an in-range, increasing index.
func fuzzRun(t *testing.T, c Compiled, data [][]byte) []fuzzOutcome {
	t.Helper()
	p, err := New(c, pipeline.Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	b := pipeline.Batch{Stream: "s"}
	for i, d := range data {
		b.Records = append(b.Records, pipeline.Record{ID: string(rune('a' + i)), Data: d})
	}
	out, failed, err := p.Process(context.Background(), b)
	if err != nil {
		t.Fatalf("Process failed as a whole: %v", err)
	}
	if len(out.Records)+len(failed) != len(data) {
		t.Fatalf("%d records out and %d failed, of %d", len(out.Records), len(failed), len(data))
	}
	outcomes := make([]fuzzOutcome, len(data))
	isFailed := map[int]bool{}
	for i, f := range failed {
		var ce *pipeline.CodedError
		if f.Index < 0 || f.Index >= len(data) || i > 0 && f.Index <= failed[i-1].Index || !errors.As(f.Err, &ce) ||
			ce.Code != CodeMetadataExtractionFailed || ce.OutputType != OutputMetadataExtractionFailed {
			t.Fatalf("failure %d: index %d, %#v", i, f.Index, f.Err)
		}
		isFailed[f.Index] = true
		outcomes[f.Index].failed = ce.Err.Error()
	}
	j := 0
	for i := range data {
		if isFailed[i] {
			continue
		}
		r := out.Records[j]
		j++
		if r.ID != b.Records[i].ID || string(r.Data) != string(data[i]) {
			t.Fatalf("output record %d is %q %q, want record %d", j-1, r.ID, r.Data, i)
		}
		for _, k := range c.keys {
			if _, ok := r.Keys[k.key]; !ok {
				t.Fatalf("record %d: no key %q in %v", i, k.key, r.Keys)
			}
		}
		outcomes[i].keys = r.Keys
	}
	return outcomes
}

// FuzzCompile compiles arbitrary metadata extraction queries: no panic; an
// error joins *pipeline.OptionErrors at key query; a compiled query has 1
// to MaxKeys unique, non-empty partition key names without braces, and
// runs on the fuzzed record and a few fixed ones (each bounded by a short
// record timeout) as Process promises (see fuzzRun). When the query reads
// the record only through some top-level fields, and so runs on a
// projection of the record (parse.go), every outcome is the same as on
// the whole record.
func FuzzCompile(f *testing.F) {
	for _, q := range []string{
		`{customer_id: .customer_id, device: .type.device, year: .event_timestamp| strftime("%Y")}`,
		`{"customer_id":.customer_id,"device":.type.device}`,
		`{region}`, `{"a"}`, `{$__loc__}`, `{a: .x.y[1].z, b: .["odd key"], c: ."a"}`,
		`{dt: (.y + "-" + .m), id: ("c" + (.n|tostring))}`, `{dt: "\(.y)/\(.m)"}`, `{n: -.n}`,
		`{c: (.country // "unknown")}`, `{a: .a, b: (.b | not)}`, `{a: .n[0], b: .n[-1:], c: .n[]?}`,
		`def up: ascii_upcase; {r: .r | up}`, `{a: .}`, `{a: (..|numbers)}`, `{a: (keys|join(","))}`,
		`{a: .a} | .a`, `{(.a): 1}`, `{"\(.a)": 1}`, `{a: if .a then 1 else 2 end}`, `{a: (if .a then 1 else 2 end)}`,
		`{}`, ``, `.`, `{a: .a, a: .b}`, `{"": .a}`, `{"{x}": .a}`, `import "m" as m; {a: .a}`,
		`{a: (.a|tojson), b: [.b, .c], c: (.[""] + 1)}`, `{a: .ab, b: ."a"}`, `{a: ([limit(3; repeat(.a))] | length)}`,
		`{a: (reduce range(1000000000) as $i (0; . + $i))}`,
	} {
		f.Add(q, []byte(`{"a":"x","b":2}`))
	}
	f.Add(`{a: .a}`, []byte(`{"a":1,"a":2}`))
	f.Add(`{a: .["\u00e9"]}`, []byte(`{"\u00e9":"escaped","é":"raw"}`))
	f.Add(`{a: ."x y", b: .b}`, []byte(" { \"x y\" : [ {\"}\":\"]\"} ] , \"b\" : \"\\\"\" } "))
	f.Add(`{a: .a}`, []byte(`{"a":1} trailing`))
	// A member name that is not UTF-8: the projection decodes it as the
	// whole-record decode does (U+FFFD); it once compared raw bytes
	// (transform/jq/parse.go memberName).
	f.Add(`{a: ."\ufffd"}`, []byte("{\"\xff\":1}"))
	f.Add(`{a: ."\ufffd", b: .b}`, []byte("{\"b\":0,\"\xfe\xff\":2}"))
	f.Fuzz(func(t *testing.T, query string, record []byte) {
		opts := DefaultOptions()
		opts.Query = query
		opts.RecordTimeout = 50 * time.Millisecond
		c, err := opts.Compile()
		if err != nil {
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %T is not joined: %v", err, err)
			}
			for _, e := range joined.Unwrap() {
				var oe *pipeline.OptionError
				if !errors.As(e, &oe) || oe.Key != "query" || oe.Err == nil || oe.Err.Error() == "" {
					t.Fatalf("not a query option error: %#v", e)
				}
			}
			return
		}
		names := c.Keys()
		if len(names) == 0 || len(names) > MaxKeys {
			t.Fatalf("%d keys", len(names))
		}
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, "{}") || seen[n] {
				t.Fatalf("key names %q", names)
			}
			seen[n] = true
		}

		data := [][]byte{record}
		for _, r := range fuzzRecords {
			data = append(data, []byte(r))
		}
		got := fuzzRun(t, c, data)
		if c.fields == nil || strings.Contains(query, "now") {
			return // no projection (or a clock read: values differ between runs)
		}
		whole := c
		whole.fields = nil
		want := fuzzRun(t, whole, data)
		for i := range data {
			g, w := got[i], want[i]
			if strings.Contains(g.failed, "ran longer than") || strings.Contains(w.failed, "ran longer than") {
				continue
			}
			if g.failed != w.failed || !maps.Equal(g.keys, w.keys) {
				t.Fatalf("query %q on %q, reading fields %v: projected %v %q; whole record %v %q",
					query, data[i], slices.Sorted(maps.Keys(c.fields)), g.keys, g.failed, w.keys, w.failed)
			}
		}
	})
}
