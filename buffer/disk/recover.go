package disk

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/buffer/disk/vfs"
	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

// Reasons of sluice_buffer_cursor_recoveries_total.
const (
	cursorMissing = "missing"
	cursorCorrupt = "corrupt"
)

// listSegments returns the bases of the segment files of dir, in order,
// and removes a leftover cursor.tmp when clean is set.
func listSegments(fsys vfs.FS, dir string, clean bool, warn func(file string)) ([]pipeline.Position, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []pipeline.Position
	for _, n := range names {
		switch {
		case (n == cursorTmpName || n == positionsTmpName) && clean:
			if err := fsys.Remove(filepath.Join(dir, n)); err != nil {
				return nil, err
			}
		case strings.HasSuffix(n, segSuffix):
			v, err := strconv.ParseUint(strings.TrimSuffix(n, segSuffix), 10, 64)
			if err != nil || segName(pipeline.Position(v)) != n {
				warn(n)
				continue
			}
			bases = append(bases, pipeline.Position(v))
		}
	}
	// ReadDir sorts names, and zero padding makes that the order of bases.
	return bases, nil
}

func (l *Log) recover() error {
	bases, err := listSegments(l.fs, l.dir, true, func(file string) {
		l.log.Warn("disk buffer: ignoring unexpected file", "file", file)
	})
	if err != nil {
		return err
	}

	cur, err := readCursor(l.fs, l.dir)
	writeCursor := false
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, errBadCursor):
		// Start over from the oldest segment with a new log id: records
		// are redelivered (with new IDs), never lost.
		switch {
		case errors.Is(err, errBadCursor):
			l.log.Error("disk buffer: cursor file corrupt; redelivering from the oldest segment with a new log id", "err", err)
			l.m.cursorRecovered(cursorCorrupt)
		case len(bases) > 0:
			l.log.Error("disk buffer: cursor file missing; redelivering from the oldest segment with a new log id")
			l.m.cursorRecovered(cursorMissing)
		}
		if _, err := rand.Read(cur.logID[:]); err != nil {
			return fmt.Errorf("log id: %w", err)
		}
		cur.inflight = nil
		cur.committed = 0
		if len(bases) > 0 {
			cur.committed = bases[0]
		}
		writeCursor = true
	default:
		return err
	}
	l.logID = cur.logID
	l.logHex = hex.EncodeToString(cur.logID[:])
	l.committed = cur.committed
	l.inflight = cur.inflight

	for i, b := range bases {
		flag := os.O_RDONLY
		if i == len(bases)-1 {
			flag = os.O_RDWR
		}
		c, err := l.openKeyFile(b)
		if err != nil {
			return err // Open names the buffer
		}
		f, err := l.fs.OpenFile(filepath.Join(l.dir, segName(b)), flag, 0)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, &segment{base: b, f: f, c: c})
	}
	if len(l.segs) > 0 {
		last := l.segs[len(l.segs)-1]
		if err := l.recoverTail(last); err != nil {
			return err
		}
		l.head = last.base + pipeline.Position(last.size)
	}
	if !l.track.IsZero() {
		// Before deleting anything: a crash between a commit and its
		// reclaim leaves segments whose positions may not be saved yet.
		if err := l.recoverPositions(); err != nil {
			return err
		}
	}
	// Delete segments that end at or before the committed position.
	for len(l.segs) > 1 && l.segs[1].base <= l.committed {
		_ = l.segs[0].f.Close()
		if err := l.removeSegment(l.segs[0].base); err != nil {
			return err
		}
		l.segs = l.segs[1:]
	}
	if len(l.segs) > 0 && l.committed < l.segs[0].base {
		l.log.Warn("disk buffer: committed position before the oldest segment; moving it forward",
			"committed", l.committed, "oldest", l.segs[0].base)
		l.committed = l.segs[0].base
		writeCursor = true
	}
	if len(l.segs) == 0 || l.committed > l.head {
		if len(l.segs) > 0 {
			// Only possible when acknowledged data was not durable
			// (durability "os" and a machine crash).
			l.log.Warn("disk buffer: committed position beyond the log's end; continuing after it",
				"committed", l.committed, "head", l.head)
		}
		if err := l.newSegment(l.committed); err != nil {
			return err
		}
		l.head = l.committed
	}
	if last := l.segs[len(l.segs)-1]; l.keys.Sealing() || last.c != nil {
		// A segment a previous process wrote is not appended to when
		// either seals (its torn tail's positions would be sealed again
		// under its salt, or plain frames would follow sealed ones):
		// writing continues in a new segment.
		if err := l.replaceActive(last); err != nil {
			return err
		}
	}
	if kept := l.recoverInflight(); !slices.Equal(kept, l.inflight) {
		l.inflight = kept
		writeCursor = true
	}
	l.tail = l.head
	l.lastSkip = ^pipeline.Position(0)
	if writeCursor {
		if err := l.writeCursor(l.cursorLocked()); err != nil {
			return err
		}
	}
	return nil
}

// recoverInflight returns the in-flight batches that can still be rebuilt:
// those that start at or after the committed position and before the
// recovered head, clipped to the head (a tail lost to a power loss in mode
// os, or cut as corrupt, took their end with it). A mark left reaching past
// the head would overlap the batches appended after it and refuse them.
func (l *Log) recoverInflight() []pipeline.BatchID {
	var kept []pipeline.BatchID
	for _, id := range l.inflight {
		switch {
		case id.End <= l.committed:
		case id.First < l.committed:
			l.log.Warn("disk buffer: in-flight batch starts before the committed position; dropping it",
				"inflight", id.String(), "committed", l.committed)
		case id.First >= l.head:
			l.log.Warn("disk buffer: in-flight batch lies beyond the log's end; dropping it", "inflight", id.String(), "head", l.head)
		default:
			if id.End > l.head {
				l.log.Warn("disk buffer: in-flight batch ends beyond the log's end; clipping it", "inflight", id.String(), "head", l.head)
				id.End = l.head
			}
			kept = append(kept, id)
		}
	}
	return kept
}

func (l *Log) cursorLocked() cursorState {
	return cursorState{logID: l.logID, committed: l.committed, inflight: l.inflight}
}

// recoverTail scans the active segment and truncates it after the last good
// frame.
func (l *Log) recoverTail(s *segment) error {
	size, err := s.f.Size()
	if err != nil {
		return err
	}
	good, err := scan(s.f, size)
	if err != nil {
		return err
	}
	if good < size {
		l.log.Warn("disk buffer: truncating torn or corrupt tail", "segment", segName(s.base),
			"position", s.base+pipeline.Position(good), "bytes", size-good)
		l.m.corruptTruncations.Inc()
		l.m.corruptBytes.Add(float64(size - good))
		if err := s.f.Truncate(good); err != nil {
			return err
		}
		if err := s.f.Sync(); err != nil {
			return err
		}
	}
	s.size = good
	return nil
}

// scan returns the length of the valid prefix of frames of f.
func scan(f vfs.File, size int64) (int64, error) {
	return scanFrom(f, 0, size, nil)
}

// scanFrom returns the end of the valid frames of f that start at file
// offset from (a frame boundary), calling visit (unless nil) with each.
func scanFrom(f vfs.File, from, size int64, visit func(off int64, raw []byte, fr frame.Frame) error) (int64, error) {
	buf := make([]byte, 0, min(1<<20, max(size-from, 0)))
	off := from // file offset of buf[0]
	pos := from // file offset of the next frame
	for pos < size {
		r := int(pos - off)
		need := frame.HeaderSize
		if n, err := frame.Peek(buf[r:]); err == nil {
			need = n
		} else if !errors.Is(err, frame.ErrShort) {
			return pos, nil
		}
		if len(buf)-r < need {
			if pos+int64(need) > size {
				return pos, nil
			}
			// Refill from pos.
			want := max(need, cap(buf))
			if int64(want) > size-pos {
				want = int(size - pos)
			}
			if cap(buf) < want {
				buf = make([]byte, want)
			}
			buf = buf[:want]
			if _, err := f.ReadAt(buf, pos); err != nil && err != io.EOF {
				return 0, fmt.Errorf("scan: %w", err)
			}
			off = pos
			continue
		}
		fr, err := frame.Decode(buf[r:])
		if err != nil {
			return pos, nil
		}
		if visit != nil {
			if err := visit(pos, buf[r:r+fr.Len], fr); err != nil {
				return pos, err
			}
		}
		pos += int64(fr.Len)
	}
	return pos, nil
}

// newSegment creates an empty active segment at base, durably.
func (l *Log) newSegment(base pipeline.Position) error {
	f, c, err := l.createSegment(base)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.segs = append(l.segs, &segment{base: base, f: f, c: c})
	n := len(l.segs)
	l.mu.Unlock()
	l.m.segments.Set(float64(n))
	return nil
}

// createSegment creates the empty file of a segment at base, durably,
// after its key file when the log encrypts (the cipher; nil otherwise).
func (l *Log) createSegment(base pipeline.Position) (vfs.File, *seal.Cipher, error) {
	var c *seal.Cipher
	if l.keys.Sealing() {
		var err error
		if c, err = l.writeKeyFile(base); err != nil {
			return nil, nil, err
		}
	} else if err := l.fs.Remove(filepath.Join(l.dir, keyName(base))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("create segment: %w", err)
	}
	name := filepath.Join(l.dir, segName(base))
	f, err := l.fs.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if errors.Is(err, fs.ErrExist) {
		// Left by a crash (or a failed roll) before any frame reached it:
		// reuse it.
		f, err = l.fs.OpenFile(name, os.O_RDWR|os.O_TRUNC, 0)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create segment: %w", err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("create segment: %w", err)
	}
	return f, c, nil
}

// removeSegment deletes a segment's file and its key file.
func (l *Log) removeSegment(base pipeline.Position) error {
	if err := l.fs.Remove(filepath.Join(l.dir, segName(base))); err != nil {
		return err
	}
	if err := l.fs.Remove(filepath.Join(l.dir, keyName(base))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
