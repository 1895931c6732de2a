package parquet

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/pipeline"
	"gopkg.in/yaml.v3"
)

const sample = `{"event_id":"e1","ts":"2024-05-06T07:08:09Z","user_id":1,"amount":3,"tags":["a"],"device":{"os":"ios","version":"17"},"day":"2024-05-06","odd key":true}
{"event_id":"e2","ts":"2024-05-06T07:08:09.5Z","user_id":2,"amount":2.5,"tags":[],"device":{"os":"android"},"day":"2024-05-07","mixed":1}
{"event_id":"e3","ts":"2024-05-06T07:08:09.123456Z","user_id":3,"amount":1,"device":{"os":"x","version":"1"},"day":"2024-05-08","mixed":{"a":1},"late":"x"}`

func TestInfer(t *testing.T) {
	s, err := Infer(strings.NewReader(sample), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Schema{Columns: []Column{
		{Name: "amount", Type: TypeDouble, Required: true},
		{Name: "day", Type: TypeDate, Required: true},
		{Name: "device", Type: TypeStruct, Required: true, Fields: []Column{
			{Name: "os", Type: TypeString, Required: true},
			{Name: "version", Type: TypeString},
		}},
		{Name: "event_id", Type: TypeString, Required: true},
		{Name: "odd_key", Type: TypeBoolean, Source: `$["odd key"]`},
		{Name: "tags", Type: TypeList, Items: &Column{Type: TypeString}},
		{Name: "ts", Type: TypeTimestamp, Unit: UnitMicros, Required: true},
		{Name: "user_id", Type: TypeInt64, Required: true},
		{Name: "mixed", Type: TypeJSON},
		{Name: "late", Type: TypeString},
	}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("inferred\n%s\nwant\n%s", s.YAML(), want.YAML())
	}
	// maxRecords stops early: "mixed" and "late" are not seen.
	s2, err := Infer(strings.NewReader(sample), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s2.Columns) != 8 {
		t.Fatalf("1 record: %d columns", len(s2.Columns))
	}
	for _, bad := range []string{"", "[1,2]", "{nope"} {
		if _, err := Infer(strings.NewReader(bad), 0); err == nil {
			t.Errorf("Infer(%q) succeeded", bad)
		}
	}
}

// TestInferYAMLRoundTrip: the rendered YAML decodes strictly to the same
// schema, and the schema converts the sample itself.
func TestInferYAMLRoundTrip(t *testing.T) {
	s, err := Infer(strings.NewReader(sample), 0)
	if err != nil {
		t.Fatal(err)
	}
	var back Schema
	dec := yaml.NewDecoder(bytes.NewReader(s.YAML()))
	dec.KnownFields(true)
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("%v\n%s", err, s.YAML())
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip changed the schema:\n%s", s.YAML())
	}
	if !strings.HasPrefix(string(s.YAML()), "columns:\n  - name: amount\n    type: double\n    required: true\n") {
		t.Fatalf("unexpected YAML:\n%s", s.YAML())
	}
	recs := strings.Split(sample, "\n")
	path, errs := writeFile(t, Config{Schema: s}, recs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d does not fit its own inferred schema: %v", i, err)
		}
	}
	res := query(t, path, `SELECT count(*), max(mixed), max("odd_key"::INT) FROM FILE`)
	if g := fmt.Sprint(res.Rows); g != `[[3 {"a":1} 1]]` {
		t.Fatalf("got %s", g)
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	s := Schema{Columns: []Column{
		{Name: "a", Type: "text"},
		{Name: "a", Type: TypeString},
		{Name: "b.c", Type: TypeString},
		{Name: "t", Type: TypeTimestamp, Unit: "seconds"},
		{Name: "d", Type: TypeDecimal, Precision: 40, Scale: 2},
		{Name: "l", Type: TypeList},
		{Name: "s", Type: TypeStruct},
		{Name: "x", Type: TypeString, Source: "$.a[zz]"},
		{Type: TypeString},
		{Name: "u", Type: TypeString, Unit: UnitMillis},
	}}
	err := s.Validate()
	if err == nil {
		t.Fatal("invalid schema validated")
	}
	for _, want := range []string{`unknown type "text"`, "duplicate column name", "b.c", `unit "seconds"`, "precision 40", "list needs items", "struct needs fields", "[zz]", "name is required", "unit applies to timestamp"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err := (Options{Compression: "lz4"}).Validate(); err == nil {
		t.Error("compression lz4 validated")
	}
	if _, err := New(Config{Schema: s}); err == nil {
		t.Error("New accepted an invalid schema")
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func clickRecord(i int) []byte {
	pad := strings.Repeat("x", 700)
	return fmt.Appendf(nil, `{"event_id":"evt-%010d","ts":"2024-05-06T07:%02d:%02d.%03dZ","user_id":%d,"country":"%s","amount":%d.%02d,"tags":["t%d","promo","mobile"],"device":{"os":"%s","version":"17.%d"},"ua":"%s"}`,
		i, i/60%60, i%60, i%1000, i%100000, []string{"DE", "US", "FR", "JP", "BR"}[i%5], i%500, i%100, i%13, []string{"ios", "android"}[i%2], i%9, pad)
}

// TestBoundedMemory writes 200k rows with poorly compressible ids in 2 MiB
// row groups: the heap stays bounded, and the file has many row groups
// (read back by DuckDB).
func TestBoundedMemory(t *testing.T) {
	cfg := decodeConfig(t, clickstreamYAML)
	cfg.RowGroupBytes = 2 << 20
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "big.parquet")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	out := &countingWriter{}
	w, err := f.NewWriter(io.MultiWriter(file, out))
	if err != nil {
		t.Fatal(err)
	}
	var peak uint64
	var ms runtime.MemStats
	var in int64
	for i := range 200_000 {
		rec := fmt.Appendf(nil, `{"event_id":"%016x%016x","user_id":%d,"tags":["%x"]}`, rand.Uint64(), rand.Uint64(), rand.Int64(), rand.Uint32())
		in += int64(len(rec))
		if err := w.Write(&pipeline.Record{Data: rec}); err != nil {
			t.Fatal(err)
		}
		if i%20000 == 19999 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if peak > 24<<20 {
		t.Fatalf("heap reached %d MiB writing %d MiB of input (%d MiB of Parquet)", peak>>20, in>>20, out.n>>20)
	}
	res := testpeers.DuckDB(t, "SELECT count(DISTINCT row_group_id), max(row_group_num_rows), (SELECT count(*) FROM read_parquet("+testpeers.Quote(path)+")) FROM parquet_metadata("+testpeers.Quote(path)+")")
	var groups, maxRows, rows int
	fmt.Sscan(fmt.Sprint(res.Rows[0][0], " ", res.Rows[0][1], " ", res.Rows[0][2]), &groups, &maxRows, &rows)
	if rows != 200_000 || groups < 10 || maxRows > 40_000 {
		t.Fatalf("%d rows in %d row groups of at most %d rows; want 200000 rows in row groups of ~2 MiB of input", rows, groups, maxRows)
	}
	t.Logf("input %d MiB, output %d MiB, %d row groups, peak heap after GC %d MiB", in>>20, out.n>>20, groups, peak>>20)
}

func BenchmarkWriteClickstream(b *testing.B) {
	cfg := decodeConfig(b, clickstreamYAML)
	f, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]pipeline.Record, 1000)
	var size int64
	for i := range recs {
		recs[i].Data = clickRecord(i)
		size += int64(len(recs[i].Data))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	rows := 0
	for b.Loop() {
		w, _ := f.NewWriter(io.Discard)
		for i := range recs {
			if err := w.Write(&recs[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		rows += len(recs)
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
