package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Contract tests against the real binary for the checklist items of
// ../shared/firehose-contract.md section 11 that concern delivery and
// metrics (21–24, 39–40). Items 1–20 are in ingest/firehoseapi.

// startWith runs the daemon on a config body (listen is added).
func startWith(t *testing.T, body string) (d *daemon, dir string) {
	t.Helper()
	dir = t.TempDir()
	addr := freeAddr(t)
	p := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(p, []byte("listen: "+addr+"\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, p, dir, addr), dir
}

// objects returns the delivered object paths (relative, slash-separated)
// under root, skipping temp files and the error output.
func objects(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if !strings.HasPrefix(rel, "errors/") {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func metricValue(t *testing.T, addr, series string) (float64, bool) {
	t.Helper()
	for _, line := range strings.Split(scrape(t, addr), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// Item 21: objects under <prefix><yyyy/MM/dd/HH/> of the oldest record's
// arrival (UTC), named <stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>.
// Item 22: content is the exact concatenation of the records, no delimiter.
func TestContract21And22ObjectLayoutAndConcatenation(t *testing.T) {
	d, dir := startWith(t, `streams:
  layout:
    buffering: {size: 1, interval: 1}
    destination: {type: file, path: out, prefix: "logs/"}
`)
	before := time.Now().UTC().Truncate(time.Second)
	recs := [][]byte{[]byte("alpha"), []byte(""), []byte("beta\n"), []byte(`{"x":1}`)}
	if _, err := putBatch(context.Background(), http.DefaultClient, d.addr, "layout", recs); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UTC()
	out := filepath.Join(dir, "out")
	if !waitFor(5*time.Second, func() bool { return len(objects(t, out)) == 1 }) {
		t.Fatalf("objects: %v", objects(t, out))
	}
	key := objects(t, out)[0]
	re := regexp.MustCompile(`^logs/(\d{4})/(\d{2})/(\d{2})/(\d{2})/layout-1-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	m := re.FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("object key %q does not follow Firehose's layout", key)
	}
	ts, err := time.Parse("2006-01-02-15-04-05", strings.Join(m[5:11], "-"))
	if err != nil || ts.Before(before) || ts.After(after) {
		t.Fatalf("object time %v not the arrival time (between %v and %v)", ts, before, after)
	}
	if strings.Join(m[1:5], "/") != ts.Format("2006/01/02/15") {
		t.Fatalf("time path %v does not match the object time %v", m[1:5], ts)
	}
	got, err := os.ReadFile(filepath.Join(out, key))
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join(recs, nil); !bytes.Equal(got, want) {
		t.Fatalf("object content %q, want the concatenation %q", got, want)
	}
}

// Item 23: a batch is flushed when SizeInMBs is reached or the interval
// passes, whichever comes first.
func TestContract23FlushBySizeOrInterval(t *testing.T) {
	d, dir := startWith(t, `streams:
  bysize:
    buffering: {size: 1, interval: 900}
    destination: {type: file, path: size}
  bytime:
    buffering: {size: 128, interval: 2}
    destination: {type: file, path: time}
`)
	ctx := context.Background()
	rec := bytes.Repeat([]byte("s"), 64<<10)
	var recs [][]byte
	for range 17 { // 1.06 MiB: over the size hint
		recs = append(recs, rec)
	}
	start := time.Now()
	if _, err := putBatch(ctx, http.DefaultClient, d.addr, "bysize", recs); err != nil {
		t.Fatal(err)
	}
	if _, err := putBatch(ctx, http.DefaultClient, d.addr, "bytime", [][]byte{[]byte("tick")}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(3*time.Second, func() bool { return len(objects(t, filepath.Join(dir, "size"))) > 0 }) {
		t.Fatal("size hint reached but nothing flushed within 3s (interval is 900s)")
	}
	if n := len(objects(t, filepath.Join(dir, "time"))); n != 0 && time.Since(start) < 1500*time.Millisecond {
		t.Fatalf("interval stream flushed after %v, before its 2s interval", time.Since(start))
	}
	if !waitFor(4*time.Second, func() bool { return len(objects(t, filepath.Join(dir, "time"))) == 1 }) {
		t.Fatal("interval passed but nothing flushed")
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Fatalf("interval stream flushed after %v, before its 2s interval", el)
	}
}

// Item 24: GZIP objects decompress to the concatenated records; the size
// threshold applies before compression.
func TestContract24Gzip(t *testing.T) {
	d, dir := startWith(t, `streams:
  zipped:
    buffering: {size: 1, interval: 900}
    destination: {type: file, path: out, compression: GZIP}
`)
	var recs [][]byte
	for i := range 300 { // ~1.2 MiB raw, compresses to far less than 1 MiB
		recs = append(recs, []byte(fmt.Sprintf("%04d%s", i, strings.Repeat("z", 4096))))
	}
	if _, err := putBatch(context.Background(), http.DefaultClient, d.addr, "zipped", recs); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if !waitFor(5*time.Second, func() bool { return len(objects(t, out)) > 0 }) {
		t.Fatal("no object: the size hint must count bytes before compression")
	}
	var all []byte
	for _, key := range objects(t, out) {
		if !strings.HasSuffix(key, ".gz") {
			t.Fatalf("GZIP object %q lacks the .gz extension", key)
		}
		f, err := os.Open(filepath.Join(out, key))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s is not gzip: %v", key, err)
		}
		b, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	// Objects may split the records; together they hold a prefix of them in order.
	want := bytes.Join(recs, nil)
	if len(all) == 0 || !bytes.HasPrefix(want, all) {
		t.Fatalf("decompressed %d bytes are not the concatenated records", len(all))
	}
}

// Item 39: the Firehose-named metrics exist, labelled by stream. Item 40:
// DataFreshness is the age of the oldest undelivered record and returns to
// ~0 after a flush.
func TestContract39And40Metrics(t *testing.T) {
	d, _ := startWith(t, `streams:
  fresh:
    buffering: {size: 5, interval: 3}
    destination: {type: file, path: out}
`)
	if _, err := putBatch(context.Background(), http.DefaultClient, d.addr, "fresh", [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	const fresh = `sluice_delivery_data_freshness_seconds{destination="file",stream="fresh"}`
	if v, ok := metricValue(t, d.addr, fresh); !ok || v < 1 || v > 3 {
		t.Fatalf("freshness before the flush = %v (present %v), want the record's age ~1.5s", v, ok)
	}
	if !waitFor(4*time.Second, func() bool {
		v, ok := metricValue(t, d.addr, `sluice_delivery_records_total{destination="file",stream="fresh"}`)
		return ok && v == 1
	}) {
		t.Fatal("record not delivered")
	}
	// The delivery counter moves when the destination has the batch; the
	// freshness gauge when the buffer has recorded its delivery, a moment
	// later.
	var v float64
	var ok bool
	if !waitFor(time.Second, func() bool { v, ok = metricValue(t, d.addr, fresh); return ok && v <= 0.5 }) {
		t.Fatalf("freshness after the flush = %v (present %v), want ~0", v, ok)
	}
	for _, series := range []string{
		`sluice_incoming_bytes_total{stream="fresh"}`,
		`sluice_incoming_records_total{stream="fresh"}`,
		`sluice_incoming_put_requests_total{stream="fresh"}`,
		`sluice_throttled_records_total{stream="fresh"}`,
		`sluice_delivery_bytes_total{destination="file",stream="fresh"}`,
		`sluice_delivery_success_total{destination="file",stream="fresh"}`,
		`sluice_delivery_attempts_total{destination="file",stream="fresh"}`,
		`sluice_buffer_backlog_bytes{stream="fresh"}`,
	} {
		if _, ok := metricValue(t, d.addr, series); !ok {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
