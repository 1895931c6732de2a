package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
)

// Track names the metadata keys that hold a source's position in its
// records: for every value of Key (a Kinesis shard id), the log keeps the
// Value (the sequence number) of the last record appended with it. The
// records are the checkpoint: a position is durable exactly when its
// record is, in the same group commit, so a source that resumes after
// Positions neither loses nor re-reads a record (see the package doc).
type Track struct {
	Key, Value string
}

// IsZero reports whether nothing is tracked.
func (t Track) IsZero() bool { return t.Key == "" }

const (
	positionsName    = "positions"
	positionsTmpName = "positions.tmp"
	positionsMagic   = "SLPS"
	positionsVersion = 1
	// positionsMax bounds the file read at open (a stream has at most a
	// few thousand shards in its history; each entry is well under 256
	// bytes).
	positionsMax = 16 << 20
)

// Reasons of sluice_buffer_position_recoveries_total.
const (
	positionsMissing = "missing"
	positionsCorrupt = "corrupt"
)

var errBadPositions = errors.New("corrupt positions file")

// positionsState is the content of the positions file: the tracked values
// of every frame before covered.
type positionsState struct {
	covered pipeline.Position
	values  map[string]string
}

// encode renders p, all integers little-endian: "SLPS", version (1), three
// zero bytes, covered position (uint64), entry count (uint32), entries
// (uvarint key length, key, uvarint value length, value; sorted by key),
// CRC32C of everything before it.
func (p positionsState) encode() []byte {
	b := make([]byte, 0, 20+32*len(p.values)+4)
	b = append(b, positionsMagic...)
	b = append(b, positionsVersion, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(p.covered))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p.values)))
	for _, k := range slices.Sorted(maps.Keys(p.values)) {
		v := p.values[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, frame.Table()))
}

func decodePositions(b []byte) (positionsState, error) {
	var p positionsState
	if len(b) < 24 || string(b[0:4]) != positionsMagic {
		return p, fmt.Errorf("%w: bad size or magic", errBadPositions)
	}
	if b[4] != positionsVersion || b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return p, fmt.Errorf("%w: unknown version %d", errBadPositions, b[4])
	}
	end := len(b) - 4
	if crc32.Checksum(b[:end], frame.Table()) != binary.LittleEndian.Uint32(b[end:]) {
		return p, fmt.Errorf("%w: crc mismatch", errBadPositions)
	}
	p.covered = pipeline.Position(binary.LittleEndian.Uint64(b[8:16]))
	n := binary.LittleEndian.Uint32(b[16:20])
	p.values = make(map[string]string, min(n, 1<<16))
	rest := b[20:end]
	field := func() (string, bool) {
		l, q := binary.Uvarint(rest)
		if q <= 0 || l > uint64(len(rest)-q) {
			return "", false
		}
		s := string(rest[q : q+int(l)])
		rest = rest[q+int(l):]
		return s, true
	}
	for range n {
		k, ok1 := field()
		v, ok2 := field()
		if !ok1 || !ok2 {
			return p, fmt.Errorf("%w: bad entry", errBadPositions)
		}
		p.values[k] = v
	}
	if len(rest) != 0 || len(p.values) != int(n) {
		return p, fmt.Errorf("%w: bad entry count", errBadPositions)
	}
	return p, nil
}

// readPositions reads the positions file of dir; the error wraps
// fs.ErrNotExist when it is absent, errBadPositions when unreadable.
func readPositions(l *Log) (positionsState, error) {
	f, err := l.fs.OpenFile(filepath.Join(l.dir, positionsName), os.O_RDONLY, 0)
	if err != nil {
		return positionsState{}, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return positionsState{}, fmt.Errorf("read positions: %w", err)
	}
	if size > positionsMax {
		return positionsState{}, fmt.Errorf("%w: %d bytes", errBadPositions, size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return positionsState{}, fmt.Errorf("read positions: %w", err)
	}
	return decodePositions(b)
}

// Positions returns, for every value of the tracked key (Options.Track)
// ever appended, the tracked value of the last durable record that had
// it: a source resumes after them. Nil when nothing is tracked. The map
// is the caller's.
func (l *Log) Positions() map[string]string {
	if l.track.IsZero() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.positions)
}

// trackRecs returns the tracked key-value pairs of recs, the last value
// per key, in the order of their first appearance (a source appends one
// shard's records at a time, so this is usually one pair).
func (l *Log) trackRecs(recs []pipeline.Record) []string {
	if l.track.IsZero() {
		return nil
	}
	var kv []string
next:
	for i := range recs {
		k, ok := recs[i].Meta[l.track.Key]
		if !ok {
			continue
		}
		v := recs[i].Meta[l.track.Value]
		for j := 0; j < len(kv); j += 2 {
			if kv[j] == k {
				kv[j+1] = v
				continue next
			}
		}
		kv = append(kv, k, v)
	}
	return kv
}

// savePositions makes the positions file cover at least upTo (a segment
// boundary at or before the head): a no-op when it does already, else it
// writes the values known now, which cover the head. Commit calls it
// before deleting segments (their records would take their positions with
// them) and the writer after each roll, so that recovery only scans the
// active segment. It serializes on pmu, so a file never replaces a newer
// one.
func (l *Log) savePositions(upTo pipeline.Position) error {
	if l.track.IsZero() {
		return nil
	}
	l.pmu.Lock()
	defer l.pmu.Unlock()
	if l.posSaved >= upTo {
		return nil
	}
	if err := l.writePositions(); err != nil {
		return fmt.Errorf("write positions: %w", err)
	}
	return nil
}

// writePositions writes the positions file with the values known now,
// which cover the head; l.pmu is held.
func (l *Log) writePositions() error {
	l.mu.Lock()
	p := positionsState{covered: l.head, values: maps.Clone(l.positions)}
	l.mu.Unlock()
	if err := l.replaceFile(positionsName, positionsTmpName, p.encode()); err != nil {
		return err
	}
	l.posSaved = p.covered
	return nil
}

// recoverPositions rebuilds the tracked values at open: the positions file,
// then the frames after the position it covers. With the file missing or
// corrupt it scans every segment left, logging and counting it: positions
// of segments already deleted are then lost, and a source resumes those
// keys from its starting position. Called after recoverTail, before the
// writer starts.
func (l *Log) recoverPositions() error {
	p, err := readPositions(l)
	rewrite := err != nil
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		// A tracked log writes the file when it is created, so it is
		// missing only when lost, or when the log was not tracked before
		// (a stream that took direct puts).
		if l.committed > 0 || len(l.segs) > 1 || len(l.segs) == 1 && l.segs[0].size > 0 {
			l.log.Warn("disk buffer: positions file missing; recovering source positions from the records still buffered")
			l.m.positionsRecovered(positionsMissing)
		}
		p = positionsState{}
	case errors.Is(err, errBadPositions):
		l.log.Error("disk buffer: positions file corrupt; recovering source positions from the records still buffered", "err", err)
		l.m.positionsRecovered(positionsCorrupt)
		p = positionsState{}
	default:
		return err
	}
	l.positions = p.values
	if l.positions == nil {
		l.positions = map[string]string{}
	}
	l.posSaved = p.covered
	for i, s := range l.segs {
		// Only the active segment's size is known (recoverTail): an older
		// one ends where the next begins.
		size := s.size
		if i+1 < len(l.segs) {
			size = int64(l.segs[i+1].base - s.base)
		}
		if s.base+pipeline.Position(size) <= p.covered {
			continue
		}
		from := int64(0)
		if p.covered > s.base {
			from = int64(p.covered - s.base)
		}
		if err := l.scanPositions(s, from, size); err != nil {
			return err
		}
	}
	if rewrite || len(l.segs) > 1 && p.covered < l.segs[len(l.segs)-1].base {
		// The file was missing, corrupt, or lagged behind older segments:
		// save what was rebuilt, so the next open needs no scan of them.
		l.pmu.Lock()
		defer l.pmu.Unlock()
		if err := l.writePositions(); err != nil {
			return fmt.Errorf("write positions: %w", err)
		}
	}
	return nil
}

// scanPositions applies the tracked values of the frames of s from file
// offset from to size. It stops at the first bad frame: that is where
// Read will skip, and recoverTail has cut the active segment there.
func (l *Log) scanPositions(s *segment, from, size int64) error {
	key, val := []byte(l.track.Key), []byte(l.track.Value)
	var sc unsealScratch
	_, err := scanFrom(s.f, from, size, func(off int64, raw []byte, fr frame.Frame) error {
		if fr.Sealed() {
			var err error
			if fr, err = unseal(s.c, s, fr, raw, s.base+pipeline.Position(off), &sc); err != nil {
				return err
			}
		}
		var k, v []byte
		frame.EachMeta(fr.MetaRaw, func(mk, mv []byte) {
			switch {
			case string(mk) == string(key):
				k = mv
			case string(mk) == string(val):
				v = mv
			}
		})
		if k != nil {
			l.positions[string(k)] = string(v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recover positions of %s: %w", segName(s.base), err)
	}
	return nil
}
