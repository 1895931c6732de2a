package decompress

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/pipeline"
)

// BenchmarkProcess1KiB decompresses 1,000 CloudWatch Logs payloads of
// about 1 KiB each (four log events) per batch, with and without message
// extraction; records/s counts input records.
func BenchmarkProcess1KiB(b *testing.B) {
	for _, extract := range []bool{false, true} {
		b.Run(fmt.Sprintf("extraction=%v", extract), func(b *testing.B) {
			opts := DefaultOptions()
			opts.CloudWatchLogs.DataMessageExtraction = extract
			p, err := New(compile(b, opts), pipeline.Deps{Registry: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			const n = 1000
			batch := pipeline.Batch{Stream: "bench"}
			raw := 0
			for i := range n {
				var msgs []string
				for j := range 4 {
					msgs = append(msgs, fmt.Sprintf("2024-01-01T00:00:%02d.000Z %08x INFO request %d handled in %d ms %s", j, i, i*4+j, j*7, strings.Repeat("k=v ", 28)))
				}
				payload := cwl(MessageTypeData, msgs...)
				raw += len(payload)
				batch.Records = append(batch.Records, pipeline.Record{ID: fmt.Sprintf("log-%08d", i), Data: gz(b, payload)})
			}
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			for b.Loop() {
				out, failed, err := p.Process(context.Background(), batch)
				if err != nil || len(failed) != 0 || len(out.Records) == 0 {
					b.Fatalf("err=%v failed=%d", err, len(failed))
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(raw)/n, "bytes/record")
		})
	}
}
