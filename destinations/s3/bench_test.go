package s3

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// BenchmarkDeliverGzipJSON delivers 5 MiB batches of 1 KiB JSON records,
// GZIP-compressed, end to end (encode, compress, upload) to each server.
// b.SetBytes counts record bytes, so MB/s is input throughput.
func BenchmarkDeliverGzipJSON(b *testing.B) {
	for _, start := range []func(testing.TB, ...string) server{startGofakes3, startS3rver} {
		srv := start(b, testBucket)
		b.Run(srv.name, func(b *testing.B) {
			opts := srv.options()
			opts.Compression = "GZIP"
			opts.AppendNewline = true
			d := newTestDest(b, opts, "bench", hooks{maxAttempts: 3})
			const recSize, batchBytes = 1 << 10, 5 << 20
			batch := pipeline.Batch{Stream: "bench"}
			at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := 0; batch.Bytes < batchBytes; i++ {
				rec := fmt.Appendf(nil, `{"seq":%d,"user":"u%05d","event":"click","path":"/p/%d","pad":"`, i, i%977, i%131)
				for len(rec) < recSize-2 {
					rec = append(rec, byte('a'+i%26))
				}
				rec = append(rec, `"}`...)
				batch.Records = append(batch.Records, pipeline.Record{Data: rec, Arrived: at})
				batch.Bytes += len(rec)
			}
			b.SetBytes(int64(batch.Bytes))
			b.ReportAllocs()
			var pos pipeline.Position
			for b.Loop() {
				batch.ID = pipeline.BatchID{First: pos, End: pos + pipeline.Position(batch.Bytes)}
				pos = batch.ID.End
				if err := d.Deliver(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
