package firehoseapi

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// sameAsStdlib checks decodeBase64 against base64.StdEncoding.Decode:
// the same bytes, the same error.
func sameAsStdlib(t *testing.T, src []byte) {
	t.Helper()
	want := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	wn, werr := base64.StdEncoding.Decode(want, src)
	got := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	gn, gerr := decodeBase64(got, src)
	if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
		t.Fatalf("decodeBase64(%q) = %d %q %v, encoding/base64: %d %q %v", src, gn, got[:gn], gerr, wn, want[:wn], werr)
	}
}

func TestDecodeBase64(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 200 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		src := []byte(base64.StdEncoding.EncodeToString(b))
		sameAsStdlib(t, src)
		// Every kind of irregularity at every position: characters outside
		// the alphabet, padding in the middle, newlines (ignored), a
		// missing tail.
		for pos := 0; pos < len(src); pos += 1 + pos/8 {
			for _, c := range []byte{'!', '=', '\n', '\r', '-', '_', 0x80, 0} {
				bad := append([]byte(nil), src...)
				bad[pos] = c
				sameAsStdlib(t, bad)
				sameAsStdlib(t, append(append(bad[:pos:pos], c), src[pos:]...))
			}
			sameAsStdlib(t, src[:pos])
		}
	}
}

func FuzzDecodeBase64(f *testing.F) {
	f.Add([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="))
	f.Add([]byte("QUJDREVGR0hJSktM\nTU5PUFFSU1RVVldYWVo"))
	f.Fuzz(func(t *testing.T, src []byte) { sameAsStdlib(t, src) })
}

func BenchmarkDecodeBase64(b *testing.B) {
	raw := make([]byte, 1024)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	src := []byte(base64.StdEncoding.EncodeToString(raw))
	dst := make([]byte, len(raw)+2)
	b.Run("sluice", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for range b.N {
			_, _ = decodeBase64(dst, src)
		}
	})
	b.Run("encoding/base64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for range b.N {
			_, _ = base64.StdEncoding.Decode(dst, src)
		}
	})
}

// FuzzDecodeBase64Plain: when decodeBase64Plain accepts an input, it is
// one encoding/base64 accepts, decoded to the same bytes, and it has no
// byte outside the alphabet and '='.
func FuzzDecodeBase64Plain(f *testing.F) {
	f.Add([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="))
	f.Add([]byte("QUJDREVGR0hJSktM\nTU5PUFFSU1RVVldYWVo"))
	f.Add([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=="))
	f.Fuzz(func(t *testing.T, src []byte) {
		got := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
		n, ok := decodeBase64Plain(got, src)
		want := make([]byte, len(got))
		wn, werr := base64.StdEncoding.Decode(want, src)
		plain := true
		for _, c := range src {
			plain = plain && strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", c) >= 0
		}
		switch {
		case ok && (werr != nil || n != wn || !bytes.Equal(got[:n], want[:wn])):
			t.Fatalf("decodeBase64Plain(%q) = %q, encoding/base64: %q %v", src, got[:n], want[:wn], werr)
		case ok && bytes.ContainsAny(src, "\r\n\\"):
			t.Fatalf("decodeBase64Plain(%q) accepted a byte outside the alphabet", src)
		case !ok && werr == nil && plain:
			t.Fatalf("decodeBase64Plain(%q) refused what encoding/base64 decodes", src)
		}
	})
}
