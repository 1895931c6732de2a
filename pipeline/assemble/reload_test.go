package assemble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline"
)

// TestRunAndReloadInProcess runs a daemon in the test's process (so the
// race detector sees Run, the reloads and the appends together): appends
// run throughout while reloads add, change and remove streams and a bad
// file is rejected; every append to a stream that exists succeeds, and Run
// stops cleanly.
func TestRunAndReloadInProcess(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	file := func(streams ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "listen: %s\ndata_dir: %s\nshutdown_timeout: 5s\nstreams:\n", addr, dir)
		for _, s := range streams {
			name, interval, _ := strings.Cut(s, "=")
			fmt.Fprintf(&b, "  %s:\n    buffering: {size: 1, interval: %s}\n    destination: {type: file, path: out/%s}\n", name, interval, name)
		}
		return b.String()
	}
	next := file("a=1", "b=1")
	load := func() (*config.Config, error) {
		return config.Parse(filepath.Join(dir, "sluice.yaml"), []byte(next), func(string) (string, bool) { return "", false })
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Load: load})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()

	appendCtx, stopAppends := context.WithCancel(context.Background())
	appendErrs := make(chan error, 1)
	go func() {
		defer close(appendErrs)
		for n := 0; appendCtx.Err() == nil; n++ {
			if err := d.router.Append(appendCtx, "a", []pipeline.Record{{Data: fmt.Appendf(nil, "a%d", n)}}); err != nil {
				appendErrs <- err
				return
			}
		}
	}()
	reload := func(f string) error {
		t.Helper()
		next = f
		rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return d.Reload(rctx)
	}
	for i, f := range []string{file("a=1", "b=2", "c=1"), file("a=1", "c=2"), file("a=1", "b=1")} {
		if err := reload(f); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
	}
	var ce config.Errors
	if err := reload(file("a=1", "b=9999")); !errors.As(err, &ce) {
		t.Fatalf("a bad file: %v", err)
	}
	if err := reload(strings.Replace(file("a=1", "b=1"), "data_dir: "+dir, "data_dir: "+dir+"/elsewhere", 1)); err == nil ||
		!strings.Contains(err.Error(), "data_dir cannot change") {
		t.Fatalf("a changed data_dir: %v", err)
	}
	stopAppends()
	if err := <-appendErrs; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("an append to the untouched stream failed: %v", err)
	}
	// The last good configuration is the one running.
	if got := d.names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("streams %v after the reloads", got)
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := d.Reload(context.Background()); !errors.Is(err, errNotRunning) {
		t.Fatalf("a reload after Run: %v", err)
	}
}
