package assemble

import (
	"fmt"
	"log/slog"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

// openBuffer opens a stream's buffer under <data_dir>/buffer/<stream>.
// keys, when set, encrypts (or only decrypts) a disk buffer's segments.
func openBuffer(s *config.Stream, keys *seal.Keyring, dataDir, owner string, log *slog.Logger, m metrics) (buffer.Buffer, error) {
	bc := s.Buffer
	switch bc.Type {
	case "memory":
		return memory.New(memory.Options{MaxBytes: int64(bc.MaxBytes)}), nil
	default:
		// A Kinesis source's positions, or for a DirectPut stream the
		// numbers of replayed dead letters (router.go).
		track := disk.Track{Key: pipeline.MetaReplayID, Value: pipeline.MetaReplaySeq}
		if trackPositions(s) {
			track = disk.Track{Key: pipeline.MetaShardID, Value: pipeline.MetaSequenceNumber}
		}
		b, err := disk.Open(disk.Options{
			Track:        track,
			Dir:          bufferDir(dataDir, s.Name),
			Stream:       s.Name,
			Durability:   buffer.Durability(bc.Durability),
			SegmentBytes: int64(bc.SegmentBytes),
			MaxBytes:     int64(bc.MaxBytes),
			MinFreeBytes: minFree(bc.MinFreeBytes),
			Owner:        owner,
			Logger:       log,
			Metrics:      m.disk,
			Keys:         keys,
		})
		if err != nil {
			return nil, fmt.Errorf("opening buffer: %w", err) // the callers name the stream
		}
		return b, nil
	}
}

func bufferDescription(s *config.Stream, dataDir string) string {
	if s.Buffer.Type == "memory" {
		return "memory (lossy)"
	}
	enc := ""
	if s.Encryption.Enabled {
		enc = ", encrypted under key " + s.Encryption.KeyID
	}
	return bufferDir(dataDir, s.Name) + " (" + s.Buffer.Durability + enc + ")"
}

// minFree maps the config's min_free_bytes (0: no reserve) to
// disk.Options.MinFreeBytes (negative: no reserve).
func minFree(b config.Size) int64 {
	if b == 0 {
		return -1
	}
	return int64(b)
}
