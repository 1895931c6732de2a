package transforms_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/wasm"
)

// builds holds the modules compiled by this test binary, once each, in a
// directory removed by TestMain.
var builds = struct {
	sync.Mutex
	dir string
	m   map[string]*build
}{m: map[string]*build{}}

type build struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// module returns the path of example name compiled to WebAssembly: a Go
// example with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared, a .wat
// file with wat2wasm.
func module(tb testing.TB, name string) string {
	tb.Helper()
	builds.Lock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "sluice-example-transforms-")
		if err != nil {
			builds.Unlock()
			tb.Fatal(err)
		}
		builds.dir = dir
	}
	b := builds.m[name]
	if b == nil {
		b = &build{}
		builds.m[name] = b
	}
	dir := builds.dir
	builds.Unlock()
	b.once.Do(func() {
		if b.err = readSources(name); b.err != nil {
			return
		}
		b.path = filepath.Join(dir, filepath.Base(name)+".wasm")
		var cmd *exec.Cmd
		if strings.HasSuffix(name, ".wat") {
			bin, err := exec.LookPath("wat2wasm")
			if err != nil {
				b.err = fmt.Errorf("wat2wasm (wabt) is required by these tests: apt-get install -y wabt: %w", err)
				return
			}
			cmd = exec.Command(bin, "-o", b.path, name)
		} else {
			cmd = exec.Command("go", "build", "-buildmode=c-shared", "-o", b.path, "./"+name)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build %s: %w\n%s", name, err, out)
		}
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// readSources reads the sources of example name and of the guest SDK, so
// that go test's cache notices their changes (the build runs in a
// subprocess, whose reads the cache does not see).
func readSources(name string) error {
	dir := name
	if strings.HasSuffix(name, ".wat") {
		dir = filepath.Dir(name)
	}
	for _, pattern := range []string{filepath.Join(dir, "*"), "../../transform/wasm/guest/*.go"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			return err
		}
		for _, f := range files {
			if _, err := os.ReadFile(f); err != nil {
				return fmt.Errorf("read the sources of %s: %w", name, err)
			}
		}
	}
	return nil
}

// options configures the wasm processor on example name.
func options(tb testing.TB, name string, env map[string]string) wasm.Options {
	tb.Helper()
	opts := wasm.DefaultOptions()
	opts.Module = module(tb, name)
	opts.Env = env
	opts.Instances = 1
	// Compiled code is cached next to the modules: each is compiled once
	// per test binary run.
	opts.CacheDir = filepath.Join(filepath.Dir(opts.Module), "cache")
	return opts
}

func deps(tb testing.TB) pipeline.Deps {
	return pipeline.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DataDir: tb.TempDir()}
}

// run runs example name once on records with the given data (IDs r0, r1,
// ...) and returns one result per record.
func run(t *testing.T, name string, env map[string]string, data ...string) []wasm.Result {
	t.Helper()
	recs := make([]pipeline.Record, len(data))
	for i, d := range data {
		recs[i] = pipeline.Record{ID: fmt.Sprintf("r%d", i), Data: []byte(d), Arrived: time.UnixMilli(1700000000000)}
	}
	res, err := wasm.RunModule(context.Background(), options(t, name, env), deps(t), recs)
	if err != nil {
		t.Fatalf("RunModule %s: %v", name, err)
	}
	if len(res) != len(recs) {
		t.Fatalf("%d results for %d records", len(res), len(recs))
	}
	for i, r := range res {
		if r.RecordID != recs[i].ID {
			t.Fatalf("result %d is for %q, want %q", i, r.RecordID, recs[i].ID)
		}
	}
	return res
}

// processor creates the processor on example name.
func processor(tb testing.TB, name string, env map[string]string) *wasm.Processor {
	tb.Helper()
	p, err := wasm.New(options(tb, name, env), deps(tb))
	if err != nil {
		tb.Fatalf("New %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// codedError returns a record error's code.
func codedError(tb testing.TB, e pipeline.RecordError) *pipeline.CodedError {
	tb.Helper()
	var ce *pipeline.CodedError
	if !errors.As(e.Err, &ce) {
		tb.Fatalf("record %d: %v is not a *pipeline.CodedError", e.Index, e.Err)
	}
	return ce
}

// wantOK checks that r is Ok with data want and no partition keys.
func wantOK(t *testing.T, r wasm.Result, want string) {
	t.Helper()
	if r.Result != wasm.ResultOk || string(r.Data) != want || len(r.PartitionKeys) != 0 {
		t.Errorf("%s: %s %q keys %v (%s %s), want Ok %q", r.RecordID, r.Result, r.Data, r.PartitionKeys, r.ErrorCode, r.ErrorMessage, want)
	}
}
