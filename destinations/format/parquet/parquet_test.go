package parquet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/pipeline"
	"gopkg.in/yaml.v3"
)

const clickstreamYAML = `
columns:
  - {name: event_id, type: string, required: true}
  - {name: ts, type: timestamp, unit: millis}
  - {name: user_id, type: int64}
  - {name: country, type: string}
  - {name: amount, type: double}
  - name: tags
    type: list
    items: {type: string}
  - name: device
    type: struct
    fields:
      - {name: os, type: string}
      - {name: version, type: string}
compression: snappy
`

func decodeConfig(t testing.TB, src string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// writeFile writes recs to a Parquet file and returns its path and the
// per-record errors.
func writeFile(t testing.TB, cfg Config, recs []string) (string, []error) {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.parquet")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := f.NewWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(recs))
	for i, r := range recs {
		errs[i] = w.Write(&pipeline.Record{Data: []byte(r)})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path, errs
}

func query(t *testing.T, path, sql string) testpeers.Result {
	t.Helper()
	return testpeers.DuckDB(t, strings.ReplaceAll(sql, "FILE", "read_parquet("+testpeers.Quote(path)+")"))
}

func TestClickstreamReadByDuckDB(t *testing.T) {
	recs := []string{
		`{"event_id":"e1","ts":"2024-05-06T07:08:09.123Z","user_id":42,"country":"DE","amount":12.5,"tags":["a","b"],"device":{"os":"ios","version":"17.4"}}`,
		// two objects in one record, newline-separated; epoch millis; missing and null fields
		`{"event_id":"e2","ts":1715000000000,"user_id":"43","tags":[],"device":null}` + "\n" + `{"event_id":"e3","ts":1715000000,"amount":null,"tags":null,"device":{"os":"android"}}`,
		// concatenated, different key case, offset time zone
		`{"EVENT_ID":"e4","ts":"2024-05-06T09:08:09+02:00","tags":["x",null]}{"event_id":"e5"}`,
	}
	path, errs := writeFile(t, decodeConfig(t, clickstreamYAML), recs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	res := query(t, path, `SELECT event_id, epoch_ms(ts) AS ms, user_id, country, amount, tags, device, device.os AS os FROM FILE ORDER BY event_id`)
	wantNames := "event_id ms user_id country amount tags device os"
	if strings.Join(res.Names, " ") != wantNames {
		t.Fatalf("names %v", res.Names)
	}
	types := query(t, path, `DESCRIBE SELECT * FROM FILE`)
	var got []string
	for _, r := range types.Rows {
		got = append(got, fmt.Sprint(r[0], " ", r[1]))
	}
	wantTypes := []string{
		"event_id VARCHAR", "ts TIMESTAMP WITH TIME ZONE", "user_id BIGINT", "country VARCHAR",
		"amount DOUBLE", "tags VARCHAR[]", `device STRUCT(os VARCHAR, "version" VARCHAR)`,
	}
	if strings.Join(got, "\n") != strings.Join(wantTypes, "\n") {
		// DuckDB may or may not quote "version"; accept the unquoted form too.
		alt := strings.ReplaceAll(strings.Join(wantTypes, "\n"), `"version"`, "version")
		if strings.Join(got, "\n") != alt {
			t.Fatalf("column types:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantTypes, "\n"))
		}
	}
	want := []string{
		`[e1 1714979289123 42 DE 12.5 [a b] map[os:ios version:17.4] ios]`,
		`[e2 1715000000000 43 <nil> <nil> [] <nil> <nil>]`,
		`[e3 1715000000000 <nil> <nil> <nil> <nil> map[os:android version:<nil>] android]`,
		`[e4 1714979289000 <nil> <nil> <nil> [x <nil>] <nil> <nil>]`,
		`[e5 <nil> <nil> <nil> <nil> <nil> <nil> <nil>]`,
	}
	if len(res.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %v", len(res.Rows), len(want), res.Rows)
	}
	for i, r := range res.Rows {
		if g := fmt.Sprint(r); g != want[i] {
			t.Errorf("row %d:\n got %s\nwant %s", i, g, want[i])
		}
	}
}

func TestTypesReadByDuckDB(t *testing.T) {
	cfg := decodeConfig(t, `
columns:
  - {name: i32, type: int32, required: true}
  - {name: f, type: float}
  - {name: b, type: boolean}
  - {name: d, type: date}
  - {name: dec, type: decimal, precision: 9, scale: 2}
  - {name: big, type: decimal, precision: 38, scale: 4}
  - {name: mid, type: decimal, precision: 18, scale: 0}
  - {name: us, type: timestamp, unit: micros}
  - {name: raw, type: json, source: payload}
  - {name: first_tag, type: string, source: "$.tags[0]"}
  - {name: os, type: string, source: device.os}
  - name: items
    type: list
    items:
      type: struct
      fields:
        - {name: sku, type: string, required: true}
        - {name: qty, type: int32}
  - name: matrix
    type: list
    items: {type: list, items: {type: int64}}
compression: zstd
`)
	recs := []string{
		`{"i32":7,"f":1.5,"b":true,"d":"2024-02-29","dec":"12.345","big":-123456789012345678901234.5678,"mid":123456789012345678,"us":"2024-01-02T03:04:05.123456Z","payload":{"k":[1,"<x>"]},"tags":["t0","t1"],"device":{"os":"linux"},"items":[{"sku":"A","qty":2},{"sku":"B"}],"matrix":[[1,2],[],[3]]}`,
		`{"i32":"8","b":"false","d":19000,"dec":-0.005,"payload":"s","items":[]}`,
	}
	path, errs := writeFile(t, cfg, recs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	types := query(t, path, `DESCRIBE SELECT * FROM FILE`)
	var got []string
	for _, r := range types.Rows {
		got = append(got, fmt.Sprint(r[1]))
	}
	wantTypes := "INTEGER FLOAT BOOLEAN DATE DECIMAL(9,2) DECIMAL(38,4) DECIMAL(18,0) TIMESTAMP WITH TIME ZONE VARCHAR VARCHAR VARCHAR STRUCT(sku VARCHAR, qty INTEGER)[] BIGINT[][]"
	if strings.Join(got, " ") != wantTypes {
		t.Fatalf("types\n got %s\nwant %s", strings.Join(got, " "), wantTypes)
	}
	res := query(t, path, `SELECT i32, f, b, CAST(d AS VARCHAR), CAST(dec AS VARCHAR), CAST(big AS VARCHAR), CAST(mid AS VARCHAR), epoch_us(us), raw, first_tag, os, items, matrix FROM FILE ORDER BY i32`)
	want := []string{
		`[7 1.5 true 2024-02-29 12.35 -123456789012345678901234.5678 123456789012345678 1704164645123456 {"k":[1,"<x>"]} t0 linux [map[qty:2 sku:A] map[qty:<nil> sku:B]] [[1 2] [] [3]]]`,
		`[8 <nil> false 2022-01-08 -0.01 <nil> <nil> <nil> "s" <nil> <nil> [] <nil>]`,
	}
	for i, r := range res.Rows {
		if g := fmt.Sprint(r); i >= len(want) || g != want[i] {
			t.Errorf("row %d:\n got %s\nwant %s", i, g, want[min(i, len(want)-1)])
		}
	}
	if len(res.Rows) != len(want) {
		t.Fatalf("%d rows", len(res.Rows))
	}
}

func TestBadRecordsAreRefusedWithCodes(t *testing.T) {
	cfg := decodeConfig(t, clickstreamYAML)
	cases := []struct{ rec, code string }{
		{`not json`, CodeParseError},
		{`[{"event_id":"x"}]`, CodeParseError},
		{`"str"`, CodeParseError},
		{``, CodeParseError},
		{`{"event_id":"ok"}{"event_id":`, CodeParseError},
		{`{"user_id":1}`, CodeMissingRequiredField},
		{`{"event_id":null}`, CodeMissingRequiredField},
		{`{"event_id":"x","user_id":"abc"}`, CodeMalformedData},
		{`{"event_id":"x","user_id":1.5}`, CodeMalformedData},
		{`{"event_id":"x","ts":"yesterday"}`, CodeMalformedData},
		{`{"event_id":"x","tags":"a"}`, CodeMalformedData},
		{`{"event_id":"x","device":"ios"}`, CodeMalformedData},
		{`{"event_id":"x","amount":true}`, CodeMalformedData},
		{`{"event_id":{"a":1}}`, CodeMalformedData},
		// the first object is fine, the second is not: nothing of the record is written
		{`{"event_id":"half"}{"user_id":2}`, CodeMissingRequiredField},
	}
	recs := []string{`{"event_id":"good1"}`}
	for _, c := range cases {
		recs = append(recs, c.rec)
	}
	recs = append(recs, `{"event_id":"good2"}`)
	path, errs := writeFile(t, cfg, recs)
	for i, c := range cases {
		err := errs[i+1]
		var ce *pipeline.CodedError
		if !errors.As(err, &ce) {
			t.Errorf("%q: error %v is not a CodedError", c.rec, err)
			continue
		}
		if ce.Code != c.code || ce.OutputType != format.OutputFormatConversionFailed {
			t.Errorf("%q: code %s / %s, want %s / %s (%v)", c.rec, ce.Code, ce.OutputType, c.code, format.OutputFormatConversionFailed, err)
		}
	}
	if errs[0] != nil || errs[len(errs)-1] != nil {
		t.Fatalf("good records failed: %v %v", errs[0], errs[len(errs)-1])
	}
	res := query(t, path, `SELECT list(event_id ORDER BY event_id) FROM FILE`)
	if g := fmt.Sprint(res.Rows); g != "[[[good1 good2]]]" {
		t.Fatalf("file holds %s, want only the good records", g)
	}
}

func TestCompressionCodecs(t *testing.T) {
	for _, codec := range []string{"snappy", "zstd", "gzip", "none"} {
		cfg := decodeConfig(t, clickstreamYAML)
		cfg.Compression = codec
		var recs []string
		for i := range 300 {
			recs = append(recs, fmt.Sprintf(`{"event_id":"e%03d","user_id":%d,"tags":["t%d"]}`, i, i, i%7))
		}
		path, _ := writeFile(t, cfg, recs)
		res := query(t, path, `SELECT count(*), sum(user_id), count(DISTINCT tags[1]) FROM FILE`)
		if g := fmt.Sprint(res.Rows); g != "[[300 44850 7]]" {
			t.Errorf("%s: %s", codec, g)
		}
		want := map[string]string{"snappy": "SNAPPY", "zstd": "ZSTD", "gzip": "GZIP", "none": "UNCOMPRESSED"}[codec]
		meta := testpeers.DuckDB(t, "SELECT DISTINCT compression FROM parquet_metadata("+testpeers.Quote(path)+")")
		if g := fmt.Sprint(meta.Rows); g != "[["+want+"]]" {
			t.Errorf("%s: column chunks compressed with %s", codec, g)
		}
	}
}
