// Package seal is Sluice's encryption of data at rest: AES-256-GCM under
// keys given by the operator, each named by an id so that a key can be
// rotated (new files under the new key, old ones read with the old).
//
// A file (a buffer segment, an object) is never encrypted under a
// configured key directly: it gets a random salt, and its own key is
// derived from the configured one and the salt (HKDF-SHA256). A file's
// nonces are then a counter the file's writer never repeats (a buffer
// segment's frame positions, an object's chunk numbers), so no nonce is
// used twice under one key however many files share a configured key.
// Each file also keeps a check value of its derived key, so a wrong key
// is told at open, before any data is read.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

const (
	// KeySize is the size of a key: AES-256.
	KeySize = 32
	// SaltSize is the size of a file's salt.
	SaltSize = 32
	// CheckSize is the size of a file key's check value.
	CheckSize = 16
	// Overhead is what sealing adds to a plaintext: the GCM tag.
	Overhead = 16
	// MaxIDLen bounds a key id.
	MaxIDLen = 64
)

// Key is one configured key. Its bytes never leave the package: not in
// errors, logs or String.
type Key struct {
	id string
	k  [KeySize]byte
}

// ID is the key's name.
func (k Key) ID() string { return k.id }

// String names the key without showing it.
func (k Key) String() string { return "key " + k.id }

// Fingerprint tells keys apart without showing them: a keyed hash of the
// key (HMAC-SHA256 under the key itself), for comparing configurations.
// It is not a secret, but is kept out of logs all the same.
func (k Key) Fingerprint() string {
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte("sluice key fingerprint v1"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// ParseKey reads a key written as 64 hex digits or as the base64 (standard
// or URL alphabet, padded or not) of 32 bytes, surrounding white space
// ignored. Its error says what is wrong without repeating the text.
func ParseKey(id, text string) (Key, error) {
	if err := checkID(id); err != nil {
		return Key{}, err
	}
	text = strings.TrimSpace(text)
	var b []byte
	if len(text) == 2*KeySize {
		if d, err := hex.DecodeString(text); err == nil {
			b = d
		}
	}
	if b == nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if d, err := enc.DecodeString(text); err == nil {
				b = d
				break
			}
		}
	}
	switch {
	case b == nil:
		return Key{}, fmt.Errorf("key %s: not 64 hex digits or base64 (%d characters)", id, len(text))
	case len(b) != KeySize:
		return Key{}, fmt.Errorf("key %s: %d bytes, want %d (AES-256)", id, len(b), KeySize)
	}
	k := Key{id: id}
	copy(k.k[:], b)
	return k, nil
}

func checkID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("key id %q: 1 to %d characters", id, MaxIDLen)
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key id %q: only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// Keyring is the keys of a stream (or of the process): new files are
// written under Current, files written under any key it holds are read.
// A keyring without a current key only reads: it is what a stream with
// encryption turned off keeps, so that what it wrote encrypted before is
// still read (Sealing is false, New fails).
type Keyring struct {
	current string
	keys    map[string]Key
}

// NewKeyring holds keys, current naming the one new files use ("": a
// keyring that only reads).
func NewKeyring(current string, keys ...Key) (*Keyring, error) {
	r := &Keyring{current: current, keys: map[string]Key{}}
	for _, k := range keys {
		if k.id == "" {
			return nil, errors.New("keyring: a key without an id")
		}
		if _, dup := r.keys[k.id]; dup {
			return nil, fmt.Errorf("keyring: key %s given twice", k.id)
		}
		r.keys[k.id] = k
	}
	if _, ok := r.keys[current]; !ok && current != "" {
		return nil, fmt.Errorf("keyring: the current key %q is not among the keys (%s)", current, strings.Join(r.IDs(), ", "))
	}
	return r, nil
}

// Current is the id of the key new files use ("" when the keyring only
// reads).
func (r *Keyring) Current() string { return r.current }

// Sealing reports whether r encrypts new files: r is not nil and has a
// current key.
func (r *Keyring) Sealing() bool { return r != nil && r.current != "" }

// IDs are the ids of the keys held, sorted.
func (r *Keyring) IDs() []string {
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// UnknownKeyError is a file written under a key the keyring does not
// hold.
type UnknownKeyError struct{ ID string }

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("written under key %q, which is not configured (keep a rotated key until what it encrypted is delivered)", e.ID)
}

// ErrWrongKey is a file whose check value does not match its key: the
// key configured under its id is not the one it was written with.
var ErrWrongKey = errors.New("the configured key does not decrypt it (the key under that id changed?)")

// NewSalt returns a random salt for a new file.
func NewSalt() ([SaltSize]byte, error) {
	var s [SaltSize]byte
	if _, err := rand.Read(s[:]); err != nil {
		return s, fmt.Errorf("seal: salt: %w", err)
	}
	return s, nil
}

// Cipher seals the data of one file.
type Cipher struct {
	id    string
	aead  cipher.AEAD
	check [CheckSize]byte
}

// New returns the cipher of a new file under the current key, with its
// random salt (to store with the file, beside Check).
func (r *Keyring) New() (*Cipher, [SaltSize]byte, error) {
	if !r.Sealing() {
		return nil, [SaltSize]byte{}, errors.New("seal: the keyring has no current key: it only reads")
	}
	salt, err := NewSalt()
	if err != nil {
		return nil, salt, err
	}
	c, err := derive(r.keys[r.current], salt)
	return c, salt, err
}

// Open returns the cipher of a file written under key id with salt, and
// checks it against the file's check value.
func (r *Keyring) Open(id string, salt [SaltSize]byte, check []byte) (*Cipher, error) {
	k, ok := r.keys[id]
	if !ok {
		return nil, &UnknownKeyError{ID: id}
	}
	c, err := derive(k, salt)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(c.check[:], check) {
		return nil, fmt.Errorf("key %s: %w", id, ErrWrongKey)
	}
	return c, nil
}

func derive(k Key, salt [SaltSize]byte) (*Cipher, error) {
	fk, err := hkdf.Key(sha256.New, k.k[:], salt[:], "sluice file key v1", KeySize)
	if err != nil {
		return nil, fmt.Errorf("seal: derive: %w", err)
	}
	block, err := aes.NewCipher(fk)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	c := &Cipher{id: k.id, aead: aead}
	m := hmac.New(sha256.New, fk)
	m.Write([]byte("sluice key check v1"))
	copy(c.check[:], m.Sum(nil))
	return c, nil
}

// KeyID is the id of the key the file is under.
func (c *Cipher) KeyID() string { return c.id }

// Check is the file key's check value, stored with the file so that Open
// tells a wrong key.
func (c *Cipher) Check() []byte { return c.check[:] }

// A nonce is the counter big-endian in the last 8 of GCM's 12 bytes; the
// first 4 hold flags (final, for a stream's last chunk).
func nonce(counter uint64, flags uint32) []byte {
	return new(Nonce).set(counter, flags)
}

// Nonce is scratch space for a nonce, so that sealing many records
// allocates nothing (a nonce handed to the AEAD escapes).
type Nonce [12]byte

func (n *Nonce) set(counter uint64, flags uint32) []byte {
	binary.BigEndian.PutUint32(n[:4], flags)
	binary.BigEndian.PutUint64(n[4:], counter)
	return n[:]
}

// Seal appends the encryption of plaintext, authenticated with ad, to
// dst. counter must never repeat within the file; dst may be
// plaintext[:0] (in place). n is scratch (nil: allocated).
func (c *Cipher) Seal(dst, plaintext []byte, counter uint64, ad []byte, n *Nonce) []byte {
	if n == nil {
		n = new(Nonce)
	}
	return c.aead.Seal(dst, n.set(counter, 0), plaintext, ad)
}

// Open decrypts and authenticates what Seal made with the same counter
// and ad, appending the plaintext to dst (which may be ciphertext[:0]).
// n is scratch (nil: allocated).
func (c *Cipher) Open(dst, ciphertext []byte, counter uint64, ad []byte, n *Nonce) ([]byte, error) {
	if n == nil {
		n = new(Nonce)
	}
	out, err := c.aead.Open(dst, n.set(counter, 0), ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("seal: record %d does not authenticate under key %s: %w", counter, c.id, err)
	}
	return out, nil
}
