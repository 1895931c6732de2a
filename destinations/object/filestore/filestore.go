// Package filestore is an object.Store over a local directory: objects are
// files under the root, keys are slash-separated paths relative to it.
//
// Objects are written atomically: a temporary file ".<object>.<random>.tmp"
// in the object's directory is written through a buffered writer,
// fsynced, renamed into place, and the directory is fsynced. Directories
// are created with their parents, each made durable by fsyncing its
// parent. Readers never see a partial object; temporary files a crash
// left behind for a stream are removed by New. Errors carry File.* codes
// (errors.go).
package filestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

const writeBufferSize = 256 << 10

// CodeInvalidPath is the code of keys and directories that cannot be
// created (a prefix escaping the root, a regular file in the way).
const CodeInvalidPath = "File.InvalidPath"

// Rule is the store's restriction on evaluated prefixes (see
// object.KeyRule): keys stay inside the root, and no name starts with '.'
// (that is how temporary files are named).
var Rule = object.KeyRule{Check: CheckPrefix, Code: CodeInvalidPath}

// Store writes objects under a directory. It is safe for concurrent use.
type Store struct {
	root string
	log  *slog.Logger
	bufs sync.Pool     // *bufio.Writer
	keys *seal.Keyring // not Sealing: objects are written in the clear

	dirMu sync.Mutex
	dirs  map[string]struct{} // directories known to exist durably
}

var _ object.Store = (*Store)(nil)

// New returns a store rooted at root, which must be absolute. It creates
// root if needed and removes the temporary files a crash left behind for
// stream (other streams' are left alone).
func New(root, stream string, log *slog.Logger) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("file store: path %q must be absolute", root)
	}
	if err := object.CheckStreamName(stream); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{root: filepath.Clean(root), log: log, dirs: map[string]struct{}{}}
	if err := s.ensureDir(s.root); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	if err := s.removeStaleTemps(stream); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	return s, nil
}

// Encrypt makes the store write every object encrypted under keys'
// current key (package seal's stream format: header, 64 KiB chunks), for
// data at rest on local disks (a keyring that only reads, or nil, leaves
// them in the clear). Call it before the first Create.
func (s *Store) Encrypt(keys *seal.Keyring) *Store {
	s.keys = keys
	return s
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// CheckPrefix accepts an evaluated, relative, slash-separated key prefix
// that stays inside the root.
func CheckPrefix(p string) error {
	switch {
	case strings.HasPrefix(p, "/"):
		return errors.New("must be relative")
	case strings.ContainsAny(p, "\\\x00"):
		return errors.New("backslash and NUL are not allowed")
	}
	for _, el := range strings.Split(p, "/") {
		if el == "." || el == ".." {
			return fmt.Errorf("%q path elements are not allowed", el)
		}
	}
	// Names starting with '.' would look like our temporary files.
	if strings.HasPrefix(p, ".") || strings.Contains(p, "/.") {
		return errors.New("names must not start with '.'")
	}
	return nil
}

// checkKey accepts a key that names a file inside the root.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("invalid key %q", key)
	}
	for _, el := range strings.Split(key, "/") {
		if el == "." || el == ".." {
			return fmt.Errorf("invalid key %q: \".\" or \"..\" path element", key)
		}
	}
	return nil
}

// Create starts the object key in a temporary file of its directory.
func (s *Store) Create(ctx context.Context, key string, _ object.Meta) (object.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file create %s: %w", key, err)
	}
	if err := checkKey(key); err != nil {
		return nil, &Error{Op: "create", Path: key, Code: CodeInvalidPath, Err: err}
	}
	final := filepath.Join(s.root, filepath.FromSlash(key))
	dir := filepath.Dir(final)
	f, err := s.createTemp(dir, "."+filepath.Base(final)+".*.tmp")
	if err != nil {
		return nil, err
	}
	bw, _ := s.bufs.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(f, writeBufferSize)
	} else {
		bw.Reset(f)
	}
	o := &file{s: s, ctx: ctx, f: f, bw: bw, final: final, dir: dir}
	if s.keys.Sealing() {
		if o.sw, err = seal.NewWriter(bw, s.keys); err != nil {
			o.Abort()
			return nil, classify("write", final, err)
		}
	}
	return o, nil
}

// createTemp creates a temporary file in dir, creating dir first. A
// directory removed since it was created is created again.
func (s *Store) createTemp(dir, pattern string) (*os.File, error) {
	if err := s.ensureDir(dir); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, pattern)
	if errors.Is(err, fs.ErrNotExist) {
		s.forgetDirs()
		if err := s.ensureDir(dir); err != nil {
			return nil, err
		}
		f, err = os.CreateTemp(dir, pattern)
	}
	if err != nil {
		return nil, classify("create", dir, err)
	}
	return f, nil
}

// Ready checks that the root is a directory the process may write to; it
// does no I/O beyond a stat and an access check.
func (s *Store) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Stat(s.root)
	if err != nil {
		return classify("stat", s.root, err)
	}
	if !fi.IsDir() {
		return classify("stat", s.root, &fs.PathError{Op: "stat", Path: s.root, Err: errNotDir})
	}
	if err := writable(s.root); err != nil {
		return classify("access", s.root, err)
	}
	return nil
}

// Close does nothing: every object is committed or aborted by its writer.
func (s *Store) Close(context.Context) error { return nil }

// file is an object being written.
type file struct {
	s          *Store
	ctx        context.Context
	f          *os.File
	bw         *bufio.Writer
	final, dir string
	sw         *seal.Writer // encrypting, when the store does
	err        error        // the first write error
	done       bool         // committed or aborted
}

func (o *file) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	if o.done {
		return 0, fmt.Errorf("file write %s: object already committed or aborted", o.final)
	}
	var n int
	var err error
	if o.sw != nil {
		n, err = o.sw.Write(p)
	} else {
		n, err = o.bw.Write(p)
	}
	if err != nil {
		o.err = classify("write", o.final, err)
	}
	return n, o.err
}

// Commit flushes, fsyncs and closes the temporary file, renames it into
// place and fsyncs the directory.
func (o *file) Commit() (err error) {
	if o.err != nil {
		return o.err
	}
	if o.done {
		return fmt.Errorf("file commit %s: object already committed or aborted", o.final)
	}
	op := "write"
	defer func() {
		if err != nil {
			o.Abort()
			if cerr := o.ctx.Err(); cerr != nil && errors.Is(err, cerr) {
				err = fmt.Errorf("file commit %s: %w", o.final, err)
			} else {
				err = classify(op, o.final, err)
			}
		}
	}()
	if o.sw != nil {
		if err := o.sw.Close(); err != nil {
			return err
		}
	}
	if err := o.bw.Flush(); err != nil {
		return err
	}
	o.release()
	op = "fsync"
	if err := o.f.Sync(); err != nil {
		return err
	}
	op = "close"
	if err := o.f.Close(); err != nil {
		return err
	}
	if err := o.ctx.Err(); err != nil {
		return err
	}
	op = "rename"
	if err := os.Rename(o.f.Name(), o.final); err != nil {
		return err
	}
	o.done = true
	op = "fsync directory"
	return syncDir(o.dir)
}

// Abort closes and removes the temporary file.
func (o *file) Abort() {
	if o.done {
		return
	}
	o.done = true
	o.release()
	_ = o.f.Close()
	_ = os.Remove(o.f.Name())
}

func (o *file) release() {
	if o.bw != nil {
		o.bw.Reset(nil)
		o.s.bufs.Put(o.bw)
		o.bw = nil
	}
}

// ensureDir creates dir (and its parents) and makes the new entries
// durable by fsyncing each created directory's parent.
func (s *Store) ensureDir(dir string) error {
	s.dirMu.Lock()
	_, ok := s.dirs[dir]
	s.dirMu.Unlock()
	if ok {
		return nil
	}
	// Find the deepest existing ancestor, so we know which parents to sync.
	var created []string
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return classify("mkdir", dir, &fs.PathError{Op: "mkdir", Path: p, Err: errNotDir})
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return classify("mkdir", dir, err)
		}
		created = append(created, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if len(created) > 0 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return classify("mkdir", dir, err)
		}
		for _, c := range created {
			if err := syncDir(filepath.Dir(c)); err != nil {
				return classify("fsync directory", filepath.Dir(c), err)
			}
		}
	}
	s.dirMu.Lock()
	s.dirs[dir] = struct{}{}
	s.dirMu.Unlock()
	return nil
}

func (s *Store) forgetDirs() {
	s.dirMu.Lock()
	clear(s.dirs)
	s.dirMu.Unlock()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// removeStaleTemps deletes the temporary files of stream that a crash
// left under the root. Other streams' files are left alone.
func (s *Store) removeStaleTemps(stream string) error {
	re := regexp.MustCompile(`^\.` + regexp.QuoteMeta(stream) + `-` + prefix.StreamVersion +
		`-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.[0-9a-z!\-_.*'()]+)?\.[0-9]+\.tmp$`)
	removed := 0
	err := filepath.WalkDir(s.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".tmp") && re.MatchString(e.Name()) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove stale temporary files under %s: %w", s.root, err)
	}
	if removed > 0 {
		s.log.Info("removed temporary files left by a crash", "count", removed, "path", s.root)
	}
	return nil
}
