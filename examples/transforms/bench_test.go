package transforms_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// benchBatch is n records of 1 KiB JSON, each with two email fields (one
// nested in an array), shaped like the host package's benchmark records.
func benchBatch(n int) pipeline.Batch {
	recs := make([]pipeline.Record, n)
	now := time.Now()
	for i := range recs {
		head := fmt.Sprintf(`{"id":%d,"customer_id":"c-%04d","email":"user%d@example.com","contacts":[{"name":"x","email":"friend%d@example.org"}],"ts":1700000000,"msg":"`, i, i%1000, i, i)
		data := head + strings.Repeat("x", 1024-len(head)-2) + `"}`
		recs[i] = pipeline.Record{ID: fmt.Sprintf("49650000000000000000000000-%06d", i), Data: []byte(data), Arrived: now}
	}
	return pipeline.Batch{Stream: "bench", Records: recs}
}

// benchGuest measures records/s of example name on one instance (one core)
// over 5,000-record batches of 1 KiB JSON (5 calls of 1 MiB). check
// validates one output record.
func benchGuest(b *testing.B, name string, check func(in, out []byte) bool) {
	p := processor(b, name, nil)
	batch := benchBatch(5000)
	b.SetBytes(int64(len(batch.Records) * 1024))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, errs, err := p.Process(context.Background(), batch)
		if err != nil || len(errs) > 0 || len(out.Records) != len(batch.Records) {
			b.Fatalf("Process: %v, %v, %d records", err, errs, len(out.Records))
		}
		if !check(batch.Records[0].Data, out.Records[0].Data) || !check(batch.Records[4999].Data, out.Records[4999].Data) {
			b.Fatalf("unexpected output %s", out.Records[0].Data)
		}
	}
	b.ReportMetric(float64(b.N*len(batch.Records))/b.Elapsed().Seconds(), "records/s")
}

// go test -run '^$' -bench Guest -benchtime 3s -cpu 1 ./examples/transforms/
func BenchmarkGuestPassThrough(b *testing.B) {
	benchGuest(b, "passthrough", bytes.Equal)
}

func BenchmarkGuestMaskEmail(b *testing.B) {
	benchGuest(b, "mask-email", func(in, out []byte) bool {
		return len(out) < len(in) && bytes.HasSuffix(out, in[len(in)-800:]) && bytes.Contains(out, []byte(`"email":"u***@example.com"`)) &&
			bytes.Contains(out, []byte(`"email":"f***@example.org"`))
	})
}

func BenchmarkGuestWATUppercase(b *testing.B) {
	benchGuest(b, "wat-uppercase/uppercase.wat", func(in, out []byte) bool {
		return bytes.Equal(out, bytes.ToUpper(in))
	})
}
