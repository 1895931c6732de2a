package jsonl

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/sluice-dev/sluice/destinations/format/compress"
	"github.com/sluice-dev/sluice/pipeline"
)

func write(t *testing.T, f *Format, recs ...string) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := f.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(&pipeline.Record{Data: []byte(r)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestConcatenatedByDefault(t *testing.T) {
	f := New(nil, "")
	got := write(t, f, `{"a":1}`, "", `{"b":2}`, "raw\x00bytes")
	if want := `{"a":1}{"b":2}raw` + "\x00bytes"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if f.Ext() != "" || f.ContentEncoding() != "" || f.ContentType() != "application/octet-stream" {
		t.Fatalf("metadata %q %q %q", f.Ext(), f.ContentEncoding(), f.ContentType())
	}
}

func TestDelimiterAfterEachRecord(t *testing.T) {
	got := write(t, New(nil, "\n"), `{"a":1}`, `{"b":2}`)
	if want := "{\"a\":1}\n{\"b\":2}\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = write(t, New(nil, "||"), "x", "y")
	if string(got) != "x||y||" {
		t.Fatalf("got %q", got)
	}
}

func TestThroughCodec(t *testing.T) {
	gz, _ := compress.Parse("GZIP")
	f := New(gz, "\n")
	if f.Ext() != ".gz" || f.ContentEncoding() != "gzip" {
		t.Fatalf("ext %q encoding %q", f.Ext(), f.ContentEncoding())
	}
	var recs []string
	var want bytes.Buffer
	for i := range 10000 {
		r := fmt.Sprintf(`{"i":%d,"s":"record %d"}`, i, i)
		recs = append(recs, r)
		want.WriteString(r + "\n")
	}
	r, err := stdgzip.NewReader(bytes.NewReader(write(t, f, recs...)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("gzip object decodes to %d bytes, want %d", len(got), want.Len())
	}

	zs, _ := compress.Parse("zstd")
	d, _ := zstd.NewReader(bytes.NewReader(write(t, New(zs, ""), "a", "b")))
	defer d.Close()
	if got, err := io.ReadAll(d); err != nil || string(got) != "ab" {
		t.Fatalf("zstd: %q %v", got, err)
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, io.ErrShortWrite
	}
	return len(p), nil
}

func TestErrorsFailTheObject(t *testing.T) {
	w, err := New(nil, "\n").NewWriter(&failAfter{n: 10})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 100000 && werr == nil; i++ {
		werr = w.Write(&pipeline.Record{Data: []byte("0123456789")})
	}
	if werr == nil {
		t.Fatal("writes into a failing writer never failed")
	}
	if w.Close() == nil {
		t.Fatal("Close after a failed write succeeded")
	}
	if w.Write(&pipeline.Record{Data: []byte("x")}) == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestStreaming: memory does not grow with the object (64 MiB written, heap
// growth well under that).
func TestStreaming(t *testing.T) {
	gz, _ := compress.Parse("GZIP")
	w, _ := New(gz, "\n").NewWriter(io.Discard)
	rec := &pipeline.Record{Data: bytes.Repeat([]byte("x"), 1024)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 64 << 10 {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Fatalf("heap grew by %d bytes while streaming 64 MiB", grown)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
