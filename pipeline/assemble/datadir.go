package assemble

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/config"
)

// The data directory is one daemon's: New locks it (lockName) before it
// opens anything, and each disk buffer locks its own directory too, so a
// second daemon started on the same data directory exits at once naming
// the holder instead of sharing the buffers (and losing records).

const lockName = ".lock"

// bufferRoot is where the streams' disk buffers live.
func bufferRoot(dataDir string) string { return filepath.Join(dataDir, "buffer") }

// bufferDir is the directory of a stream's disk buffer.
func bufferDir(dataDir, stream string) string { return filepath.Join(bufferRoot(dataDir), stream) }

// checkBuffers refuses a stream switched from a disk buffer to a memory
// buffer while its disk buffer still holds undelivered records, unless
// the stream says to abandon them: they would be stranded silently.
func checkBuffers(cfg *config.Config) config.Errors {
	var errs config.Errors
	for i := range cfg.Streams {
		s := &cfg.Streams[i]
		if s.Buffer.Type != config.BufferMemory || s.Buffer.AbandonDiskBacklog {
			continue
		}
		b, err := disk.Inspect(bufferDir(cfg.DataDir, s.Name))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, s.Pos.Errorf("stream %q: buffer type memory: cannot inspect its former disk buffer: %v", s.Name, err))
			}
			continue
		}
		if b.Bytes > 0 {
			errs = append(errs, s.Pos.Errorf("stream %q: buffer type memory, but its disk buffer %s still holds %d bytes of undelivered records: run it with the disk buffer until they are delivered, or set buffer.abandon_disk_backlog: true to leave them there",
				s.Name, bufferDir(cfg.DataDir, s.Name), b.Bytes))
		}
	}
	return errs
}

// stranded exports, for every buffer directory that no configured
// disk-buffered stream uses, the undelivered records it still holds (a
// stream removed or renamed); refresh also logs them. Nothing is deleted.
type stranded struct{ gauge *prometheus.GaugeVec }

func newStranded(reg prometheus.Registerer) (*stranded, error) {
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_buffer_stranded_bytes",
		Help: "Undelivered bytes in a buffer directory that no configured stream uses (a stream removed, renamed or switched to memory); never deleted.",
	}, []string{"stream"})
	if err := reg.Register(gauge); err != nil {
		return nil, fmt.Errorf("register stranded-buffer metric: %w", err)
	}
	return &stranded{gauge: gauge}, nil
}

// refresh looks at the buffer directories again (at start and after every
// reload).
func (st *stranded) refresh(cfg *config.Config, dataDir string, log *slog.Logger) {
	used := map[string]bool{}
	for i := range cfg.Streams {
		if cfg.Streams[i].Buffer.Type != config.BufferMemory {
			used[cfg.Streams[i].Name] = true
		}
	}
	st.gauge.Reset()
	entries, err := os.ReadDir(bufferRoot(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		log.Warn("listing the buffer directories", "dir", bufferRoot(dataDir), "err", err)
		return
	}
	for _, e := range entries {
		if !e.IsDir() || used[e.Name()] {
			continue
		}
		dir := filepath.Join(bufferRoot(dataDir), e.Name())
		b, err := disk.Inspect(dir)
		if err != nil {
			log.Warn("cannot inspect a buffer directory no stream uses", "stream", e.Name(), "dir", dir, "err", err)
			continue
		}
		if b.Bytes == 0 {
			continue
		}
		st.gauge.WithLabelValues(e.Name()).Set(float64(b.Bytes))
		log.Warn("a buffer directory that no configured stream uses holds undelivered records; they stay there until a stream of that name delivers them",
			"stream", e.Name(), "dir", dir, "bytes", b.Bytes, "records", b.Records)
	}
}
