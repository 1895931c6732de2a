package deaggregate

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/pipeline"
)

// event returns a JSON object of n bytes.
func event(i, n int) string {
	head := fmt.Sprintf(`{"id":%d,"customer":"c%04d","msg":"`, i, i%1000)
	return head + strings.Repeat("x", n-len(head)-2) + `"}`
}

func benchmarkProcess(b *testing.B, opts Options, record func(i int) []byte, perRecord int) {
	p, err := New(compile(b, opts), pipeline.Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1000
	batch := pipeline.Batch{Stream: "bench"}
	for i := range n {
		d := record(i)
		batch.Records = append(batch.Records, pipeline.Record{ID: fmt.Sprintf("log-%08d", i), Data: d})
		batch.Bytes += len(d)
	}
	b.SetBytes(int64(batch.Bytes))
	b.ReportAllocs()
	for b.Loop() {
		out, failed, err := p.Process(context.Background(), batch)
		if err != nil || len(failed) != 0 || len(out.Records) != n*perRecord {
			b.Fatalf("err=%v failed=%d records=%d", err, len(failed), len(out.Records))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkProcess1KiB measures 1,000 input records of about 1 KiB per
// batch; records/s counts input records.
func BenchmarkProcess1KiB(b *testing.B) {
	b.Run("KPL-4x256B", func(b *testing.B) {
		benchmarkProcess(b, Options{SubRecordType: TypeKPL}, func(i int) []byte {
			var recs []userRecord
			for j := range 4 {
				recs = append(recs, userRecord{pk: j, ehk: -1, data: event(i*4+j, 230)})
			}
			return frame(aggregatedMessage([]string{"pk-0", "pk-1", "pk-2", "pk-3"}, nil, recs))
		}, 4)
	})
	b.Run("KPL-passthrough", func(b *testing.B) {
		benchmarkProcess(b, Options{SubRecordType: TypeKPL}, func(i int) []byte { return []byte(event(i, 1024)) }, 1)
	})
	b.Run("JSON-4x256B", func(b *testing.B) {
		benchmarkProcess(b, Options{SubRecordType: TypeJSON}, func(i int) []byte {
			var s []string
			for j := range 4 {
				s = append(s, event(i*4+j, 255))
			}
			return []byte(strings.Join(s, "\n") + "\n")
		}, 4)
	})
	b.Run("JSON-single", func(b *testing.B) {
		benchmarkProcess(b, Options{SubRecordType: TypeJSON}, func(i int) []byte { return []byte(event(i, 1024)) }, 1)
	})
	b.Run("DELIMITED-8x128B", func(b *testing.B) {
		benchmarkProcess(b, Options{SubRecordType: TypeDelimited, Delimiter: "\n"}, func(i int) []byte {
			return []byte(strings.Repeat(strings.Repeat("y", 127)+"\n", 8))
		}, 8)
	})
}
