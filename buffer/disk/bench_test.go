package disk_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

const (
	benchRecSize  = 1 << 10
	benchPerCall  = 500
	benchAppender = 8
)

func benchRecords() []pipeline.Record {
	recs := make([]pipeline.Record, benchPerCall)
	for i := range recs {
		d := make([]byte, benchRecSize)
		for j := range d {
			d[j] = byte(i + j)
		}
		recs[i].Data = d
	}
	return recs
}

// BenchmarkAppend measures group-committed appends with fsync: 8
// goroutines, each Append call 500 records of 1 KiB. A committer keeps the
// backlog (and disk use) small, as a runner would.
// BenchmarkAppend/plain and /sealed measure appends without and with
// encryption at rest, side by side in one run.
func BenchmarkAppend(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchAppend(b, nil) })
	b.Run("sealed", func(b *testing.B) { benchAppend(b, testKeyring(b, "k1")) })
}

func benchAppend(b *testing.B, keys *seal.Keyring) {
	l, err := disk.Open(disk.Options{Dir: b.TempDir(), Stream: "bench", MaxBytes: 1 << 40, Keys: keys, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	stop := make(chan struct{})
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() {
		defer cwg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := l.Commit(ctx, l.State().Head); err != nil {
					b.Error(err)
					return
				}
			}
		}
	}()
	b.SetBytes(benchRecSize * benchPerCall)
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < benchAppender; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := benchRecords()
			for next.Add(1) <= int64(b.N) {
				for i := range recs {
					recs[i].Arrived = time.Time{}
				}
				if err := l.Append(ctx, recs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchPerCall)/b.Elapsed().Seconds(), "records/s")
	close(stop)
	cwg.Wait()
}

// BenchmarkRead measures reading 1 KiB records back in batches of up to
// 4 MiB from the page cache.
func BenchmarkRead(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchRead(b, nil) })
	b.Run("sealed", func(b *testing.B) { benchRead(b, testKeyring(b, "k1")) })
}

func benchRead(b *testing.B, keys *seal.Keyring) {
	l, err := disk.Open(disk.Options{Dir: b.TempDir(), Stream: "bench", MaxBytes: 1 << 40, Durability: "os", Keys: keys, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	recs := benchRecords()
	for i := 0; i < 64; i++ { // 32 MiB of records
		if err := l.Append(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	head := l.State().Head
	b.SetBytes(4 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	from := pipeline.Position(0)
	n := 0
	for i := 0; i < b.N; i++ {
		if from >= head {
			from = 0
		}
		got, next, err := l.Read(ctx, from, 4<<20, 0, 0)
		if err != nil || len(got) == 0 {
			b.Fatalf("Read: %d records, %v", len(got), err)
		}
		n += len(got)
		from = next
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
