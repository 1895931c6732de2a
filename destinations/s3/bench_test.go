package s3

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
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

// BenchmarkLargeObject512MiB writes one 512 MiB object to s3rver through a
// multipart upload and reports the process's peak resident memory. The
// batch's records all share one 1000 KiB data buffer, so the batch itself
// costs almost nothing and the peak shows what the writer holds: bounded
// by (upload_concurrency+1) × part_size, not by the object's size. Run it
// alone, since the peak is process-wide:
//
//	go test -run '^$' -bench LargeObject512MiB -benchtime 1x ./destinations/s3/
func BenchmarkLargeObject512MiB(b *testing.B) {
	srv := startS3rver(b, testBucket)
	opts := srv.options()
	opts.PartSize = 8 << 20
	opts.UploadConcurrency = 2
	d := newTestDest(b, opts, "big", hooks{maxAttempts: 3})
	const recSize, total = 1_024_000, 512 << 20
	data := make([]byte, recSize)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := pipeline.Batch{Stream: "big"}
	for batch.Bytes < total {
		batch.Records = append(batch.Records, pipeline.Record{Data: data, Arrived: at})
		batch.Bytes += recSize
	}
	before := peakRSS(b)
	b.SetBytes(int64(batch.Bytes))
	var pos pipeline.Position
	for b.Loop() {
		batch.ID = pipeline.BatchID{First: pos, End: pos + pipeline.Position(batch.Bytes)}
		pos = batch.ID.End
		if err := d.Deliver(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	after := peakRSS(b)
	b.ReportMetric(float64(after)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(after-before)/(1<<20), "rss-growth-MiB")
	b.ReportMetric(float64(batch.Bytes)/(1<<20), "object-MiB")
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func peakRSS(b *testing.B) int64 {
	b.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
