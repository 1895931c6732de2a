package runner

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

// BenchmarkRunnerFile measures delivery throughput: 1 KiB records appended
// in groups of 500 by one producer, cut into 5 MiB batches and written to
// the file destination (fsync per object). Each op is one record.
func BenchmarkRunnerFile(b *testing.B) {
	for _, bc := range []struct {
		name string
		open func(b *testing.B) buffer.Buffer
	}{
		{"memory", func(*testing.B) buffer.Buffer { return memory.New(memory.Options{MaxBytes: 256 << 20}) }},
		{"disk-fsync", func(b *testing.B) buffer.Buffer {
			l, err := disk.Open(disk.Options{Dir: filepath.Join(b.TempDir(), "buf"), Stream: "s", MaxBytes: 256 << 20})
			if err != nil {
				b.Fatal(err)
			}
			return l
		}},
	} {
		for _, comp := range []string{"UNCOMPRESSED", "GZIP"} {
			b.Run(bc.name+"/"+comp, func(b *testing.B) { benchRunner(b, bc.open(b), comp) })
		}
	}
}

func benchRunner(b *testing.B, buf buffer.Buffer, comp string) {
	defer buf.Close()
	d, err := newFile(b.TempDir(), "s", func(o *object.Options) { o.Compression = comp })
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(Options{
		Stream: "s", Buffer: buf, Destination: d, DestinationName: "file", ErrorOutput: d,
		SizeBytes: 5 << 20, Interval: time.Hour, RetryDuration: time.Minute, Metrics: m,
	})
	if err != nil {
		b.Fatal(err)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB, compressible
	recs := make([]pipeline.Record, 500)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	go func() { done <- r.Run(ctx) }()
	for n := b.N; n > 0; {
		k := min(n, len(recs))
		for i := range k {
			recs[i] = pipeline.Record{Data: payload}
		}
		err := buf.Append(ctx, recs[:k])
		if errors.Is(err, pipeline.ErrFull) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		n -= k
	}
	r.Drain()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if st := buf.State(); st.Committed != st.Head {
		b.Fatalf("not everything delivered: %+v", st)
	}
}
