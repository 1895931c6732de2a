package firehoseapi

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// checkPlain checks decodeBase64Plain's contract on src: when it accepts
// src, encoding/base64 does too, with the same bytes, and src has nothing
// but the alphabet and '='; when src has nothing but those and
// encoding/base64 accepts it, so does decodeBase64Plain.
func checkPlain(t *testing.T, src []byte) {
	t.Helper()
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
	case ok && !plain:
		t.Fatalf("decodeBase64Plain(%q) accepted a byte outside the alphabet", src)
	case !ok && werr == nil && plain:
		t.Fatalf("decodeBase64Plain(%q) refused what encoding/base64 decodes", src)
	}
}

func TestDecodeBase64Plain(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 200 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		src := []byte(base64.StdEncoding.EncodeToString(b))
		got := make([]byte, len(b)+2)
		if k, ok := decodeBase64Plain(got, src); !ok || !bytes.Equal(got[:k], b) {
			t.Fatalf("decodeBase64Plain(%q) = %q %v, want %q", src, got[:k], ok, b)
		}
		// Every kind of irregularity at every position: characters outside
		// the alphabet, padding in the middle, newlines, a missing tail.
		for pos := 0; pos < len(src); pos += 1 + pos/8 {
			for _, c := range []byte{'!', '=', '\n', '\r', '\\', '-', '_', 0x80, 0} {
				bad := append([]byte(nil), src...)
				bad[pos] = c
				checkPlain(t, bad)
				checkPlain(t, append(append(bad[:pos:pos], c), src[pos:]...))
			}
			checkPlain(t, src[:pos])
		}
	}
}

// FuzzDecodeBase64Plain checks the contract on any input.
func FuzzDecodeBase64Plain(f *testing.F) {
	f.Add([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="))
	f.Add([]byte("QUJDREVGR0hJSktM\nTU5PUFFSU1RVVldYWVo"))
	f.Add([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=="))
	f.Fuzz(checkPlain)
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
			_, _ = decodeBase64Plain(dst, src)
		}
	})
	b.Run("encoding/base64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for range b.N {
			_, _ = base64.StdEncoding.Decode(dst, src)
		}
	})
}
