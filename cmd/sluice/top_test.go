package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline/status"
)

// topServer serves a real status page over a registry holding the
// daemon's metric names, behind a bearer token as the daemon's
// admin_token guard does.
func topServer(t *testing.T, token string, streams func() []status.Stream) (*httptest.Server, *prometheus.CounterVec, *status.Page) {
	t.Helper()
	reg := prometheus.NewRegistry()
	in := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_incoming_records_total", Help: "x"}, []string{"stream"})
	backlog := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_buffer_backlog_bytes", Help: "x"}, []string{"stream"})
	dead := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_dead_letter_records_total", Help: "x"}, []string{"stream", "code"})
	reg.MustRegister(in, backlog, dead)
	backlog.WithLabelValues("orders").Set(3 << 20)
	dead.WithLabelValues("orders", "Processing.Failed").Add(7)
	p, err := status.New(status.Options{Gatherer: reg, Version: "v-test", Started: time.Now().Add(-90 * time.Second),
		Streams: streams, Interval: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "a bearer token is required (admin_token)", http.StatusUnauthorized)
			return
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, in, p
}

func twoStreams() []status.Stream {
	return []status.Stream{
		{Name: "orders", Source: "DirectPut", Destination: "file"},
		{Name: "clicks\x1b[31mred", Destination: "http_endpoint", Ready: "destination: dial tcp: connection refused\x1b[2J"},
	}
}

// TestTopOnce: one table, with the token from the flag, every stream, its
// numbers, the readiness reason, and no escape sequence from the daemon.
func TestTopOnce(t *testing.T) {
	srv, _, _ := topServer(t, "tok-123", twoStreams)
	var out, errOut bytes.Buffer
	code := run([]string{"top", "--once", "--endpoint", srv.URL, "--admin-token", "tok-123"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	t.Logf("\n%s", got)
	for _, want := range []string{"sluice v-test", "up 1m3", "2 streams", "STREAM", "IN/S", "BACKLOG", "READY",
		"orders", "3.0 MiB", "7", "ready", "clicks?[31mred", "NOT READY: destination: dial tcp: connection refused?[2J"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in the table", want)
		}
	}
	if strings.ContainsRune(got, 0x1b) {
		t.Error("an escape character reached the terminal")
	}
	if lines := strings.Split(strings.TrimSpace(got), "\n"); len(lines) != 5 {
		t.Errorf("%d lines, want header, blank, column names and 2 streams", len(lines))
	}
}

// TestTopToken: without the token the daemon answers 401 and top says how
// to give it; SLUICE_ADMIN_TOKEN gives it.
func TestTopToken(t *testing.T) {
	srv, _, _ := topServer(t, "env-token", twoStreams)
	var out, errOut bytes.Buffer
	if code := run([]string{"top", "--once", "--endpoint", srv.URL}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "401") || !strings.Contains(errOut.String(), "--admin-token or SLUICE_ADMIN_TOKEN") {
		t.Fatalf("without a token: exit %d, %q", code, errOut.String())
	}
	t.Setenv("SLUICE_ADMIN_TOKEN", "env-token")
	out.Reset()
	errOut.Reset()
	if code := run([]string{"top", "--once", "--endpoint", strings.TrimPrefix(srv.URL, "http://")}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "orders") {
		t.Fatalf("with SLUICE_ADMIN_TOKEN (and a bare host:port): exit %d, %q %q", code, out.String(), errOut.String())
	}
}

// TestTopErrors: a wrong endpoint, no status page, bad flags.
func TestTopErrors(t *testing.T) {
	notStatus := httptest.NewServer(http.NotFoundHandler())
	defer notStatus.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"top", "--once", "--endpoint", notStatus.URL}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no status page there") {
		t.Errorf("404: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"top", "--once", "--endpoint", "http://" + freeAddr(t)}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "connection refused") {
		t.Errorf("nothing listening: exit %d, %q", code, errOut.String())
	}
	if code := run([]string{"top", "--interval", "0"}, &out, &errOut); code != 2 {
		t.Errorf("--interval 0: exit %d", code)
	}
}

// frames is a writer that counts the tables written to it and cancels a
// context after n.
type frames struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	n      int
	cancel context.CancelFunc
}

func (f *frames) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf.Write(p)
	if bytes.Contains(p, []byte("STREAM")) {
		f.n--
		if f.n == 0 {
			f.cancel()
		}
	}
	return len(p), nil
}

// TestTopRepeats: without --once, top prints a new table every interval
// (plain, not a terminal: no clear codes) with the rates the sampler
// computes, until its context ends; then it exits 0.
func TestTopRepeats(t *testing.T) {
	srv, in, p := topServer(t, "", twoStreams)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Two samples about 1 s apart with 25 records between them.
	sctx, stopSampler := context.WithCancel(context.Background())
	defer stopSampler()
	go p.Run(sctx)
	time.Sleep(100 * time.Millisecond)
	in.WithLabelValues("orders").Add(25)
	time.Sleep(time.Second)
	stopSampler()
	var rate *float64
	for _, s := range p.Snapshot().Streams {
		if s.Name == "orders" {
			rate = s.Incoming.RecordsPerSecond
		}
	}
	if rate == nil || *rate < 10 {
		t.Fatalf("the sampler's rate: %v", rate)
	}
	want := topRate(rate)

	w := &frames{n: 3, cancel: cancel}
	var errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- cmdTop(ctx, []string{"--endpoint", srv.URL, "--interval", "50ms"}, w, &errOut) }()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("top did not stop when its context ended")
	}
	w.mu.Lock()
	got := w.buf.String()
	w.mu.Unlock()
	if n := strings.Count(got, "STREAM"); n != 3 {
		t.Errorf("%d tables, want 3", n)
	}
	if strings.Contains(got, clearScreen) {
		t.Error("clear codes written to a non-terminal")
	}
	if !regexp.MustCompile(`\norders +` + regexp.QuoteMeta(want) + ` `).MatchString(got) {
		t.Errorf("no %s records/s for orders in\n%s", want, got)
	}
}

// TestTopTerminalFrame: on a terminal each frame starts by clearing the
// screen.
func TestTopTerminalFrame(t *testing.T) {
	var b bytes.Buffer
	renderTop(&b, &topDoc{Version: "v"}, "http://x/status.json", true)
	if !strings.HasPrefix(b.String(), clearScreen) || !strings.Contains(b.String(), "(no streams)") {
		t.Errorf("%q", b.String())
	}
	if statusURL("http://h:1/") != "http://h:1/status.json" || statusURL("h:1") != "http://h:1/status.json" || statusURL("https://h/x/status.json") != "https://h/x/status.json" {
		t.Error("statusURL")
	}
}
