package testpeers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Guests builds WebAssembly test modules from source, each once per test
// binary: Go packages with the standard toolchain (GOOS=wasip1
// GOARCH=wasm, -buildmode=c-shared) and WAT files with wabt's wat2wasm.
// No .wasm file is committed. A package keeps one Guests in a variable and
// calls Remove from its TestMain.
type Guests struct {
	mu    sync.Mutex
	dir   string
	built map[string]*guestBuild
}

type guestBuild struct {
	once sync.Once
	path string
	err  error
}

// NewGuests returns an empty set of builds.
func NewGuests() *Guests { return &Guests{built: map[string]*guestBuild{}} }

// Dir is the directory the modules are built into (created on first use);
// a wasm compilation cache placed under it is shared by the package's
// tests.
func (g *Guests) Dir(tb testing.TB) string {
	tb.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dir == "" {
		dir, err := os.MkdirTemp("", "sluice-guests-")
		if err != nil {
			tb.Fatal(err)
		}
		g.dir = dir
	}
	return g.dir
}

// Remove deletes the built modules.
func (g *Guests) Remove() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dir != "" {
		_ = os.RemoveAll(g.dir)
		g.dir = ""
	}
}

// Go builds the Go package at pkgDir (relative to the test's directory)
// as a WASI reactor and returns the module's path. The .go files of pkgDir
// and of sourceDirs (e.g. the guest SDK) are read first, so that go test's
// cache notices their changes: the build runs in a subprocess, whose reads
// the cache does not see.
func (g *Guests) Go(tb testing.TB, pkgDir string, sourceDirs ...string) string {
	tb.Helper()
	out := filepath.Join(g.Dir(tb), name(pkgDir)+".wasm")
	return g.build(tb, pkgDir, func() error {
		for _, d := range append([]string{pkgDir}, sourceDirs...) {
			if err := readAll(filepath.Join(d, "*.go")); err != nil {
				return err
			}
		}
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./"+filepath.Clean(pkgDir))
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building guest %s: %w\n%s", pkgDir, err, o)
		}
		return nil
	}, out)
}

// WATFile assembles a .wat file and returns the module's path.
func (g *Guests) WATFile(tb testing.TB, path string) string {
	tb.Helper()
	out := filepath.Join(g.Dir(tb), name(path)+".wasm")
	return g.build(tb, path, func() error {
		if err := readAll(path); err != nil {
			return err
		}
		return wat2wasm(path, out)
	}, out)
}

func (g *Guests) build(tb testing.TB, key string, do func() error, out string) string {
	tb.Helper()
	g.mu.Lock()
	b := g.built[key]
	if b == nil {
		b = &guestBuild{}
		g.built[key] = b
	}
	g.mu.Unlock()
	b.once.Do(func() {
		b.path, b.err = out, do()
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// WAT assembles WebAssembly text src (named name in messages) into the
// test's temporary directory and returns the module's path.
func WAT(tb testing.TB, name, src string) string {
	tb.Helper()
	dir := tb.TempDir()
	in, out := filepath.Join(dir, name+".wat"), filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := wat2wasm(in, out); err != nil {
		tb.Fatal(err)
	}
	return out
}

func wat2wasm(in, out string) error {
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		return fmt.Errorf("wat2wasm (wabt) is required: run deploy/install-test-deps.sh: %w", err)
	}
	if o, err := exec.Command(bin, "-o", out, in).CombinedOutput(); err != nil {
		return fmt.Errorf("wat2wasm %s: %w\n%s", in, err, o)
	}
	return nil
}

func readAll(pattern string) error {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return err
	}
	for _, f := range files {
		if _, err := os.ReadFile(f); err != nil {
			return fmt.Errorf("reading guest sources: %w", err)
		}
	}
	return nil
}

// name turns a path into a file name.
func name(p string) string {
	p = strings.TrimPrefix(filepath.Clean(p), "../")
	return strings.NewReplacer("/", "_", "..", "up", ".", "_").Replace(p)
}
