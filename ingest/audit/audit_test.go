package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func entry(result string) Entry {
	return Entry{Time: time.Date(2026, 12, 3, 14, 0, 0, 123456789, time.UTC), RequestID: "rid", Source: "127.0.0.1:1",
		Operation: "PutRecordBatch", Stream: "s", Records: 2, Bytes: 10, Status: 200, Result: result, Latency: 1500 * time.Microsecond}
}

func TestAuditLineFields(t *testing.T) {
	var out syncBuf
	l, err := New(context.Background(), Options{Writer: &out, Sample: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := entry("Success")
	e.AccessKeyID = "AKIDTEST"
	l.Record(e)
	e2 := entry("ResourceNotFoundException")
	e2.Stream, e2.Status = "", 400
	l.Record(e2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-12-03T14:00:00.123Z","request_id":"rid","source":"127.0.0.1:1","access_key_id":"AKIDTEST","operation":"PutRecordBatch","stream":"s","records":2,"bytes":10,"status":200,"result":"Success","failed_put_count":0,"latency_ms":1.500}` + "\n" +
		`{"time":"2026-12-03T14:00:00.123Z","request_id":"rid","source":"127.0.0.1:1","access_key_id":"anonymous","operation":"PutRecordBatch","records":2,"bytes":10,"status":400,"result":"ResourceNotFoundException","failed_put_count":0,"latency_ms":1.500}` + "\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestAuditEscaping(t *testing.T) {
	for _, s := range []string{"a\"b\\c", "\n\r\t\x00\x1f\x7f", "\xff\xfe", "\u2028\u2029", "é€😀", "</script>"} {
		e := entry("Success")
		e.Source, e.RequestID = s, s
		line := AppendJSON(nil, &e)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("%q: not one line: %q", s, line)
		}
		var got map[string]any
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%q: %v: %s", s, err, line)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if s == "\xff\xfe" {
			want = "\ufffd\ufffd"
		}
		if got["source"] != want {
			t.Fatalf("%q: decoded %q", s, got["source"])
		}
	}
}

func TestAuditSampling(t *testing.T) {
	var out syncBuf
	reg := prometheus.NewRegistry()
	l, err := New(context.Background(), Options{Writer: &out, Sample: 0.25, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for range 4000 {
		l.Record(entry("Success"))
	}
	for range 100 {
		l.Record(entry("ValidationException"))
	}
	partial := entry("Success")
	partial.FailedPutCount = 1
	for range 100 {
		l.Record(partial)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	ok := strings.Count(s, `"result":"Success","failed_put_count":0`)
	if ok < 800 || ok > 1200 {
		t.Fatalf("%d of 4000 successes kept at 0.25", ok)
	}
	if n := strings.Count(s, "ValidationException"); n != 100 {
		t.Fatalf("%d of 100 errors kept", n)
	}
	if n := strings.Count(s, `"failed_put_count":1`); n != 100 {
		t.Fatalf("%d of 100 partial failures kept", n)
	}
	m := l.entries
	if w, so := value(m.WithLabelValues("written")), value(m.WithLabelValues("sampled_out")); int(w) != ok+200 || int(so) != 4000-ok {
		t.Fatalf("written %v sampled_out %v, kept %d", w, so, ok)
	}
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
	out     syncBuf
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return b.out.Write(p)
}

func TestAuditQueueFull(t *testing.T) {
	for _, policy := range []string{Drop, Block} {
		t.Run(policy, func(t *testing.T) {
			w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
			l, err := New(context.Background(), Options{Writer: w, Sample: 1, QueueLength: 2, OnFull: policy, BlockTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			l.Record(entry("Success")) // taken by the writer, which blocks
			<-w.started
			l.Record(entry("Success"))
			l.Record(entry("Success")) // queue full now
			start := time.Now()
			l.Record(entry("Success"))
			d := time.Since(start)
			switch policy {
			case Drop:
				if d > 100*time.Millisecond {
					t.Fatalf("drop waited %v", d)
				}
			case Block:
				if d < 190*time.Millisecond || d > 3*time.Second {
					t.Fatalf("block waited %v, want the 200ms timeout", d)
				}
			}
			if got := value(l.entries.WithLabelValues("dropped")); got != 1 {
				t.Fatalf("dropped %v, want 1", got)
			}
			if got := value(l.gauge); got != 2 {
				t.Fatalf("queue length %v, want 2", got)
			}
			close(w.release)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(w.out.String(), "\n"); n != 3 {
				t.Fatalf("%d lines written, want 3", n)
			}
			if got := value(l.entries.WithLabelValues("written")); got != 3 {
				t.Fatalf("written %v", got)
			}
			l.Record(entry("Success")) // after Close: dropped, no panic
		})
	}
}

// TestAuditBlockWaitsForRoom: a blocked Record succeeds when the writer
// frees room within the timeout.
func TestAuditBlockWaitsForRoom(t *testing.T) {
	w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	l, err := New(context.Background(), Options{Writer: w, Sample: 1, QueueLength: 1, OnFull: Block, BlockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l.Record(entry("Success"))
	<-w.started
	l.Record(entry("Success"))
	time.AfterFunc(50*time.Millisecond, func() { close(w.release) })
	l.Record(entry("Success"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(w.out.String(), "\n"); n != 3 {
		t.Fatalf("%d lines, want 3", n)
	}
}

func TestAuditCloseFlushes(t *testing.T) {
	var out syncBuf
	l, err := New(context.Background(), Options{Writer: &out, Sample: 1, QueueLength: 10000})
	if err != nil {
		t.Fatal(err)
	}
	for range 5000 {
		l.Record(entry("Success"))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 5000 {
		t.Fatalf("%d lines after Close, want 5000", n)
	}
}

func TestAuditRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice-audit.log")
	line := AppendJSON(nil, new(entry("Success")))
	l, err := New(context.Background(), Options{Path: path, MaxFileBytes: int64(3 * len(line)), MaxFiles: 2, Sample: 1, QueueLength: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		l.Record(entry("Success"))
		time.Sleep(2 * time.Millisecond) // one write per entry, mostly
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, name := range []string{path, path + ".1", path + ".2"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 3*len(line) && bytes.Count(b, []byte("\n")) > 1 {
			t.Fatalf("%s holds %d bytes, over the limit", name, len(b))
		}
		total += bytes.Count(b, []byte("\n"))
		fi, _ := os.Stat(name)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", name, fi.Mode())
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Fatal("more than MaxFiles old files kept")
	}
	if total < 7 || total > 9 {
		t.Fatalf("%d lines kept over 3 files of 3 lines", total)
	}
	// Reopening appends to the current file.
	l, err = New(context.Background(), Options{Path: path, Sample: 1})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	l.Record(entry("Success"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, before) || len(after) != len(before)+len(line) {
		t.Fatal("reopened log did not append")
	}
}

func TestAuditOptions(t *testing.T) {
	for _, o := range []Options{{}, {Writer: io.Discard, Sample: 2}, {Writer: io.Discard, OnFull: "wait"}} {
		if _, err := New(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := New(ctx, Options{Writer: io.Discard, Sample: 1})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-l.done
	l.Record(entry("Success")) // writer stopped: dropped at once
	if got := value(l.entries.WithLabelValues("dropped")); got != 1 {
		t.Fatalf("dropped %v", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
