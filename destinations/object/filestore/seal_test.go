package filestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

func testKeyring(t *testing.T) *seal.Keyring {
	t.Helper()
	raw := make([]byte, seal.KeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := seal.ParseKey("k1", hex.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	r, err := seal.NewKeyring("k1", k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEncryptedObjects: an encrypting store's objects hold no plaintext;
// a reader with the key reads them back whole, and objects written in the
// clear as they are; without the key an encrypted object is an error,
// never its ciphertext as data.
func TestEncryptedObjects(t *testing.T) {
	root := t.TempDir()
	keys := testKeyring(t)
	ctx := context.Background()
	put := func(s *Store, key string, data []byte) {
		t.Helper()
		o, err := s.Create(ctx, key, object.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := o.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	secret := bytes.Repeat([]byte("MARKER dead letter "), 10000) // several chunks
	enc, err := New(root, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	put(enc.Encrypt(keys), "errors/a", secret)
	plain, _ := New(root, "s", nil)
	put(plain, "errors/b", []byte("in the clear"))
	raw, err := os.ReadFile(filepath.Join(root, "errors", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("MARKER")) {
		t.Fatal("the encrypted object holds its plaintext")
	}
	read := func(r *Reader, key string) ([]byte, error) {
		rc, err := r.Open(ctx, key)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	rd, _ := NewReader(root)
	if got, err := read(rd.Decrypt(keys), "errors/a"); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("decrypted %d bytes, %v", len(got), err)
	}
	if got, err := read(rd, "errors/b"); err != nil || string(got) != "in the clear" {
		t.Fatalf("a plain object: %q, %v", got, err)
	}
	bare, _ := NewReader(root)
	if _, err := read(bare, "errors/a"); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("an encrypted object without the key: %v", err)
	}
}
