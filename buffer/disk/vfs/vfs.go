// Package vfs is the small filesystem interface buffer/disk does its file
// I/O through, with the operating system's implementation (OS) and a strict
// in-memory one for crash tests (Mem).
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// File is an open file. Offsets are explicit: there is no file position.
type File interface {
	io.ReaderAt
	io.WriterAt
	// WritevAt writes bufs one after the other starting at off (pwritev).
	WritevAt(bufs [][]byte, off int64) (int, error)
	// Sync makes the file's data and size durable (fdatasync).
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	Close() error
}

// FS is a filesystem. Creating, renaming or removing a file is durable only
// after SyncDir of its directory.
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	// ReadDir returns the names of the files in dir, sorted.
	ReadDir(dir string) ([]string, error)
	// MkdirAll creates dir and its missing parents and returns the
	// directories it created, outermost first. Each is durable only after
	// SyncDir of its parent.
	MkdirAll(dir string, perm fs.FileMode) ([]string, error)
	// SyncDir makes the directory's entries durable.
	SyncDir(dir string) error
}

// OS returns the operating system's filesystem.
func OS() FS { return osFS{} }

type osFS struct{}

type osFile struct{ *os.File }

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) MkdirAll(dir string, perm fs.FileMode) ([]string, error) {
	var missing []string
	for p := filepath.Clean(dir); ; {
		st, err := os.Stat(p)
		if err == nil {
			if !st.IsDir() {
				return nil, &os.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, p)
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], perm)
		if errors.Is(err, fs.ErrExist) {
			continue // made by someone else meanwhile
		}
		if err != nil {
			return created, err
		}
		created = append(created, missing[i])
	}
	return created, nil
}

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (f osFile) Sync() error { return fdatasync(f.File) }

func (f osFile) WritevAt(bufs [][]byte, off int64) (int, error) { return pwritev(f.File, bufs, off) }

// writevFallback writes bufs one WriteAt at a time.
func writevFallback(f *os.File, bufs [][]byte, off int64) (int, error) {
	total := 0
	for _, b := range bufs {
		n, err := f.WriteAt(b, off)
		total += n
		off += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// ErrCrashed is returned by every operation of a Mem filesystem after its
// simulated crash.
var ErrCrashed = errors.New("vfs: simulated crash")

// FreeSpacer is implemented by filesystems that can tell the space left
// for new data (the OS filesystem does; the in-memory one does not, and
// is then treated as unlimited).
type FreeSpacer interface {
	// FreeBytes returns the bytes available to an unprivileged writer in
	// the filesystem holding dir.
	FreeBytes(dir string) (int64, error)
}

func (osFS) FreeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil // Bsize is uint32 on darwin
}

// Locker is implemented by filesystems that can lock a file exclusively
// (the OS filesystem with flock, Mem in memory). buffer/disk locks a
// stream's directory through it when the filesystem has it.
type Locker interface {
	// Lock takes the exclusive lock of file name without waiting, creating
	// the file if needed, and records owner as the holder. When another
	// holder has it, it returns a *LockedError.
	Lock(name, owner string) (Unlocker, error)
}

// Unlocker releases a lock.
type Unlocker interface {
	Unlock() error
}

// LockedError reports a lock held by someone else.
type LockedError struct {
	// Path is the lock file.
	Path string
	// Holder is what the holder wrote in it: "pid <pid>" and its owner
	// description ("unknown" when it wrote nothing yet).
	Holder string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is locked by %s", e.Path, e.Holder)
}

func (osFS) Lock(name, owner string) (Unlocker, error) { return LockFile(name, owner) }
