package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-dev/sluice/buffer/disk/vfs"
	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
)

// DirLock is an exclusive lock on a file (flock), as Open takes on a
// stream's directory. Unlock releases it.
type DirLock = vfs.FileLock

// LockedError is the error (wrapped by Open) for a lock held by someone
// else; its message names the holder (pid and owner description).
type LockedError = vfs.LockedError

// Lock takes the exclusive lock of the file at path without waiting,
// creating it if needed, and writes "pid <pid> <owner>" into it; the lock is
// held until Unlock (or the process ends). When another process, or another
// Lock or Open of this one, holds it, it returns a *LockedError naming the
// holder. Open uses it on <dir>/lock; use it on a file of your own (e.g.
// <data_dir>/sluice.lock) to lock a whole data directory.
func Lock(path, owner string) (*DirLock, error) { return vfs.LockFile(path, owner) }

// MakeDir creates dir and its missing parents durably: the parent of every
// directory it creates is fsynced, as Open does for a buffer's directory,
// so that what is acknowledged in it survives a power loss.
func MakeDir(dir string) error {
	if err := makeDirs(vfs.OS(), dir); err != nil {
		return fmt.Errorf("make directory %s: %w", dir, err)
	}
	return nil
}

// Backlog is what a buffer directory holds, as read by Inspect.
type Backlog struct {
	// Committed and Head are the positions Open would start from (Head
	// may include a torn tail that Open would cut).
	Committed, Head pipeline.Position
	// Inflight are the batches marked in flight and not committed.
	Inflight []pipeline.BatchID
	// Bytes are the undelivered frame bytes, Head - Committed: zero when
	// everything was delivered.
	Bytes int64
	// Records is -1: counting them would read the whole backlog.
	Records int64
	// Oldest is the arrival time of the oldest undelivered record (zero
	// when none).
	Oldest time.Time
	// Segments is the number of segment files.
	Segments int
	// CursorLost is set when the cursor file is missing or corrupt while
	// segments exist: Open would redeliver everything from the oldest one.
	CursorLost bool
}

// Inspect reads what the buffer directory dir holds without modifying
// anything: for directories that no configured stream opens, or before a
// stream's buffer type is changed. It holds the directory's lock (shared)
// only while it reads, and fails with a *LockedError when a running log
// has it open. dir must exist.
func Inspect(dir string) (Backlog, error) {
	lk, ok, err := vfs.TryLockExisting(filepath.Join(dir, lockName))
	if err != nil {
		return Backlog{}, fmt.Errorf("inspect buffer %s: %w", dir, err)
	}
	if ok {
		defer lk.Unlock()
	}
	return inspect(vfs.OS(), dir)
}

func inspect(fsys vfs.FS, dir string) (Backlog, error) {
	b := Backlog{Records: -1}
	bases, err := listSegments(fsys, dir, false, func(string) {})
	if err != nil {
		return b, fmt.Errorf("inspect buffer %s: %w", dir, err)
	}
	b.Segments = len(bases)
	cur, err := readCursor(fsys, dir)
	switch {
	case err == nil:
		b.Committed, b.Inflight = cur.committed, cur.inflight
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, errBadCursor):
		b.CursorLost = len(bases) > 0
	default:
		return b, fmt.Errorf("inspect buffer %s: %w", dir, err)
	}
	if len(bases) == 0 {
		b.Head = b.Committed
		return b, nil
	}
	if b.CursorLost || b.Committed < bases[0] {
		b.Committed = bases[0]
	}
	last := bases[len(bases)-1]
	size, err := fileSize(fsys, filepath.Join(dir, segName(last)))
	if err != nil {
		return b, fmt.Errorf("inspect buffer %s: %w", dir, err)
	}
	b.Head = last + pipeline.Position(size)
	if b.Committed >= b.Head {
		b.Head = b.Committed
		return b, nil
	}
	b.Bytes = int64(b.Head - b.Committed)
	// The oldest record is in the last segment starting at or before it.
	seg := bases[0]
	for _, base := range bases {
		if base <= b.Committed {
			seg = base
		}
	}
	b.Oldest = arrivedAt(fsys, filepath.Join(dir, segName(seg)), int64(b.Committed-seg))
	return b, nil
}

func fileSize(fsys vfs.FS, name string) (int64, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Size()
}

// arrivedAt reads the arrival time of the frame at off of file name (zero
// when it cannot).
func arrivedAt(fsys vfs.FS, name string, off int64) time.Time {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	t, _ := readArrived(f, off)
	return t
}

// readArrived reads the arrival time of the frame at off of f.
func readArrived(f vfs.File, off int64) (time.Time, error) {
	var hdr [frame.HeaderSize]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return time.Time{}, err
	}
	return frame.ArrivedTime(int64(binary.LittleEndian.Uint64(hdr[8:16]))), nil
}
