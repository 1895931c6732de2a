package transforms_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/wasm"
)

// guests are the examples compiled by this test binary, once each.
var guests = testpeers.NewGuests()

func TestMain(m *testing.M) {
	code := m.Run()
	guests.Remove()
	os.Exit(code)
}

// module returns the path of example name compiled to WebAssembly: a Go
// example with the standard toolchain (the guest SDK's sources are watched
// too), a .wat file with wat2wasm.
func module(tb testing.TB, name string) string {
	tb.Helper()
	if strings.HasSuffix(name, ".wat") {
		return guests.WATFile(tb, name)
	}
	return guests.Go(tb, name, "../../transform/wasm/guest")
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
	opts.CacheDir = filepath.Join(guests.Dir(tb), "cache")
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

// newProcessor compiles opts and builds the processor, as the daemon does.
func newProcessor(tb testing.TB, opts wasm.Options) (*wasm.Processor, error) {
	c, err := opts.Compile()
	if err != nil {
		return nil, err
	}
	return wasm.New(c, deps(tb))
}

// processor creates the processor on example name.
func processor(tb testing.TB, name string, env map[string]string) *wasm.Processor {
	tb.Helper()
	p, err := newProcessor(tb, options(tb, name, env))
	if err != nil {
		tb.Fatalf("New %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
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
