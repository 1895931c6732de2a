package jq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/pipeline"
)

func newProc(t testing.TB, query string) *Processor {
	t.Helper()
	opts := DefaultOptions()
	opts.Query = query
	p, err := New(compile(t, opts), pipeline.Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("New(%q): %v", query, err)
	}
	return p
}

func compile(t testing.TB, opts Options) Compiled {
	t.Helper()
	c, err := opts.Compile()
	if err != nil {
		t.Fatalf("Compile(%q): %v", opts.Query, err)
	}
	return c
}

func batchOf(stream string, data ...string) pipeline.Batch {
	b := pipeline.Batch{Stream: stream}
	for i, d := range data {
		b.Records = append(b.Records, pipeline.Record{ID: strconv.Itoa(i), Data: []byte(d)})
		b.Bytes += len(d)
	}
	return b
}

// The sample record of the Firehose Developer Guide ("Understand
// partitioning keys"); 1565382027 is 2019-08-09T20:20:27Z.
const docRecord = `{"type":{"device":"mobile","event":"user_clicked_submit_button"},"customer_id":"1234567890","event_timestamp":1565382027,"region":"sample_region"}`

func TestQueryShapes(t *testing.T) {
	tests := []struct {
		name, query, record string
		want                map[string]string
	}{
		{"doc example", `{customer_id: .customer_id, device: .type.device, year: .event_timestamp| strftime("%Y"), month: .event_timestamp| strftime("%m"), day: .event_timestamp| strftime("%d"), hour: .event_timestamp| strftime("%H")}`,
			docRecord, map[string]string{"customer_id": "1234567890", "device": "mobile", "year": "2019", "month": "08", "day": "09", "hour": "20"}},
		{"CDK form with quoted keys", `{"customer_id":.customer_id,"device":.type.device,"year":.event_timestamp|strftime("%Y")}`,
			docRecord, map[string]string{"customer_id": "1234567890", "device": "mobile", "year": "2019"}},
		{"shorthand key", `{region}`, docRecord, map[string]string{"region": "sample_region"}},
		{"nested and indexed", `{a: .x.y[1].z, b: .["odd key"]}`, `{"x":{"y":[{"z":"no"},{"z":"yes"}]},"odd key":"k"}`,
			map[string]string{"a": "yes", "b": "k"}},
		{"string concatenation in parentheses", `{dt: (.y + "-" + .m), id: ("c" + (.n|tostring))}`, `{"y":"2024","m":"05","n":7}`,
			map[string]string{"dt": "2024-05", "id": "c7"}},
		{"string interpolation", `{dt: "\(.y)/\(.m)"}`, `{"y":2024,"m":"05"}`, map[string]string{"dt": "2024/05"}},
		{"integer number", `{n: .n}`, `{"n":42}`, map[string]string{"n": "42"}},
		{"integral float without .0", `{n: .n}`, `{"n":42.0}`, map[string]string{"n": "42"}},
		{"fraction", `{n: .n}`, `{"n":1.5}`, map[string]string{"n": "1.5"}},
		{"negative via unary minus", `{n: -.n}`, `{"n":3}`, map[string]string{"n": "-3"}},
		{"large number as jq prints it", `{n: .n}`, `{"n":1e21}`, map[string]string{"n": "1e+21"}},
		{"epoch milliseconds", `{n: .ms}`, `{"ms":1565382027123}`, map[string]string{"n": "1565382027123"}},
		{"computed integer", `{n: (.a | length)}`, `{"a":[1,2,3]}`, map[string]string{"n": "3"}},
		{"booleans", `{t: .t, f: .f}`, `{"t":true,"f":false}`, map[string]string{"t": "true", "f": "false"}},
		{"empty string", `{s: .s}`, `{"s":""}`, map[string]string{"s": ""}},
		{"alternative operator default", `{c: (.country // "unknown")}`, `{}`, map[string]string{"c": "unknown"}},
		{"strftime full date", `{d: .ts | strftime("%Y-%m-%dT%H:%M:%SZ")}`, `{"ts":0}`, map[string]string{"d": "1970-01-01T00:00:00Z"}},
		{"fractional epoch", `{h: .ts | strftime("%H")}`, `{"ts":1565382027.999}`, map[string]string{"h": "20"}},
		{"ISO date via strptime", `{y: .d | strptime("%Y-%m-%dT%H:%M:%SZ") | mktime | strftime("%Y")}`, `{"d":"2021-03-04T05:06:07Z"}`,
			map[string]string{"y": "2021"}},
		{"function definition", `def up: ascii_upcase; {r: .r | up}`, `{"r":"eu"}`, map[string]string{"r": "EU"}},
		{"trailing newline", `{a: .a}`, "{\"a\":\"x\"}\n", map[string]string{"a": "x"}},
		{"unicode", `{a: .a}`, `{"a":"caf\u00e9 ☕"}`, map[string]string{"a": "café ☕"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProc(t, tt.query)
			b := batchOf("s", tt.record)
			out, failed, err := p.Process(context.Background(), b)
			if err != nil || len(failed) != 0 {
				t.Fatalf("Process: err=%v failed=%v", err, failed)
			}
			if len(out.Records) != 1 {
				t.Fatalf("got %d records", len(out.Records))
			}
			want := map[string]string{}
			for k, v := range tt.want {
				want[KeyPrefix+k] = v
			}
			if got := out.Records[0].Keys; !maps.Equal(got, want) {
				t.Errorf("keys = %q, want %q", got, want)
			}
			if string(out.Records[0].Data) != tt.record {
				t.Errorf("data changed: %q", out.Records[0].Data)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name, query, record, msg string
	}{
		{"not JSON", `{a: .a}`, `hello`, "Non JSON record provided"},
		{"empty record", `{a: .a}`, ``, "Non JSON record provided"},
		{"two concatenated objects", `{a: .a}`, `{"a":1}{"a":2}`, "Non JSON record provided"},
		{"truncated JSON", `{a: .a}`, `{"a":`, "Non JSON record provided"},
		{"missing key is null", `{a: .a, b: .b}`, `{"a":"x"}`, `partition key "b": the value is null`},
		{"explicit null", `{a: .a}`, `{"a":null}`, `partition key "a": the value is null`},
		{"array value", `{a: .a}`, `{"a":[1,2]}`, `partition key "a": the value is an array`},
		{"object value", `{a: .a}`, `{"a":{"b":1}}`, `partition key "a": the value is an object`},
		{"runtime error: strftime on a string", `{y: .ts | strftime("%Y")}`, `{"ts":"2020"}`, "query failed: strftime"},
		{"runtime error: index an array by name", `{a: .a}`, `[1,2]`, "query failed: expected an object"},
		{"runtime error: error()", `{a: error("boom")}`, `{}`, "query failed: error: boom"},
		{"runtime error: halt_error", `{a: ("x" | halt_error)}`, `{}`, "query failed"},
		{"no result", `{a: empty}`, `{}`, "no result"},
		{"several results", `{a: (.a, .b)}`, `{"a":"1","b":"2"}`, "more than one result"},
		{"several results from iteration", `{a: .a[]}`, `{"a":["x","y"]}`, "more than one result"},
		{"JSON scalar record", `{a: .a}`, `42`, "query failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProc(t, tt.query)
			b := batchOf("s", tt.record)
			out, failed, err := p.Process(context.Background(), b)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if len(out.Records) != 0 || len(failed) != 1 || failed[0].Index != 0 {
				t.Fatalf("out=%d records, failed=%v", len(out.Records), failed)
			}
			var ce *pipeline.CodedError
			if !errors.As(failed[0].Err, &ce) {
				t.Fatalf("error %T is not a CodedError", failed[0].Err)
			}
			if ce.ErrorCode() != "DynamicPartitioning.MetadataExtractionFailed" || ce.ErrorOutputType() != "metadata-extraction-failed" {
				t.Errorf("code=%q type=%q", ce.Code, ce.OutputType)
			}
			if !strings.Contains(ce.Err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", ce.Err.Error(), tt.msg)
			}
			if b.Records[0].Keys != nil {
				t.Errorf("failed record got keys %v", b.Records[0].Keys)
			}
		})
	}
}

func TestMixedBatchKeepsOrderAndInput(t *testing.T) {
	p := newProc(t, `{k: .k}`)
	in := []string{`{"k":"a"}`, `bad`, `{"k":"b"}`, `{"k":null}`, `{"k":"c"}`, `{}`}
	b := batchOf("orders", in...)
	b.Records[2].Keys = map[string]string{"partitionKeyFromLambda:x": "y"}
	out, failed, err := p.Process(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	var idx []int
	for _, f := range failed {
		idx = append(idx, f.Index)
	}
	if fmt.Sprint(idx) != "[1 3 5]" {
		t.Fatalf("failed indices %v, want [1 3 5]", idx)
	}
	var got []string
	for _, r := range out.Records {
		got = append(got, r.ID+"="+r.Keys[KeyPrefix+"k"])
	}
	if fmt.Sprint(got) != "[0=a 2=b 4=c]" {
		t.Errorf("output %v", got)
	}
	if want := len(in[0]) + len(in[2]) + len(in[4]); out.Bytes != want {
		t.Errorf("Bytes = %d, want %d", out.Bytes, want)
	}
	if out.Stream != "orders" || out.ID != b.ID {
		t.Errorf("batch identity changed: %+v", out)
	}
	if out.Records[1].Keys["partitionKeyFromLambda:x"] != "y" {
		t.Errorf("existing keys lost: %v", out.Records[1].Keys)
	}
	// The input batch is intact: the runner dead-letters from it by index.
	for i, r := range b.Records {
		if r.ID != strconv.Itoa(i) || string(r.Data) != in[i] {
			t.Errorf("input record %d changed: %+v", i, r)
		}
	}
	// No copy of record data.
	if &out.Records[0].Data[0] != &b.Records[0].Data[0] {
		t.Error("record data was copied")
	}
}

func TestLargeBatchManyKeys(t *testing.T) {
	p := newProc(t, `{customer: .customer, year: .ts | strftime("%Y")}`)
	const n, customers = 10000, 1000
	recs := make([]string, n)
	for i := range recs {
		ts := 946684800 + (i%3)*366*86400 // 2000, 2001, 2002
		recs[i] = fmt.Sprintf(`{"customer":"c%04d","ts":%d,"seq":%d}`, i%customers, ts, i)
	}
	b := batchOf("s", recs...)
	out, failed, err := p.Process(context.Background(), b)
	if err != nil || len(failed) != 0 {
		t.Fatalf("err=%v failed=%d", err, len(failed))
	}
	if len(out.Records) != n {
		t.Fatalf("%d records", len(out.Records))
	}
	partitions := map[string]int{}
	for i, r := range out.Records {
		c, y := r.Keys[KeyPrefix+"customer"], r.Keys[KeyPrefix+"year"]
		if want := fmt.Sprintf("c%04d", i%customers); c != want {
			t.Fatalf("record %d: customer %q, want %q", i, c, want)
		}
		if want := strconv.Itoa(2000 + i%3); y != want {
			t.Fatalf("record %d: year %q, want %q", i, y, want)
		}
		partitions[c+"/"+y]++
	}
	// i%1000 and i%3 together take lcm(1000,3)=3000 combinations.
	if len(partitions) != 3000 {
		t.Errorf("%d distinct partitions, want 3000", len(partitions))
	}
}

func TestRecordTimeout(t *testing.T) {
	opts := DefaultOptions()
	opts.Query = `{a: (.a | until(. < 0; . + 1))}`
	opts.RecordTimeout = 50 * time.Millisecond
	p, err := New(compile(t, opts), pipeline.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	b := batchOf("s", `{"a":1}`, `{"a":-5}`, `{"a":2}`, `{"a":-6}`)
	start := time.Now()
	out, failed, err := p.Process(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if len(failed) != 2 || failed[0].Index != 0 || failed[1].Index != 2 {
		t.Fatalf("failed = %v", failed)
	}
	if !strings.Contains(failed[0].Err.Error(), "longer than 50ms") {
		t.Errorf("message: %v", failed[0].Err)
	}
	// The records after a timed-out one get a fresh budget.
	if len(out.Records) != 2 || out.Records[0].Keys[KeyPrefix+"a"] != "-5" || out.Records[1].Keys[KeyPrefix+"a"] != "-6" {
		t.Errorf("out = %+v", out.Records)
	}
}

func TestCancelledContextFailsTheCall(t *testing.T) {
	p := newProc(t, `{a: (.a | until(. < 0; . + 1))}`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	b := batchOf("s", `{"a":1}`)
	_, failed, err := p.Process(ctx, b)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, failed = %v; want context.Canceled", err, failed)
	}
}

func TestEnvironmentIsHidden(t *testing.T) {
	t.Setenv("SLUICE_JQ_SECRET", "hunter2")
	p := newProc(t, `{a: (env.SLUICE_JQ_SECRET // "none"), b: ($ENV | length)}`)
	out, failed, err := p.Process(context.Background(), batchOf("s", `{}`))
	if err != nil || len(failed) != 0 {
		t.Fatalf("err=%v failed=%v", err, failed)
	}
	if got := out.Records[0].Keys; got[KeyPrefix+"a"] != "none" || got[KeyPrefix+"b"] != "0" {
		t.Errorf("keys = %v", got)
	}
}

func TestProcessorInterfaces(t *testing.T) {
	p := newProc(t, `{b: .b, a: .a}`)
	if got := p.ErrorOutputType(); got != "metadata-extraction-failed" {
		t.Errorf("ErrorOutputType = %q", got)
	}
	if got := p.Keys(); fmt.Sprint(got) != "[b a]" {
		t.Errorf("Keys = %v", got)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := DefaultOptions()
	opts.Query = `{a: .a}`
	p1, err := New(compile(t, opts), pipeline.Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := New(compile(t, opts), pipeline.Deps{Registry: reg}) // a second stream, same registry
	if err != nil {
		t.Fatalf("second New on the same registry: %v", err)
	}
	for range 3 {
		if _, _, err := p1.Process(context.Background(), batchOf("one", `{"a":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := p2.Process(context.Background(), batchOf("two", `bad`)); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"one": 3, "two": 1}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, mf := range mfs {
		if mf.GetName() != "sluice_jq_processing_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			stream := m.GetLabel()[0].GetValue()
			found++
			if got := int(m.GetHistogram().GetSampleCount()); got != want[stream] {
				t.Errorf("stream %s: %d observations, want %d", stream, got, want[stream])
			}
		}
	}
	if found != 2 {
		t.Errorf("%d series, want 2", found)
	}
	if p1.metrics.duration != p2.metrics.duration {
		t.Error("the second processor did not reuse the registered collector")
	}

	bad := prometheus.NewRegistry()
	bad.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_jq_processing_duration_seconds", Help: "x"}))
	if _, err := NewMetrics(bad); err == nil {
		t.Error("NewMetrics accepted a conflicting collector")
	}
}

func TestRenderNumbers(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{0.0, "0"}, {-0.5, "-0.5"}, {123456789012.0, "123456789012"}, {1e20, "100000000000000000000"},
		{1e21, "1e+21"}, {1e-7, "1e-7"}, {0.000001, "0.000001"}, {7, "7"}, {2.5e-10, "2.5e-10"},
	}
	for _, tt := range tests {
		got, err := render(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("render(%v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
