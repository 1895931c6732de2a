package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

// Reader lists and reads the objects under a directory, without writing
// anything: unlike New it creates no directory and removes no temporary
// file, so it is safe beside a running daemon writing there.
type Reader struct {
	root string
	keys *seal.Keyring // nil: encrypted objects cannot be read
}

var _ object.Reader = (*Reader)(nil)

// NewReader returns a reader of the objects under root, which must be
// absolute. The directory need not exist (then there is nothing to list).
func NewReader(root string) (*Reader, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("file store: path %q must be absolute", root)
	}
	return &Reader{root: filepath.Clean(root)}, nil
}

// Root is the reader's directory.
func (r *Reader) Root() string { return r.root }

// List walks the directory of prefix (the part up to its last slash) and
// returns the regular files whose keys start with prefix, sorted by key.
// Names starting with '.' (the store's temporary files; a store never
// writes such names otherwise) are skipped, directories too.
func (r *Reader) List(ctx context.Context, prefix string) ([]object.Info, error) {
	if strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "\\\x00") {
		return nil, fmt.Errorf("file list %q: invalid prefix", prefix)
	}
	dir := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i]
	}
	for _, el := range strings.Split(dir, "/") {
		if el == "." || el == ".." {
			return nil, fmt.Errorf("file list %q: \".\" or \"..\" path element", prefix)
		}
	}
	start := filepath.Join(r.root, filepath.FromSlash(dir))
	var out []object.Info
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // nothing there, or removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			return nil
		}
		if strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(r.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if e.IsDir() {
			// Skip directories that cannot hold a key under prefix.
			if d := key + "/"; !strings.HasPrefix(d, prefix) && !strings.HasPrefix(prefix, d) {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, object.Info{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("file list %s: %w", path.Join(r.root, prefix), err)
	}
	slices.SortFunc(out, func(a, b object.Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Open opens the object key.
func (r *Reader) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file open %s: %w", key, err)
	}
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("file open: %w", err)
	}
	f, err := os.Open(filepath.Join(r.root, filepath.FromSlash(key)))
	if err != nil {
		return nil, fmt.Errorf("file open: %w", err)
	}
	var magic [4]byte
	n, _ := f.ReadAt(magic[:], 0)
	if n < len(magic) || string(magic[:]) != seal.StreamMagic {
		return f, nil // written in the clear
	}
	if r.keys == nil {
		_ = f.Close()
		return nil, fmt.Errorf("file open %s: the object is encrypted and no encryption key is configured", key)
	}
	sr, err := seal.NewReader(f, r.keys)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("file open %s: %w", key, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{sr, f}, nil
}

// Decrypt makes the reader decrypt encrypted objects with keys (objects
// written in the clear are read as they are).
func (r *Reader) Decrypt(keys *seal.Keyring) *Reader {
	r.keys = keys
	return r
}

// Close does nothing.
func (r *Reader) Close(context.Context) error { return nil }
