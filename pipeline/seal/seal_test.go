package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func testKey(t *testing.T, id string) (Key, string) {
	t.Helper()
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	text := hex.EncodeToString(raw)
	k, err := ParseKey(id, text)
	if err != nil {
		t.Fatal(err)
	}
	return k, text
}

// TestParseKey: hex and every base64 form of 32 bytes are keys; other
// lengths and text are refused without the error repeating the text.
func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, KeySize)
	for _, text := range []string{hex.EncodeToString(raw), " " + base64.StdEncoding.EncodeToString(raw) + "\n",
		base64.RawURLEncoding.EncodeToString(raw)} {
		k, err := ParseKey("k1", text)
		if err != nil || !bytes.Equal(k.k[:], raw) {
			t.Fatalf("%q: %v", text, err)
		}
		if strings.Contains(k.String(), "ab") || strings.Contains(k.String(), "q6ur") {
			t.Fatalf("String shows the key: %s", k)
		}
	}
	for _, text := range []string{"", "secret-but-not-a-key", hex.EncodeToString(raw[:16]), base64.StdEncoding.EncodeToString(append(raw, 1))} {
		_, err := ParseKey("k1", text)
		if err == nil || text != "" && strings.Contains(err.Error(), text) {
			t.Fatalf("%q: %v", text, err)
		}
	}
	if _, err := ParseKey("bad id", hex.EncodeToString(raw)); err == nil {
		t.Fatal("a key id with a space was accepted")
	}
}

// TestSealRecords: a record sealed under a file's cipher opens with the
// same counter and the keyring's key, in place; another counter, another
// salt, a flipped bit, a wrong key under the same id and an unknown id
// all fail, each in its own way.
func TestSealRecords(t *testing.T) {
	k1, _ := testKey(t, "k1")
	ring, err := NewKeyring("k1", k1)
	if err != nil {
		t.Fatal(err)
	}
	c, salt, err := ring.New()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("the record's data and metadata")
	ct := c.Seal(nil, msg, 4096, nil, nil)
	if len(ct) != len(msg)+Overhead || bytes.Contains(ct, []byte("record")) {
		t.Fatalf("ciphertext %d bytes, or plaintext visible", len(ct))
	}
	params := AppendParams(nil, c, salt)
	same, rest, err := ring.OpenParams(append(params, 'x'))
	if err != nil || string(rest) != "x" || same.KeyID() != "k1" {
		t.Fatalf("OpenParams: %v %q", err, rest)
	}
	pt, err := same.Open(nil, bytes.Clone(ct), 4096, nil, nil)
	if err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("Open: %v", err)
	}
	inPlace := bytes.Clone(ct)
	if pt, err := same.Open(inPlace[:0], inPlace, 4096, nil, nil); err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("Open in place: %v", err)
	}
	if _, err := same.Open(nil, ct, 4097, nil, nil); err == nil {
		t.Fatal("opened under another counter")
	}
	flipped := bytes.Clone(ct)
	flipped[3] ^= 1
	if _, err := same.Open(nil, flipped, 4096, nil, nil); err == nil {
		t.Fatal("a flipped bit authenticated")
	}
	other, salt2, _ := ring.New()
	if salt2 == salt {
		t.Fatal("two files got the same salt")
	}
	if _, err := other.Open(nil, ct, 4096, nil, nil); err == nil {
		t.Fatal("another file's cipher opened it")
	}
	k1b, _ := testKey(t, "k1") // the same id, another key
	wrong, _ := NewKeyring("k1", k1b)
	if _, _, err := wrong.OpenParams(params); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
	k2, _ := testKey(t, "k2")
	only2, _ := NewKeyring("k2", k2)
	var unknown *UnknownKeyError
	if _, _, err := only2.OpenParams(params); !errors.As(err, &unknown) || unknown.ID != "k1" {
		t.Fatalf("unknown key: %v", err)
	}
	// Rotation: a ring with both reads the old file, writes under the new.
	both, err := NewKeyring("k2", k1, k2)
	if err != nil || both.Current() != "k2" {
		t.Fatal(err)
	}
	if _, _, err := both.OpenParams(params); err != nil {
		t.Fatalf("rotated ring reading the old key's file: %v", err)
	}
	if c, _, _ := both.New(); c.KeyID() != "k2" {
		t.Fatalf("new files under %s", c.KeyID())
	}
	if _, err := NewKeyring("k3", k1); err == nil {
		t.Fatal("a current key that is not held was accepted")
	}
	// A keyring without a current key reads, and refuses to seal.
	reader, err := NewKeyring("", k1)
	if err != nil || reader.Sealing() || !both.Sealing() {
		t.Fatalf("read-only keyring: %v, sealing %v", err, reader.Sealing())
	}
	if _, _, err := reader.OpenParams(params); err != nil {
		t.Fatalf("read-only keyring reading: %v", err)
	}
	if _, _, err := reader.New(); err == nil {
		t.Fatal("a read-only keyring sealed a new file")
	}
	if _, err := NewWriter(io.Discard, reader); err == nil {
		t.Fatal("a read-only keyring started a sealed stream")
	}
	var none *Keyring
	if none.Sealing() {
		t.Fatal("a nil keyring seals")
	}
}

// TestStream: streams of every size around the chunk size read back
// whole; a stream cut anywhere, at a chunk boundary too, or with a
// flipped bit does not; the key id is in the clear, the data is not.
func TestStream(t *testing.T) {
	k1, _ := testKey(t, "k1")
	ring, _ := NewKeyring("k1", k1)
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		data := bytes.Repeat([]byte("MARKER-"), n/7+1)[:n]
		var out bytes.Buffer
		w, err := NewWriter(&out, ring)
		if err != nil {
			t.Fatal(err)
		}
		// Odd write sizes.
		for p := data; len(p) > 0; {
			k := min(len(p), 1000+len(p)%777)
			if _, err := w.Write(p[:k]); err != nil {
				t.Fatal(err)
			}
			p = p[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		enc := out.Bytes()
		if n > 0 && bytes.Contains(enc, []byte("MARKER")) {
			t.Fatalf("%d bytes: plaintext visible", n)
		}
		r, err := NewReader(bytes.NewReader(enc), ring)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read %d, %v", n, len(got), err)
		}
		header := 6 + 2 + SaltSize + CheckSize
		for _, cut := range []int{len(enc) - 1, header + ChunkSize + Overhead, header} {
			if cut >= len(enc) || cut < header {
				continue
			}
			r, err := NewReader(bytes.NewReader(enc[:cut]), ring)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(r); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%d bytes cut at %d: %v", n, cut, err)
			}
		}
		bad := bytes.Clone(enc)
		bad[len(bad)-5] ^= 1
		if r, err := NewReader(bytes.NewReader(bad), ring); err == nil {
			if _, err := io.ReadAll(r); err == nil {
				t.Fatalf("%d bytes: a flipped bit read back", n)
			}
		}
	}
}
