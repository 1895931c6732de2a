package disk_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/buffertest"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

func testKey(t testing.TB, id string) seal.Key {
	t.Helper()
	raw := make([]byte, seal.KeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := seal.ParseKey(id, hex.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testKeyring(t testing.TB, id string) *seal.Keyring {
	t.Helper()
	r, err := seal.NewKeyring(id, testKey(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConformanceSealed(t *testing.T) {
	keys := testKeyring(t, "k1")
	buffertest.Run(t, buffertest.Harness{
		Durable: true,
		Open: func(t testing.TB, dir string, maxBytes int64) buffer.Buffer {
			l, err := disk.Open(disk.Options{Dir: dir, Stream: "conf", MaxBytes: maxBytes, SegmentBytes: 4 << 10,
				Keys: keys, Logger: testLogger()})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return l
		},
	})
}

// marked appends n records whose data and metadata hold marker.
func marked(t *testing.T, l *disk.Log, marker string, from, n int) {
	t.Helper()
	recs := make([]pipeline.Record, n)
	for i := range recs {
		recs[i] = pipeline.Record{Data: fmt.Appendf(nil, "%s-data-%d", marker, from+i),
			Meta: map[string]string{"partitionKey": marker + "-key"}}
	}
	if err := l.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// readSealed returns the data of every record not yet committed.
func readSealed(t *testing.T, l *disk.Log) []string {
	t.Helper()
	st := l.State()
	recs, _, err := l.Read(context.Background(), st.Committed, 0, 0, st.Head)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if !strings.HasSuffix(r.Meta["partitionKey"], "-key") {
			t.Fatalf("metadata %v", r.Meta)
		}
		out = append(out, string(r.Data))
	}
	return out
}

// grepDir fails if any file under dir holds needle.
func grepDir(t *testing.T, dir, needle string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			t.Errorf("%s holds %q", p, needle)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSealedAtRest: with keys, no file of the buffer holds a record's data
// or metadata; the records read back whole after a reopen; a wrong or
// missing key fails Open naming the key, and deletes nothing; a rotated
// keyring (new key current, old kept) reads both generations and writes
// under the new; without the old key the old segments fail Open.
func TestSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := testKey(t, "k1"), testKey(t, "k2")
	ring1, _ := seal.NewKeyring("k1", k1)
	open := func(keys *seal.Keyring) (*disk.Log, error) {
		return disk.Open(disk.Options{Dir: dir, Stream: "s", SegmentBytes: 2 << 10, Keys: keys, Logger: testLogger()})
	}
	l, err := open(ring1)
	if err != nil {
		t.Fatal(err)
	}
	marked(t, l, "MARKER1", 0, 50)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	grepDir(t, dir, "MARKER1")
	names := func() []string {
		es, _ := os.ReadDir(dir)
		var n []string
		for _, e := range es {
			n = append(n, e.Name())
		}
		return n
	}
	before := names()

	wrong, _ := seal.NewKeyring("k1", testKey(t, "k1"))
	for _, tc := range []struct {
		keys *seal.Keyring
		want string
	}{{wrong, `key k1`}, {nil, `encrypted under key "k1"`}, {func() *seal.Keyring { r, _ := seal.NewKeyring("k2", k2); return r }(), `"k1"`}} {
		if _, err := open(tc.keys); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "disk buffer s") {
			t.Fatalf("Open with the wrong keys: %v, want an error naming %s and the stream", err, tc.want)
		}
		if got := names(); strings.Join(got, ",") != strings.Join(before, ",") {
			t.Fatalf("a failed Open changed the directory: %v, was %v", got, before)
		}
	}

	both, _ := seal.NewKeyring("k2", k1, k2)
	l, err = open(both)
	if err != nil {
		t.Fatal(err)
	}
	marked(t, l, "MARKER2", 50, 50)
	got := readSealed(t, l)
	if len(got) != 100 || got[0] != "MARKER1-data-0" || got[99] != "MARKER2-data-99" {
		t.Fatalf("read %d records after rotation: %q … %q", len(got), got[0], got[len(got)-1])
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	grepDir(t, dir, "MARKER2")
	only2, _ := seal.NewKeyring("k2", k2)
	if _, err := open(only2); err == nil || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("Open without the old key: %v", err)
	}
	// Delivered, the old key's segments go and k2 alone opens it.
	l, err = open(both)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(context.Background(), l.State().Head); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = open(only2)
	if err != nil {
		t.Fatalf("Open with the new key once the old one's records are delivered: %v", err)
	}
	defer l.Close()
}

// TestSealingTurnedOff: a keyring without a current key reads the
// segments written sealed and writes new ones plain (encryption turned
// off, the keys kept until the old segments are delivered); turned on
// again, the log seals in a new segment and reads the plain ones.
func TestSealingTurnedOff(t *testing.T) {
	dir := t.TempDir()
	k1 := testKey(t, "k1")
	sealing, _ := seal.NewKeyring("k1", k1)
	reading, err := seal.NewKeyring("", k1)
	if err != nil {
		t.Fatal(err)
	}
	open := func(keys *seal.Keyring) *disk.Log {
		t.Helper()
		l, err := disk.Open(disk.Options{Dir: dir, Stream: "s", SegmentBytes: 2 << 10, Keys: keys, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open(sealing)
	marked(t, l, "SEALED", 0, 20)
	_ = l.Close()
	l = open(reading)
	marked(t, l, "PLAIN", 20, 20)
	if got := readSealed(t, l); len(got) != 40 || got[0] != "SEALED-data-0" || got[39] != "PLAIN-data-39" {
		t.Fatalf("read %d records: %q", len(got), got)
	}
	_ = l.Close()
	grepDir(t, dir, "SEALED")
	found := false
	_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if b, _ := os.ReadFile(p); err == nil && !e.IsDir() && bytes.Contains(b, []byte("PLAIN-data-39")) {
			found = true
		}
		return nil
	})
	if !found {
		t.Fatal("records written with encryption off are not in the clear: the read-only keyring sealed them")
	}
	l = open(sealing)
	marked(t, l, "AGAIN", 40, 20)
	if got := readSealed(t, l); len(got) != 60 || got[59] != "AGAIN-data-59" {
		t.Fatalf("read %d records", len(got))
	}
	_ = l.Close()
	grepDir(t, dir, "AGAIN")
}
