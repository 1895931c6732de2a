package jq

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pipeline"
)

func TestRootFields(t *testing.T) {
	tests := []struct {
		query string
		want  string // sorted field names, or "whole"
	}{
		{`{customer_id: .customer_id, device: .type.device, year: .ts | strftime("%Y")}`, "[customer_id ts type]"},
		{`{a: .["odd key"].x, b: ."q", c: .arr[0], d: .arr[-1], e: .m["k"]}`, "[arr m odd key q]"},
		{`{a, "b"}`, "[a b]"},
		{`{a: (.x + "-" + .y), b: (.p // .q), c: [.r, .s] | join("/")}`, "[p q r s x y]"},
		{`{a: "\(.y)/\(.m)", b: 1, c: "const", d: null, e: -.n}`, "[m n y]"},
		{`{a: .x[]?, b: .z | keys | length}`, "[x z]"},
		{`{a: .}`, "whole"},
		{`{a: (. | length)}`, "whole"},
		{`{a: keys[0]}`, "whole"},
		{`{a: .x[.i]}`, "whole"},
		{`{a: (.x as $v | $v)}`, "whole"},
		{`{a: ..}`, "whole"},
		{`{a: tojson}`, "whole"},
		{`{a: @base64}`, "whole"},
		{`{a: .[0]}`, "whole"},
		{`{a: .x[1:2]}`, "[x]"},
		{`{a: .x[.i:]}`, "whole"},
		{`{a: (.x |= 1)}`, "whole"},
		{`def f: .x; {a: .y | f}`, "whole"},
		{`{a: (def f: .x; f)}`, "whole"},
	}
	for _, tt := range tests {
		o := DefaultOptions()
		o.Query = tt.query
		c, err := o.Compile()
		if err != nil {
			t.Errorf("%s: %v", tt.query, err)
			continue
		}
		got := "whole"
		if c.fields != nil {
			got = fmt.Sprint(slices.Sorted(maps.Keys(c.fields)))
		}
		if got != tt.want {
			t.Errorf("%s: fields %s, want %s", tt.query, got, tt.want)
		}
	}
}

// TestProjectionMatchesWholeDecode runs projectable queries on tricky
// records with and without projection and requires identical outcomes.
func TestProjectionMatchesWholeDecode(t *testing.T) {
	queries := []string{
		`{a: .a, b: .type.device, y: .ts | strftime("%Y")}`,
		`{a: (.a // "none"), k: ."we\"ird", u: .["é"]}`,
		`{n: .arr[1], s: "\(.a)-\(.ts)"}`,
	}
	records := []string{
		`{"a":"x","type":{"device":"d"},"ts":0}`,
		`{"a":"first","a":"last","type":{"device":"d","a":"inner"},"ts":1565382027}`,
		`  {"skip":{"a":"no","arr":[1,{"x":"}]"}]},"a":"yes","type":{"device":"m"},"ts":1e9}  ` + "\n",
		`{"s\"kip":"\"}{[","we\"ird":"w","\u00e9":"accent","a":"v","type":{"device":"z"},"ts":5,"arr":[0,7]}`,
		`{"a":"x","type":{"device":"d"},"ts":0,"big":[[[[[[["deep"]]]]]]],"n":-1.5e-3,"t":true,"f":false,"z":null}`,
		`{"type":{"device":"d"},"ts":0}`,
		`{"a":"x","type":"notobj","ts":0}`,
		`{"a":"x","type":{"device":"d"},"ts":"str"}`,
		`{}`,
		`{"a":1,}`,
		`{"a":1}{"a":2}`,
		`{"a":"x"`,
		`[{"a":1}]`,
		`"a"`,
		`null`,
		``,
		"{\"a\":\"bad utf8 \xff\",\"type\":{\"device\":\"d\"},\"ts\":0}",
	}
	for _, q := range queries {
		proj := newProc(t, q)
		if proj.c.fields == nil {
			t.Fatalf("%s: not projected", q)
		}
		whole := newProc(t, q)
		whole.c.fields = nil
		for _, r := range records {
			got, want := outcome(t, proj, r), outcome(t, whole, r)
			if got != want {
				t.Errorf("query %s, record %q:\nprojected %s\nwhole     %s", q, r, got, want)
			}
		}
	}
}

func outcome(t *testing.T, p *Processor, record string) string {
	t.Helper()
	out, failed, err := p.Process(context.Background(), batchOf("s", record))
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) > 0 {
		msg := failed[0].Err.Error()
		if strings.Contains(msg, msgNonJSON) {
			return "non-JSON" // the decoder's detail may differ
		}
		return "failed: " + msg
	}
	return fmt.Sprint(out.Records[0].Keys)
}

func TestProjectionSkipsValuesWithoutDecoding(t *testing.T) {
	big := `{"payload":"` + strings.Repeat("x", 1<<20) + `","nested":{"a":"wrong"},"a":"right"}`
	run := func(p *Processor) uint64 {
		b := pipeline.Batch{Records: []pipeline.Record{{Data: []byte(big)}}}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, failed, err := p.Process(context.Background(), b)
		runtime.ReadMemStats(&after)
		if err != nil || len(failed) > 0 || out.Records[0].Keys[KeyPrefix+"a"] != "right" {
			t.Fatalf("err=%v failed=%v", err, failed)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	proj := newProc(t, `{a: .a}`)
	whole := newProc(t, `{a: .a}`)
	whole.c.fields = nil
	// A whole decode copies the 1 MiB payload into a string; the
	// projection only validates and skips it.
	if w := run(whole); w < 1<<20 {
		t.Fatalf("whole decode allocated %d bytes; the comparison is meaningless", w)
	}
	if p := run(proj); p > 64<<10 {
		t.Errorf("projected decode allocated %d bytes for a record with a 1 MiB unused member", p)
	}
}
