package compress

import (
	"archive/zip"
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

func TestParse(t *testing.T) {
	cases := []struct{ in, name, ext, enc string }{
		{"", Uncompressed, "", ""},
		{"uncompressed", Uncompressed, "", ""},
		{"GZIP", GZIP, ".gz", "gzip"},
		{"gzip", GZIP, ".gz", "gzip"},
		{"Zip", ZIP, ".zip", "zip"},
		{"Snappy", Snappy, ".snappy", "x-snappy-framed"},
		{"SNAPPY", Snappy, ".snappy", "x-snappy-framed"},
		{"hadoop_snappy", HadoopSnappy, ".hsnappy", "hadoop-snappy"},
		{"ZSTD", ZSTD, ".zst", "zstd"},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		if got.Name() != c.name || got.Ext() != c.ext || got.ContentEncoding() != c.enc {
			t.Errorf("Parse(%q) = %s %q %q, want %s %q %q", c.in, got.Name(), got.Ext(), got.ContentEncoding(), c.name, c.ext, c.enc)
		}
	}
	for _, bad := range []string{"lz4", "hadoop-snappy", "gz"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	for _, n := range Names() {
		if c, err := Parse(n); err != nil || c.Name() != n {
			t.Errorf("Names() lists %q, which does not parse to itself", n)
		}
	}
}

// decoders are independent of the encoders where possible: the standard
// library for gzip and zip, the spec decoders of spec_test.go for both
// Snappy formats, and klauspost's zstd decoder (zstd has no stdlib reader).
func decode(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	var out []byte
	var err error
	switch name {
	case Uncompressed:
		out = b
	case GZIP:
		var r *stdgzip.Reader
		if r, err = stdgzip.NewReader(bytes.NewReader(b)); err == nil {
			out, err = io.ReadAll(r)
		}
	case ZIP:
		var zr *zip.Reader
		if zr, err = zip.NewReader(bytes.NewReader(b), int64(len(b))); err == nil {
			if len(zr.File) != 1 || zr.File[0].Name != ZipEntryName {
				t.Fatalf("zip entries: %d, first %q", len(zr.File), zr.File[0].Name)
			}
			var rc io.ReadCloser
			if rc, err = zr.File[0].Open(); err == nil {
				out, err = io.ReadAll(rc)
			}
		}
	case Snappy:
		out, err = specSnappyFramed(b)
		if err == nil { // and the library reader agrees
			var lib []byte
			if lib, err = io.ReadAll(s2.NewReader(bytes.NewReader(b))); err == nil && !bytes.Equal(lib, out) {
				t.Fatal("s2 reader and spec decoder disagree")
			}
		}
	case HadoopSnappy:
		out, err = specHadoopSnappy(bytes.NewReader(b))
	case ZSTD:
		var d *zstd.Decoder
		if d, err = zstd.NewReader(bytes.NewReader(b)); err == nil {
			out, err = io.ReadAll(d)
			d.Close()
		}
	default:
		t.Fatalf("no decoder for %s", name)
	}
	if err != nil {
		t.Fatalf("%s decode: %v", name, err)
	}
	return out
}

func jsonRecords(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"event_id":"e-%08d","user_id":%d,"country":"%s","amount":%.2f,"pad":"%x"}`+"\n",
			i, rng.IntN(1e6), []string{"DE", "US", "FR", "JP"}[rng.IntN(4)], rng.Float64()*100, rng.Uint64())
	}
	return b.Bytes()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"empty":          nil,
		"one byte":       {'x'},
		"json 2MiB":      jsonRecords(20000, 1),
		"random 300KiB":  randomBytes(300 << 10),
		"hadoop block":   bytes.Repeat([]byte("a"), HadoopBlockSize),
		"hadoop block+1": bytes.Repeat([]byte("ab"), HadoopBlockSize/2+1),
	}
	for _, name := range Names() {
		c, err := Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		for label, in := range inputs {
			for _, chunk := range []int{1 << 30, 1000, 1} {
				if chunk == 1 && len(in) > 5000 {
					continue
				}
				var buf bytes.Buffer
				w, err := c.NewWriter(&buf)
				if err != nil {
					t.Fatal(err)
				}
				for p := in; len(p) > 0; {
					k := min(chunk, len(p))
					if n, err := w.Write(p[:k]); err != nil || n != k {
						t.Fatalf("%s %s: write %d: %d, %v", name, label, k, n, err)
					}
					p = p[k:]
				}
				if err := w.Close(); err != nil {
					t.Fatalf("%s %s: close: %v", name, label, err)
				}
				if got := decode(t, name, buf.Bytes()); !bytes.Equal(got, in) {
					t.Fatalf("%s %s (writes of %d): round trip lost data: %d bytes in, %d out", name, label, chunk, len(in), len(got))
				}
				if name != Uncompressed && label == "json 2MiB" && buf.Len() > len(in)/2 {
					t.Errorf("%s compressed JSON only to %d of %d bytes", name, buf.Len(), len(in))
				}
			}
		}
	}
}

// TestHadoopGolden checks the writer byte for byte against a vector derived
// by hand from the format: "hello" is below Snappy's 17-byte minimum for
// matches, so its block is varint(5), a literal tag ((5-1)<<2) and the bytes.
func TestHadoopGolden(t *testing.T) {
	c, _ := Parse(HadoopSnappy)
	var buf bytes.Buffer
	w, _ := c.NewWriter(&buf)
	if _, err := io.WriteString(w, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 5, 0, 0, 0, 7, 0x05, 0x10, 'h', 'e', 'l', 'l', 'o'}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got % x\nwant % x", buf.Bytes(), want)
	}
	// Empty input is an empty stream.
	buf.Reset()
	w, _ = c.NewWriter(&buf)
	if err := w.Close(); err != nil || buf.Len() != 0 {
		t.Fatalf("empty stream: %d bytes, %v", buf.Len(), err)
	}
}

// TestHadoopBlocks checks the block layout of a multi-block stream: every
// block but the last holds exactly HadoopBlockSize bytes, and its chunk fits
// Hadoop's default 256 KiB buffer even for incompressible input.
func TestHadoopBlocks(t *testing.T) {
	in := randomBytes(2*HadoopBlockSize + 10)
	c, _ := Parse(HadoopSnappy)
	var buf bytes.Buffer
	w, _ := c.NewWriter(&buf)
	w.Write(in)
	w.Close()
	b := buf.Bytes()
	var sizes []int
	for len(b) > 0 {
		u := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		if n > hadoopBufferSize {
			t.Fatalf("chunk of %d bytes", n)
		}
		sizes = append(sizes, u)
		b = b[8+n:]
	}
	if fmt.Sprint(sizes) != fmt.Sprint([]int{HadoopBlockSize, HadoopBlockSize, 10}) {
		t.Fatalf("block sizes %v", sizes)
	}
	if HadoopBlockSize != 218422 {
		t.Fatalf("HadoopBlockSize = %d, want 256Ki-(256Ki/6+32) = 218422", HadoopBlockSize)
	}
}

// TestSpecDecoder checks the test's own Snappy decoder on a hand-made block
// with an overlapping copy: literal "abcd", then copy-1 of length 8 at
// offset 4 (tag 0x01|(8-4)<<2 = 0x11, offset byte 0x04).
func TestSpecDecoder(t *testing.T) {
	got, err := specSnappyBlock([]byte{12, 0x0c, 'a', 'b', 'c', 'd', 0x11, 0x04})
	if err != nil || string(got) != "abcdabcdabcd" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := specSnappyBlock([]byte{13, 0x0c, 'a', 'b', 'c', 'd', 0x11, 0x04}); err == nil {
		t.Fatal("length mismatch not detected")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, io.ErrClosedPipe
	}
	return len(p), nil
}

func TestWriteErrorsSurface(t *testing.T) {
	in := randomBytes(1 << 20)
	for _, name := range Names() {
		c, _ := Parse(name)
		w, err := c.NewWriter(&failWriter{n: 1000})
		if err != nil {
			t.Fatal(err)
		}
		_, werr := w.Write(in)
		cerr := w.Close()
		if werr == nil && cerr == nil {
			t.Errorf("%s: a failing destination went unnoticed", name)
		}
	}
}

// BenchmarkCodecs compresses 4096 distinct ~1 KiB JSON records (ids,
// numbers and a hex payload vary per record) per op.
func BenchmarkCodecs(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	recs := make([][]byte, 4096)
	var size int64
	for i := range recs {
		r := fmt.Appendf(nil, `{"event_id":"evt-%010d","ts":"2024-05-06T07:%02d:%02d.%03dZ","user_id":%d,"country":"%s","amount":%.2f,"tags":["t%d","promo"],"device":{"os":"%s","version":"17.%d"},"payload":"`,
			i, i/60%60, i%60, i%1000, rng.IntN(1e6), []string{"DE", "US", "FR", "JP"}[rng.IntN(4)], rng.Float64()*100, i%13, []string{"ios", "android"}[i%2], i%9)
		for len(r) < 1020 {
			r = fmt.Appendf(r, "%x", rng.Uint32()%4096)
		}
		recs[i] = append(r, "\"}\n"...)
		size += int64(len(recs[i]))
	}
	for _, name := range Names() {
		c, _ := Parse(name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			var out countWriter
			for b.Loop() {
				w, _ := c.NewWriter(&out)
				for _, r := range recs {
					if _, err := w.Write(r); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out)/float64(size)/float64(b.N), "ratio")
		})
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
