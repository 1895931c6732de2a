package disk_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/buffertest"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/disk/vfs"
)

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 100}))
}

func TestConformanceOS(t *testing.T) {
	buffertest.Run(t, buffertest.Harness{
		Durable: true,
		Open: func(t testing.TB, dir string, maxBytes int64) buffer.Buffer {
			l, err := disk.Open(disk.Options{Dir: dir, Stream: "conf", MaxBytes: maxBytes, SegmentBytes: 4 << 10, Logger: testLogger()})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return l
		},
	})
}

func TestConformanceMemFS(t *testing.T) {
	fs := vfs.NewMem()
	buffertest.Run(t, buffertest.Harness{
		Durable: true,
		Open: func(t testing.TB, dir string, maxBytes int64) buffer.Buffer {
			l, err := disk.Open(disk.Options{Dir: dir, FS: fs, Stream: "conf", MaxBytes: maxBytes, SegmentBytes: 1 << 10,
				Durability: buffer.DurabilityOS, ReadChunkBytes: 100, Logger: testLogger()})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return l
		},
	})
}

func newMetrics(t testing.TB, reg *prometheus.Registry) *disk.Metrics {
	t.Helper()
	m, err := disk.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
