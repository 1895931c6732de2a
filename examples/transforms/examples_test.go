package transforms_test

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/wasm"
)

func TestPassThrough(t *testing.T) {
	in := []string{`{"a":1}`, "", "not json \x00\xff"}
	for i, r := range run(t, "passthrough", nil, in...) {
		wantOK(t, r, in[i])
	}
}

// wantFailed checks that r is ProcessingFailed with the guest's message.
func wantFailed(t *testing.T, r wasm.Result, guestMsg string) {
	t.Helper()
	if r.Result != wasm.ResultProcessingFailed || r.ErrorCode != wasm.CodeProcessingFailedStatus ||
		!strings.Contains(r.ErrorMessage, wasm.MsgProcessingFailed) || !strings.Contains(r.ErrorMessage, guestMsg) {
		t.Errorf("%s: %s %s %q, want ProcessingFailed %s with %q", r.RecordID, r.Result, r.ErrorCode, r.ErrorMessage, wasm.CodeProcessingFailedStatus, guestMsg)
	}
}

func TestMaskEmail(t *testing.T) {
	in := []string{
		`{"email":"jane@example.com","name":"Jane"}`,
		`{"z":1,"user":{"email":"ann@a.io","contacts":[{"email":"bob@b.io"},{"x":[{"email":"c@c.c"}]}]},"a":true}` + "\n",
		`[{"email":"dave@d.org"},{"email":12345},{"email":null},{"email":{"work":"e@e.e"}}]`,
		`{"email":"not-an-address","Email":"kept@x.y"}`,
		`{"no":"email field","list":[1,2.5e3,"email"]}`,
		`not json`,
		`{"email":"a@b.c"`,
		``,
	}
	res := run(t, "mask-email", nil, in...)
	wantOK(t, res[0], `{"email":"j***@example.com","name":"Jane"}`)
	wantOK(t, res[1], `{"z":1,"user":{"email":"a***@a.io","contacts":[{"email":"b***@b.io"},{"x":[{"email":"c***@c.c"}]}]},"a":true}`+"\n")
	wantOK(t, res[2], `[{"email":"d***@d.org"},{"email":"***"},{"email":null},{"email":"***"}]`)
	wantOK(t, res[3], `{"email":"***","Email":"kept@x.y"}`)
	wantOK(t, res[4], in[4])
	wantFailed(t, res[5], "invalid JSON at offset 0: invalid literal, expected null")
	wantFailed(t, res[6], "invalid JSON at offset 16: unexpected end of data in an object")
	wantFailed(t, res[7], "invalid JSON at offset 0: unexpected end of data")
}

// process runs records with the given data through p and returns the Ok
// records and the errors.
func process(t *testing.T, p *wasm.Processor, data ...string) ([]pipeline.Record, []pipeline.RecordError) {
	t.Helper()
	recs := make([]pipeline.Record, len(data))
	for i, d := range data {
		recs[i] = pipeline.Record{ID: fmt.Sprintf("r%d", i), Data: []byte(d), Arrived: time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)}
	}
	out, errs, err := p.Process(context.Background(), pipeline.Batch{Stream: "test", Records: recs})
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	return out.Records, errs
}

// ids returns the IDs and data of records.
func ids(recs []pipeline.Record) []string {
	var s []string
	for _, r := range recs {
		s = append(s, r.ID+"="+string(r.Data))
	}
	return s
}

func TestFilter(t *testing.T) {
	data := []string{
		`{"level":"debug","msg":"a"}`,
		`{"level":"info","msg":"b"}`,
		`{"msg":"c","kind":"noise","n":3}`,
		`{"level":"de\u0062ug"}`,
		`debug`,
		`{"n":3,"level":"DEBUG"}`,
	}
	for _, c := range []struct {
		name   string
		env    map[string]string
		config any
		kept   string
	}{
		{"defaults", nil, nil, "r1 r2 r4 r5"},
		{"env", map[string]string{"DROP_FIELD": "kind", "DROP_VALUE": "noise"}, nil, "r0 r1 r3 r4 r5"},
		{"config over env", map[string]string{"DROP_FIELD": "kind"}, map[string]any{"field": "n", "value": "3"}, "r0 r1 r3 r4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := options(t, "filter", c.env)
			opts.Config = c.config
			p, err := newProcessor(t, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			recs, errs := process(t, p, data...)
			if len(errs) != 0 {
				t.Fatalf("errors: %v", errs)
			}
			var want []string
			for _, id := range strings.Fields(c.kept) {
				i, err := strconv.Atoi(strings.TrimPrefix(id, "r"))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, id+"="+data[i])
			}
			if got := ids(recs); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("kept\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
	// An invalid configuration stops the processor at start-up.
	for _, config := range []any{map[string]any{"field": ""}, map[string]any{"feld": "x"}, "not json"} {
		opts := options(t, "filter", nil)
		opts.Config = config
		if p, err := newProcessor(t, opts); err == nil {
			p.Close(context.Background())
			t.Errorf("config %v: New succeeded", config)
		}
	}
}

func TestEnrich(t *testing.T) {
	p := processor(t, "enrich", nil)
	data := []string{
		`{"customer_id":"c-42","timestamp":"2024-05-01T12:00:00+02:00","v":1}`,
		`{"customer_id":7,"timestamp":"2023-12-31T23:30:00-01:00"}`,
		`{"customer_id":"c-1","timestamp":"2022-01-02"}`,
		`{"customer_id":"c-2"}`,
		`{"timestamp":"2024-01-01T00:00:00Z"}`,
		`{"customer_id":"c-3","timestamp":"yesterday"}`,
		`[1,2]`,
	}
	recs, errs := process(t, p, data...)
	want := []map[string]string{
		{"customer_id": "c-42", "year": "2024"},
		{"customer_id": "7", "year": "2024"},
		{"customer_id": "c-1", "year": "2022"},
		{"customer_id": "c-2", "year": "2021"}, // from the arrival time
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %v", len(recs), len(want), ids(recs))
	}
	for i, r := range recs {
		wantKeys := map[string]string{}
		for k, v := range want[i] {
			wantKeys[wasm.KeyPrefix+k] = v
		}
		if r.ID != fmt.Sprintf("r%d", i) || string(r.Data) != data[i] || !maps.Equal(r.Keys, wantKeys) {
			t.Errorf("record %s %s keys %v, want r%d %s %v", r.ID, r.Data, r.Keys, i, data[i], wantKeys)
		}
	}
	wantErrs := map[int]string{4: "enrich: no customer_id", 5: `enrich: timestamp: parsing time "yesterday"`, 6: "enrich: not a JSON object"}
	if len(errs) != len(wantErrs) {
		t.Fatalf("%d errors, want %d: %v", len(errs), len(wantErrs), errs)
	}
	for _, e := range errs {
		ce := codedError(t, e)
		if ce.Code != wasm.CodeProcessingFailedStatus || ce.OutputType != pipeline.OutputProcessingFailed || !strings.Contains(ce.Error(), wantErrs[e.Index]) {
			t.Errorf("record %d: %s %s %v, want %q", e.Index, ce.Code, ce.OutputType, ce, wantErrs[e.Index])
		}
	}
}

func TestWATUppercase(t *testing.T) {
	// Letters at every position of an 8-byte word, the bytes around a-z
	// (`, {, @, [), non-ASCII bytes.
	in := []string{"hello, World 123!", "", "already UPPER", "{\"k\":\"vé\xff\"}", "z", "`az{@AZ[\xe1\xfa\xe0 abcdefghijklmnopqrstuvwxyz\x7f\x80"}
	res := run(t, "wat-uppercase/uppercase.wat", nil, in...)
	wantOK(t, res[0], "HELLO, WORLD 123!")
	if res[1].Result != wasm.ResultDropped {
		t.Errorf("empty record: %+v, want Dropped", res[1])
	}
	wantOK(t, res[2], "ALREADY UPPER")
	wantOK(t, res[3], "{\"K\":\"Vé\xff\"}")
	wantOK(t, res[4], "Z")
	wantOK(t, res[5], "`AZ{@AZ[\xe1\xfa\xe0 ABCDEFGHIJKLMNOPQRSTUVWXYZ\x7f\x80")
	// Records with Kinesis metadata, on the processor's reused input region.
	p := processor(t, "wat-uppercase/uppercase.wat", nil)
	for round := range 3 {
		recs := make([]pipeline.Record, 100*(round+1))
		for i := range recs {
			recs[i] = pipeline.Record{ID: fmt.Sprint(i), Data: []byte(strings.Repeat("ab", i)),
				Meta: map[string]string{"shardId": "shardId-000000000000", "sequenceNumber": fmt.Sprint(i)}}
		}
		out, errs, err := p.Process(context.Background(), pipeline.Batch{Stream: "test", Records: recs})
		if err != nil || len(errs) != 0 || len(out.Records) != len(recs)-1 {
			t.Fatalf("round %d: %v, %v, %d records", round, err, errs, len(out.Records))
		}
		for i, r := range out.Records {
			if r.ID != fmt.Sprint(i+1) || string(r.Data) != strings.Repeat("AB", i+1) {
				t.Fatalf("round %d: record %s %q", round, r.ID, r.Data)
			}
		}
	}
}
