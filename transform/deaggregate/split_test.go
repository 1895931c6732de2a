package deaggregate

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/transformtest"
)

func TestSplitJSON(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: error
	}{
		{`{"a":1}{"a":2}`, []string{`{"a":1}`, `{"a":2}`}},
		{"{\"a\":1}\n{\"a\":2}\n", []string{`{"a":1}`, `{"a":2}`}},
		{" \t{\"a\":1}\r\n\r\n{\"b\":[1,{\"c\":2}]}  ", []string{`{"a":1}`, `{"b":[1,{"c":2}]}`}},
		{`{"s":"}{"}{"s":"\"}"}`, []string{`{"s":"}{"}`, `{"s":"\"}"}`}},
		{`{"s":"\\"}{}`, []string{`{"s":"\\"}`, `{}`}},
		{`{"é":"ü"}`, []string{`{"é":"ü"}`}},
		{`[{"a":1},{"a":2}]`, nil},
		{`{"a":1},{"a":2}`, nil},
		{`{"a":1} 5`, nil},
		{`"text"`, nil},
		{`{"a":1`, nil},
		{`{"a":"1}`, nil},
		{`{"a":}`, nil},
		{`{"a":1]`, nil},
		{`{"a":[1}]}`, nil},
		{`{'a':1}`, nil},
		{``, nil},
		{" \n ", nil},
	}
	for _, tt := range tests {
		got, err := splitJSON([]byte(tt.in), 0, nil)
		if tt.want == nil {
			if err == nil {
				t.Errorf("splitJSON(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("splitJSON(%q): %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("splitJSON(%q) = %q, want %q", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tt.want[i] {
				t.Errorf("splitJSON(%q)[%d] = %q, want %q", tt.in, i, got[i], tt.want[i])
			}
		}
	}
	if _, err := splitJSON([]byte(`[1]`), 0, nil); err == nil || !strings.Contains(err.Error(), "array") {
		t.Errorf("array error = %v, want one naming the array", err)
	}
	three := []byte(`{}{}{}`)
	if got, err := splitJSON(three, 3, nil); err != nil || len(got) != 3 {
		t.Errorf("3 objects, max 3: %q %v", got, err)
	}
	if _, err := splitJSON(three, 2, nil); !errors.Is(err, errTooMany) {
		t.Errorf("3 objects, max 2: %v, want errTooMany", err)
	}
}

func TestSplitDelimited(t *testing.T) {
	tests := []struct {
		in, delim string
		want      []string
	}{
		{"a####b", "####", []string{"a", "b"}},
		{"a####b####", "####", []string{"a", "b"}},
		{"a########b", "####", []string{"a", "", "b"}},
		{"####a", "####", []string{"", "a"}},
		{"####", "####", []string{""}},
		{"abc", "####", []string{"abc"}},
		{"", "####", []string{""}},
		{"aaa", "aa", []string{"", "a"}},
		{"l1\nl2\nl3\n", "\n", []string{"l1", "l2", "l3"}},
		{"x\r\ny", "\r\n", []string{"x", "y"}},
	}
	for _, tt := range tests {
		got, err := splitDelimited([]byte(tt.in), []byte(tt.delim), 0, nil)
		if err != nil {
			t.Errorf("splitDelimited(%q, %q): %v", tt.in, tt.delim, err)
			continue
		}
		var s []string
		for _, g := range got {
			s = append(s, string(g))
		}
		if strings.Join(s, "|") != strings.Join(tt.want, "|") || len(s) != len(tt.want) {
			t.Errorf("splitDelimited(%q, %q) = %q, want %q", tt.in, tt.delim, s, tt.want)
		}
	}
	if got, err := splitDelimited([]byte("a,b,"), []byte(","), 2, nil); err != nil || len(got) != 2 {
		t.Errorf("2 pieces, max 2: %q %v", got, err)
	}
	if _, err := splitDelimited([]byte("a,b,c"), []byte(","), 2, nil); !errors.Is(err, errTooMany) {
		t.Errorf("3 pieces, max 2: %v", err)
	}
}

func TestProcessJSON(t *testing.T) {
	p, _ := newProc(t, Options{SubRecordType: TypeJSON})
	in := batchOf(
		[]byte(`{"a":1}`),                 // unchanged
		[]byte("{\"a\":2}\n"),             // one object, trimmed
		[]byte(`{"a":3}{"a":4}`),          // split
		[]byte(`[{"a":5}]`),               // fails
		[]byte(strings.Repeat("{}", 501)), // over Firehose's cap
	)
	in.Records[2].Keys = map[string]string{"k": "v"}
	out, failed, err := p.Process(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ id, data string }{{"r0", `{"a":1}`}, {"r1", `{"a":2}`}, {"r2-0", `{"a":3}`}, {"r2-1", `{"a":4}`}}
	if len(out.Records) != len(want) {
		t.Fatalf("%d records: %+v", len(out.Records), out.Records)
	}
	for i, w := range want {
		if out.Records[i].ID != w.id || string(out.Records[i].Data) != w.data {
			t.Errorf("record %d = %q %q, want %v", i, out.Records[i].ID, out.Records[i].Data, w)
		}
	}
	if out.Records[2].Keys["k"] != "v" || out.Records[3].Keys["k"] != "v" {
		t.Error("split records lost the parent's keys")
	}
	if &out.Records[0].Data[0] != &in.Records[0].Data[0] || &out.Records[3].Data[0] != &in.Records[2].Data[7] {
		t.Error("record data were copied")
	}
	wantFail := map[int]string{3: CodeInvalidJSON, 4: CodeTooManySubRecords}
	if len(failed) != len(wantFail) {
		t.Fatalf("failed = %v", failed)
	}
	for _, f := range failed {
		var ce *pipeline.CodedError
		if !errors.As(f.Err, &ce) || ce.Code != wantFail[f.Index] || ce.OutputType != pipeline.OutputProcessingFailed {
			t.Errorf("record %d: %v, want code %s", f.Index, f.Err, wantFail[f.Index])
		}
	}
	if string(in.Records[1].Data) != "{\"a\":2}\n" || in.Records[2].ID != "r2" || len(in.Records) != 5 {
		t.Error("the input batch changed")
	}
	if p.ErrorOutputType() != pipeline.OutputProcessingFailed {
		t.Errorf("ErrorOutputType = %q", p.ErrorOutputType())
	}
}

func TestProcessDelimited(t *testing.T) {
	for _, opts := range []Options{
		{SubRecordType: TypeDelimited, DelimiterBase64: "IyMjIw=="}, // the Firehose documentation's "####"
		{SubRecordType: TypeDelimited, Delimiter: "####"},
	} {
		p, _ := newProc(t, opts)
		out, failed, err := p.Process(context.Background(), batchOf([]byte("a####bb####"), []byte("plain")))
		if err != nil || len(failed) != 0 {
			t.Fatalf("%+v: err=%v failed=%v", opts, err, failed)
		}
		var got []string
		for _, r := range out.Records {
			got = append(got, r.ID+"="+string(r.Data))
		}
		if strings.Join(got, ",") != "r0-0=a,r0-1=bb,r1=plain" {
			t.Errorf("%+v: %v", opts, got)
		}
		if out.Bytes != 1+2+5 {
			t.Errorf("Bytes = %d", out.Bytes)
		}
	}
	p, _ := newProc(t, Options{SubRecordType: TypeDelimited, Delimiter: ",", MaxSubRecords: 3})
	if p.SubRecordType() != TypeDelimited {
		t.Errorf("SubRecordType = %q", p.SubRecordType())
	}
	_, failed, _ := p.Process(context.Background(), batchOf([]byte("1,2,3,4")))
	if len(failed) != 1 {
		t.Fatalf("failed = %v", failed)
	}
}

func TestProcessUnchangedBatch(t *testing.T) {
	p, _ := newProc(t, Options{SubRecordType: TypeJSON})
	in := batchOf([]byte(`{"a":1}`), []byte(`{"b":2}`))
	out, failed, err := p.Process(context.Background(), in)
	if err != nil || len(failed) != 0 || len(out.Records) != 2 || &out.Records[0] != &in.Records[0] {
		t.Errorf("a batch without aggregated records should come back as it is: %v %v", err, failed)
	}
}

func TestProcessCancelled(t *testing.T) {
	p, _ := newProc(t, Options{SubRecordType: TypeJSON})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := p.Process(ctx, batchOf([]byte(`{}`))); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		opts Options
		keys []string // the OptionErrors' keys, in order; nil: valid
		errs []string // substrings
	}{
		{Options{SubRecordType: TypeKPL}, nil, nil},
		{Options{SubRecordType: TypeJSON, MaxSubRecords: 10}, nil, nil},
		{Options{SubRecordType: TypeDelimited, Delimiter: "\n"}, nil, nil},
		{Options{SubRecordType: TypeDelimited, DelimiterBase64: "Cg=="}, nil, nil},
		{Options{}, []string{"sub_record_type"}, []string{"sub_record_type: required"}},
		{Options{SubRecordType: "json"}, []string{"sub_record_type"}, []string{`sub_record_type: "json" is not one of`}},
		{Options{SubRecordType: TypeDelimited}, []string{"delimiter"}, []string{"delimiter: required"}},
		{Options{SubRecordType: TypeDelimited, Delimiter: "#", DelimiterBase64: "Iw=="}, []string{"delimiter"}, []string{"set only one"}},
		{Options{SubRecordType: TypeDelimited, DelimiterBase64: "not base64!"}, []string{"delimiter_base64"}, []string{"delimiter_base64:", "not standard base64"}},
		{Options{SubRecordType: TypeJSON, Delimiter: "#", DelimiterBase64: "Iw==", MaxSubRecords: -1},
			[]string{"max_sub_records", "delimiter", "delimiter_base64"},
			[]string{"delimiter: only allowed", "delimiter_base64: only allowed", "max_sub_records: -1 is negative"}},
	}
	for _, tt := range tests {
		err := tt.opts.Validate()
		if tt.keys == nil {
			if err != nil {
				t.Errorf("%+v: %v", tt.opts, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v: valid, want errors %q", tt.opts, tt.errs)
			continue
		}
		keys, other := transformtest.OptionKeys(err)
		if !slices.Equal(keys, tt.keys) || len(other) > 0 {
			t.Errorf("%+v: option keys %q and other errors %v, want keys %q only", tt.opts, keys, other, tt.keys)
		}
		for _, s := range tt.errs {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%+v: error %q does not contain %q", tt.opts, err, s)
			}
		}
	}
	if _, err := New(Compiled{}, pipeline.Deps{}); err == nil || !strings.HasPrefix(err.Error(), "record_deaggregation: ") {
		t.Errorf("New with options not compiled: %v", err)
	}
	s, _ := Options{SubRecordType: TypeDelimited, DelimiterBase64: "IyMjIw=="}.Compile()
	if !bytes.Equal(s.delimiter, []byte("####")) || s.max != DefaultMaxSubRecords || s.SubRecordType() != TypeDelimited {
		t.Errorf("compiled %+v", s)
	}
	if s, _ := (Options{SubRecordType: TypeKPL}).Compile(); s.max != 0 {
		t.Errorf("KPL default limit %d, want none", s.max)
	}
}

func TestMetricsReuse(t *testing.T) {
	p1, reg := newProc(t, Options{SubRecordType: TypeJSON})
	p2, err := New(compile(t, Options{SubRecordType: TypeKPL}), pipeline.Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if p1.metrics.in != p2.metrics.in || p1.metrics.passthrough != p2.metrics.passthrough {
		t.Error("the second processor did not reuse the registered collectors")
	}
	if _, _, err := p2.Process(context.Background(), batchOf([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	if got := value(t, p1.metrics.in, "s"); got != 1 {
		t.Errorf("shared counter = %v", got)
	}
}
