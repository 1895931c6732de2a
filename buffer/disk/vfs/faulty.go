package vfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Op names an operation Faulty can fail.
type Op string

// The operations Faulty can fail.
const (
	OpOpen     Op = "open"     // OpenFile without O_CREATE
	OpCreate   Op = "create"   // OpenFile with O_CREATE
	OpRead     Op = "read"     // File.ReadAt
	OpWrite    Op = "write"    // File.WriteAt, File.WritevAt
	OpSync     Op = "sync"     // File.Sync
	OpTruncate Op = "truncate" // File.Truncate
	OpRename   Op = "rename"   // FS.Rename (matched on the old or the new name)
	OpRemove   Op = "remove"   // FS.Remove
	OpReadDir  Op = "readdir"  // FS.ReadDir
	OpMkdir    Op = "mkdir"    // FS.MkdirAll
	OpSyncDir  Op = "syncdir"  // FS.SyncDir
)

// Fault is a planned failure of Faulty.
type Fault struct {
	Op Op
	// Name is a filepath.Match pattern for the base name of the file or
	// directory operated on ("*.seg", "cursor.tmp"); empty matches all.
	Name string
	// Skip lets this many matching operations succeed first.
	Skip int
	// Times is how many matching operations then fail: 0 means one,
	// negative means every one until Clear.
	Times int
	// Err is the error returned (default syscall.EIO).
	Err error
}

// Faulty wraps a filesystem and fails chosen operations on demand, for
// tests of I/O error paths.
//
// Failures follow what Linux does, so that code which gets the error
// handling wrong loses data in a test rather than in production:
//   - a failed write writes the first half of its bytes, then fails;
//   - a failed Sync makes nothing durable, and every later Sync through the
//     same open file succeeds without making anything durable either (after
//     a writeback error the kernel reports it once per open file and marks
//     the pages clean). Writes through such a file are recorded (see
//     WritesAfterFailedSync).
//
// Faulty is a Locker when the wrapped filesystem is one (otherwise its
// locks lock nothing).
type Faulty struct {
	FS FS

	mu         sync.Mutex
	faults     []*Fault
	injected   int
	lateWrites []string
}

// NewFaulty wraps fsys.
func NewFaulty(fsys FS) *Faulty { return &Faulty{FS: fsys} }

// Inject plans a failure; planned failures are matched in order.
func (f *Faulty) Inject(flt Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if flt.Times == 0 {
		flt.Times = 1
	}
	if flt.Err == nil {
		flt.Err = syscall.EIO
	}
	f.faults = append(f.faults, &flt)
}

// Clear drops every planned failure.
func (f *Faulty) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// Injected returns how many operations have been failed so far.
func (f *Faulty) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

// WritesAfterFailedSync returns the names of the files written (each time
// one was) through an open file whose Sync had failed before.
func (f *Faulty) WritesAfterFailedSync() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lateWrites...)
}

// fail reports the planned error for op on name, if any.
func (f *Faulty) fail(op Op, names ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, flt := range f.faults {
		if flt.Op != op || !matchAny(flt.Name, names) {
			continue
		}
		if flt.Skip > 0 {
			flt.Skip--
			return nil
		}
		if flt.Times > 0 {
			flt.Times--
			if flt.Times == 0 {
				f.faults = append(f.faults[:i:i], f.faults[i+1:]...)
			}
		}
		f.injected++
		return flt.Err
	}
	return nil
}

func matchAny(pattern string, names []string) bool {
	if pattern == "" {
		return true
	}
	for _, n := range names {
		if ok, _ := filepath.Match(pattern, filepath.Base(n)); ok {
			return true
		}
	}
	return false
}

// OpenFile opens a file of the wrapped filesystem (OpCreate with O_CREATE,
// OpOpen otherwise).
func (f *Faulty) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	op := OpOpen
	if flag&os.O_CREATE != 0 {
		op = OpCreate
	}
	if err := f.fail(op, name); err != nil {
		return nil, &os.PathError{Op: string(op), Path: name, Err: err}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f, name: name}, nil
}

// Rename renames a file of the wrapped filesystem.
func (f *Faulty) Rename(oldname, newname string) error {
	if err := f.fail(OpRename, oldname, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return f.FS.Rename(oldname, newname)
}

// Remove removes a file of the wrapped filesystem.
func (f *Faulty) Remove(name string) error {
	if err := f.fail(OpRemove, name); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return f.FS.Remove(name)
}

// ReadDir lists a directory of the wrapped filesystem.
func (f *Faulty) ReadDir(dir string) ([]string, error) {
	if err := f.fail(OpReadDir, dir); err != nil {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: err}
	}
	return f.FS.ReadDir(dir)
}

// MkdirAll makes directories in the wrapped filesystem.
func (f *Faulty) MkdirAll(dir string, perm fs.FileMode) ([]string, error) {
	if err := f.fail(OpMkdir, dir); err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return f.FS.MkdirAll(dir, perm)
}

// SyncDir syncs a directory of the wrapped filesystem.
func (f *Faulty) SyncDir(dir string) error {
	if err := f.fail(OpSyncDir, dir); err != nil {
		return &os.PathError{Op: "syncdir", Path: dir, Err: err}
	}
	return f.FS.SyncDir(dir)
}

// Lock locks through the wrapped filesystem when it is a Locker.
func (f *Faulty) Lock(name, owner string) (Unlocker, error) {
	if l, ok := f.FS.(Locker); ok {
		return l.Lock(name, owner)
	}
	return nopUnlocker{}, nil
}

type nopUnlocker struct{}

func (nopUnlocker) Unlock() error { return nil }

type faultyFile struct {
	File
	fs   *Faulty
	name string

	mu         sync.Mutex
	syncFailed bool
}

func (f *faultyFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail(OpRead, f.name); err != nil {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: err}
	}
	return f.File.ReadAt(p, off)
}

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	return f.WritevAt([][]byte{p}, off)
}

func (f *faultyFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	f.mu.Lock()
	late := f.syncFailed
	f.mu.Unlock()
	if late {
		f.fs.mu.Lock()
		f.fs.lateWrites = append(f.fs.lateWrites, f.name)
		f.fs.mu.Unlock()
	}
	if err := f.fs.fail(OpWrite, f.name); err != nil {
		total := 0
		for _, b := range bufs {
			total += len(b)
		}
		half := total / 2
		var part [][]byte
		for _, b := range bufs {
			if half == 0 {
				break
			}
			n := min(half, len(b))
			part = append(part, b[:n])
			half -= n
		}
		n, _ := f.File.WritevAt(part, off)
		return n, &os.PathError{Op: "write", Path: f.name, Err: err}
	}
	return f.File.WritevAt(bufs, off)
}

func (f *faultyFile) Sync() error {
	if err := f.fs.fail(OpSync, f.name); err != nil {
		f.mu.Lock()
		f.syncFailed = true
		f.mu.Unlock()
		return &os.PathError{Op: "sync", Path: f.name, Err: err}
	}
	f.mu.Lock()
	lying := f.syncFailed
	f.mu.Unlock()
	if lying {
		return nil
	}
	return f.File.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	if err := f.fs.fail(OpTruncate, f.name); err != nil {
		return &os.PathError{Op: "truncate", Path: f.name, Err: err}
	}
	return f.File.Truncate(size)
}
