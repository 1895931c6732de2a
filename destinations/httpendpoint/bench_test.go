package httpendpoint

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers/receiver"
	"github.com/sluice-dev/sluice/pipeline"
)

// benchBatch is records of 1 KiB JSON-like data (which GZIP compresses
// the way logs do).
func benchBatch(records int) pipeline.Batch {
	b := pipeline.Batch{Stream: "bench"}
	for i := range records {
		data := fmt.Appendf(nil, `{"seq":%d,"user":"user-%d","event":"click","path":"/products/%d",`, i, i%977, i%131)
		data = append(data, `"pad":"`...)
		data = append(data, bytes.Repeat([]byte{'a' + byte(i%26)}, 1024-len(data)-2)...)
		data = append(data, `"}`...)
		b.Records = append(b.Records, pipeline.Record{Data: data})
		b.Bytes += len(data)
	}
	return b
}

// BenchmarkDeliver delivers 1000-record (1 MiB) batches, concurrently
// (GOMAXPROCS deliveries in flight, as with max_in_flight), to a local
// receiver that parses and checks every request. MB/s counts record
// bytes.
func BenchmarkDeliver(b *testing.B) {
	for _, enc := range []string{EncodingNone, EncodingGzip} {
		b.Run(enc, func(b *testing.B) {
			r := startReceiver(b, receiver.Config{CountOnly: true})
			o := opts(r)
			o.ContentEncoding = enc
			d := newDest(b, o, "bench", nil)
			batch := benchBatch(1000)
			var seq atomic.Uint64
			b.SetBytes(int64(batch.Bytes))
			b.ReportAllocs()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				bt := batch
				for pb.Next() {
					n := seq.Add(1)
					bt.ID = pipeline.BatchID{First: pipeline.Position(n << 32), End: pipeline.Position(n<<32 + 1)}
					if err := d.Deliver(context.Background(), bt); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*len(batch.Records))/time.Since(start).Seconds(), "records/s")
			if s := r.Stats(); s.UniqueRecords != int64(b.N*len(batch.Records)) {
				b.Fatalf("receiver got %d records, want %d", s.UniqueRecords, b.N*len(batch.Records))
			}
		})
	}
}

// BenchmarkEncode measures building one request body alone.
func BenchmarkEncode(b *testing.B) {
	batch := benchBatch(1000)
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			b.SetBytes(int64(batch.Bytes))
			b.ReportAllocs()
			for b.Loop() {
				body, err := buildBody("0c0ffee0-0000-5000-8000-000000000000", 1598556019164, batch.Records, gz)
				if err != nil {
					b.Fatal(err)
				}
				_ = body.Close()
			}
			b.ReportMetric(float64(b.N*len(batch.Records))/b.Elapsed().Seconds(), "records/s")
		})
	}
}
