package vfs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Mem is a strict in-memory filesystem for crash tests, after Pebble's
// strict MemFS. It remembers what is durable: a file's data as of its last
// Sync, and a directory's entries as of its last SyncDir. Crash returns the
// filesystem a machine would find after a power loss at that instant, and
// makes every later operation on the old one fail with ErrCrashed.
//
// Directories are entries of their parent like files: one made by MkdirAll
// survives a crash only once its parent directory has been synced (and the
// parent's own entry, up to the root, is durable). Renames and removals
// not followed by SyncDir of the directory revert at a crash: a renamed
// file comes back under its old name, a renamed-over file's old content
// comes back under the new one. Paths are slash separated and cleaned.
//
// Mem implements Locker with locks held in memory (they do not survive a
// crash, as flock locks do not survive a reboot).
type Mem struct {
	mu       sync.Mutex
	dirs     map[string]*memDir
	locks    map[string]bool
	crashed  bool
	ops      int64
	crashAt  int64 // crash at this mutating operation (0: never)
	crashRng *rand.Rand
	snapshot *Mem
}

type memDir struct {
	cur     map[string]*memNode
	durable map[string]*memNode
}

type memNode struct {
	data   []byte
	synced []byte
	dir    bool // a subdirectory: its entries are in Mem.dirs
}

// NewMem returns an empty filesystem.
func NewMem() *Mem {
	return &Mem{dirs: map[string]*memDir{"/": newMemDir()}, locks: map[string]bool{}}
}

func newMemDir() *memDir {
	return &memDir{cur: map[string]*memNode{}, durable: map[string]*memNode{}}
}

// CrashAfter arranges a crash at the n-th mutating operation from now
// (write, sync, truncate, create, rename, remove, directory sync): that
// operation fails with ErrCrashed and Snapshot then returns the surviving
// state. With rng non-nil the crash may also keep a random prefix of each
// file's unsynced appended bytes, some of them corrupted (a torn write).
func (m *Mem) CrashAfter(n int64, rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashAt = m.ops + n
	m.crashRng = rng
}

// Crash crashes the filesystem now and returns the surviving state.
func (m *Mem) Crash(rng *rand.Rand) *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.crashed {
		m.crashRng = rng
		m.crashLocked()
	}
	return m.snapshot
}

// Snapshot returns the state that survived the crash, or nil before it.
func (m *Mem) Snapshot() *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshot
}

func (m *Mem) crashLocked() {
	m.crashed = true
	s := NewMem()
	m.surviving(s, "/")
	m.snapshot = s
}

// surviving copies into s what of directory dir (itself durable) survives
// a crash: its durable entries, files with their synced data (or, with a
// crash rng, a random torn prefix of their unsynced appends), directories
// recursively. Names are visited in order so that a seeded rng makes the
// same crash every time.
func (m *Mem) surviving(s *Mem, dir string) {
	rng := m.crashRng
	d := m.dirs[dir]
	nd := newMemDir()
	s.dirs[dir] = nd
	names := make([]string, 0, len(d.durable))
	for name := range d.durable {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := d.durable[name]
		if n.dir {
			sub := &memNode{dir: true}
			nd.cur[name], nd.durable[name] = sub, sub
			m.surviving(s, path.Join(dir, name))
			continue
		}
		data := bytes.Clone(n.synced)
		if rng != nil && len(n.data) > len(n.synced) && bytes.Equal(n.data[:len(n.synced)], n.synced) && rng.IntN(2) == 0 {
			extra := n.data[len(n.synced):]
			k := rng.IntN(len(extra) + 1)
			data = append(data, extra[:k]...)
			if k > 0 && rng.IntN(4) == 0 {
				data[len(n.synced)+rng.IntN(k)] ^= byte(1 + rng.IntN(255))
			}
		}
		node := &memNode{data: data, synced: bytes.Clone(data)}
		nd.cur[name], nd.durable[name] = node, node
	}
}

// mutate counts a mutating operation and crashes when its turn has come.
// It is called with m.mu held.
func (m *Mem) mutate() error {
	if m.crashed {
		return ErrCrashed
	}
	m.ops++
	if m.crashAt > 0 && m.ops >= m.crashAt {
		m.crashLocked()
		return ErrCrashed
	}
	return nil
}

func split(name string) (string, string) {
	name = path.Clean("/" + name)
	return path.Dir(name), path.Base(name)
}

func (m *Mem) dir(dir string) (*memDir, error) {
	d, ok := m.dirs[path.Clean("/"+dir)]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: dir, Err: fs.ErrNotExist}
	}
	return d, nil
}

// OpenFile opens or creates a file. O_CREATE, O_EXCL and O_TRUNC are
// honoured; access modes are not enforced.
func (m *Mem) OpenFile(name string, flag int, _ fs.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return nil, ErrCrashed
	}
	dn, base := split(name)
	d, err := m.dir(dn)
	if err != nil {
		return nil, err
	}
	n, ok := d.cur[base]
	switch {
	case ok && n.dir:
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		if err := m.mutate(); err != nil {
			return nil, err
		}
		n = &memNode{}
		d.cur[base] = n
	case flag&os.O_TRUNC != 0:
		if err := m.mutate(); err != nil {
			return nil, err
		}
		n.data = nil
	}
	return &memFile{fs: m, n: n, name: name}, nil
}

// Rename renames a file; durable after SyncDir.
func (m *Mem) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(); err != nil {
		return err
	}
	od, ob := split(oldname)
	nd, nb := split(newname)
	if od != nd {
		return fmt.Errorf("rename %s %s: across directories not supported", oldname, newname)
	}
	d, err := m.dir(od)
	if err != nil {
		return err
	}
	n, ok := d.cur[ob]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	if old, ok := d.cur[nb]; n.dir || ok && old.dir {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.EISDIR}
	}
	delete(d.cur, ob)
	d.cur[nb] = n
	return nil
}

// Remove removes a file; durable after SyncDir.
func (m *Mem) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(); err != nil {
		return err
	}
	dn, base := split(name)
	d, err := m.dir(dn)
	if err != nil {
		return err
	}
	n, ok := d.cur[base]
	if !ok {
		return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if n.dir {
		return &os.PathError{Op: "remove", Path: name, Err: syscall.EISDIR}
	}
	delete(d.cur, base)
	return nil
}

// ReadDir lists the files of dir, sorted.
func (m *Mem) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return nil, ErrCrashed
	}
	d, err := m.dir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(d.cur))
	for name, n := range d.cur {
		if !n.dir {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll creates dir and its missing parents. Each new directory is an
// entry of its parent, durable after SyncDir of the parent.
func (m *Mem) MkdirAll(dir string, _ fs.FileMode) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return nil, ErrCrashed
	}
	p := path.Clean("/" + dir)
	var missing []string
	for ; p != "/"; p = path.Dir(p) {
		if _, ok := m.dirs[p]; ok {
			break
		}
		parent, base := split(p)
		if n, ok := m.dirs[parent]; ok {
			if e, ok := n.cur[base]; ok && !e.dir {
				return nil, &os.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
		}
		missing = append(missing, p)
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := m.mutate(); err != nil {
			return created, err
		}
		parent, base := split(missing[i])
		m.dirs[parent].cur[base] = &memNode{dir: true}
		m.dirs[missing[i]] = newMemDir()
		created = append(created, missing[i])
	}
	return created, nil
}

// Lock takes the in-memory lock of name: at most one holder at a time,
// like flock on the OS filesystem. owner is not recorded.
func (m *Mem) Lock(name, _ string) (Unlocker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return nil, ErrCrashed
	}
	name = path.Clean("/" + name)
	if m.locks[name] {
		return nil, &LockedError{Path: name, Holder: "another user of this in-memory filesystem"}
	}
	m.locks[name] = true
	return memLock{m: m, name: name}, nil
}

type memLock struct {
	m    *Mem
	name string
}

func (l memLock) Unlock() error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	delete(l.m.locks, l.name)
	return nil
}

// SyncDir makes dir's current entries durable.
func (m *Mem) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(); err != nil {
		return err
	}
	d, err := m.dir(dir)
	if err != nil {
		return err
	}
	d.durable = make(map[string]*memNode, len(d.cur))
	for k, v := range d.cur {
		d.durable[k] = v
	}
	return nil
}

// Files returns the current content of every file, by path (for tests
// that inspect or damage the storage).
func (m *Mem) Files() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for dn, d := range m.dirs {
		for fn, n := range d.cur {
			if !n.dir {
				out[path.Join(dn, fn)] = n.data
			}
		}
	}
	return out
}

// Damage applies f to the current content of file name, durably (as if
// the medium changed under the program).
func (m *Mem) Damage(name string, f func([]byte) []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dn, base := split(name)
	d, err := m.dir(dn)
	if err != nil {
		return err
	}
	n, ok := d.cur[base]
	if !ok || n.dir {
		return &os.PathError{Op: "damage", Path: name, Err: fs.ErrNotExist}
	}
	n.data = f(n.data)
	n.synced = bytes.Clone(n.data)
	return nil
}

type memFile struct {
	fs     *Mem
	n      *memNode
	name   string
	closed bool
}

func (f *memFile) check() error {
	if f.fs.crashed {
		return ErrCrashed
	}
	if f.closed {
		return &os.PathError{Op: "use", Path: f.name, Err: fs.ErrClosed}
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	return f.WritevAt([][]byte{p}, off)
}

func (f *memFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	if err := f.fs.mutate(); err != nil {
		return 0, err
	}
	total := 0
	for _, b := range bufs {
		end := off + int64(len(b))
		if end > int64(len(f.n.data)) {
			f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
		}
		copy(f.n.data[off:], b)
		off = end
		total += len(b)
	}
	return total, nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if err := f.fs.mutate(); err != nil {
		return err
	}
	f.n.synced = bytes.Clone(f.n.data)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if err := f.fs.mutate(); err != nil {
		return err
	}
	if size <= int64(len(f.n.data)) {
		f.n.data = f.n.data[:size:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.closed = true
	return nil
}

// String describes the filesystem's files and sizes (for test failures).
func (m *Mem) String() string {
	var b strings.Builder
	files := m.Files()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s (%d bytes)\n", n, len(files[n]))
	}
	return b.String()
}
