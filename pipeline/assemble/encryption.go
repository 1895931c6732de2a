package assemble

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

// keySet is the configuration's encryption keys, read (key files too) and
// parsed once per check, so a reload reads changed key files again.
type keySet struct {
	keys []seal.Key
	// print fingerprints the keys' ids and bytes (a keyed hash: it shows
	// nothing of a key), so a reload sees a key that changed under its id.
	print string
}

// loadKeys reads and parses cfg's encryption keys. Its errors are at the
// key and never hold the key's text.
func loadKeys(cfg *config.Config) (*keySet, config.Errors) {
	ks := &keySet{}
	var errs config.Errors
	var prints []string
	for i, k := range cfg.Encryption.Keys {
		at := fmt.Sprintf("encryption.keys[%d] (id %s)", i, k.ID)
		text := k.Key
		if k.KeyFile != "" {
			b, err := os.ReadFile(k.KeyFile)
			if err != nil {
				errs = append(errs, k.Pos.Errorf("%s: key_file: %v", at, err))
				continue
			}
			text = string(b)
		}
		key, err := seal.ParseKey(k.ID, text)
		if err != nil {
			errs = append(errs, k.Pos.Errorf("%s: %v", at, err))
			continue
		}
		ks.keys = append(ks.keys, key)
		prints = append(prints, k.ID+"="+key.Fingerprint())
	}
	if len(errs) > 0 {
		return nil, errs
	}
	mac := hmac.New(sha256.New, []byte("sluice keyset fingerprint"))
	mac.Write([]byte(strings.Join(prints, ",")))
	ks.print = hex.EncodeToString(mac.Sum(nil))
	return ks, nil
}

// keyring is a stream's keyring: nil without keys; under the stream's
// key_id when its encryption is enabled; otherwise one that only reads
// (what the stream encrypted before encryption was turned off).
func (ks *keySet) keyring(s *config.Stream) (*seal.Keyring, error) {
	if ks == nil || len(ks.keys) == 0 {
		return nil, nil
	}
	current := ""
	if s.Encryption.Enabled {
		current = s.Encryption.KeyID
	}
	r, err := seal.NewKeyring(current, ks.keys...)
	if err != nil {
		return nil, fmt.Errorf("stream %s: encryption: %w", s.Name, err)
	}
	return r, nil
}

// OpenEncrypted opens a file Sluice wrote at rest (an object of a file
// destination or error output) for reading in the clear: a file encrypted
// under one of cfg's keys is decrypted (and authenticated: a damaged or cut
// file fails the read), a file written in the clear is read as it is. For
// `sluice decrypt`.
func OpenEncrypted(cfg *config.Config, path string) (io.ReadCloser, error) {
	ks, errs := loadKeys(cfg)
	if len(errs) > 0 {
		return nil, errs
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var magic [len(seal.StreamMagic)]byte
	if n, _ := f.ReadAt(magic[:], 0); n < len(magic) || string(magic[:]) != seal.StreamMagic {
		return f, nil
	}
	if len(ks.keys) == 0 {
		_ = f.Close()
		return nil, fmt.Errorf("%s is encrypted, and %s lists no encryption keys", path, cfg.File)
	}
	ring, err := seal.NewKeyring("", ks.keys...)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	r, err := seal.NewReader(f, ring)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}
