package wasm

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// benchBatch is n records of 1 KiB JSON.
func benchBatch(n int) pipeline.Batch {
	recs := make([]pipeline.Record, n)
	now := time.Now()
	for i := range recs {
		head := fmt.Sprintf(`{"id":%d,"customer_id":"c-%04d","ts":1700000000,"msg":"`, i, i%1000)
		data := head + strings.Repeat("x", 1024-len(head)-2) + `"}`
		recs[i] = pipeline.Record{ID: fmt.Sprintf("49650000000000000000000000-%06d", i), Data: []byte(data), Arrived: now}
	}
	return pipeline.Batch{Stream: "bench", Records: recs}
}

// passThroughModule compiles testdata/passthrough.wat, copying data or
// marking it unchanged.
func passThroughModule(tb testing.TB, copyData bool) string {
	tb.Helper()
	src, err := os.ReadFile("testdata/passthrough.wat")
	if err != nil {
		tb.Fatal(err)
	}
	text := string(src)
	if !copyData {
		text = strings.Replace(text, "(global $copy i32 (i32.const 1))", "(global $copy i32 (i32.const 0))", 1)
	}
	return watModule(tb, "passthrough", text)
}

// BenchmarkPassThrough measures records/s of 1 KiB JSON records through a
// pass-through guest on one instance (one core). Guests: "go" is
// testdata/guest (Go, wasip1), "wat" is testdata/passthrough.wat. Modes:
// "copy" returns every record's data (guest copy, then host copy out);
// "unchanged" returns the data-unchanged marker (no data copied back).
//
//	go test -run '^$' -bench PassThrough -benchtime 3s -cpu 1 ./transform/wasm/
func BenchmarkPassThrough(b *testing.B) {
	for _, guest := range []string{"go", "wat"} {
		for _, mode := range []string{"copy", "unchanged"} {
			b.Run(guest+"/"+mode, func(b *testing.B) {
				var opts Options
				if guest == "go" {
					opts = testOptions(guestModule(b))
					if mode == "unchanged" {
						opts.Env = map[string]string{"UNCHANGED": "1"}
					}
				} else {
					opts = testOptions(passThroughModule(b, mode == "copy"))
				}
				e := newTestEnv(b, opts)
				batch := benchBatch(5000) // a 5 MiB runner batch: 5 calls of 1 MiB
				b.SetBytes(int64(len(batch.Records) * 1024))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					out, errs, err := e.p.Process(context.Background(), batch)
					if err != nil || len(errs) > 0 || len(out.Records) != len(batch.Records) {
						b.Fatalf("Process: %v, %d errors, %d records", err, len(errs), len(out.Records))
					}
				}
				b.ReportMetric(float64(b.N*len(batch.Records))/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}
