package config

import "strconv"

// Encryption is the top-level encryption block: encryption at rest of the
// disk buffers and of what Sluice writes to local disks (file
// destinations, file error outputs), AES-256-GCM under the keys listed.
// It is every stream's default; a stream's own block (StreamEncryption)
// overrides it.
type Encryption struct {
	// Enabled encrypts every stream. Written or not, it is true when keys
	// are listed and the file does not set it: writing an encryption
	// block turns encryption on. Enabled false with keys listed keeps them
	// to read what was encrypted before (encryption turned off).
	Enabled bool `yaml:"enabled"`
	// KeyID names the key new data is encrypted under (the first key when
	// not set).
	KeyID string `yaml:"key_id"`
	// Keys are every key Sluice may need: the current one and older ones
	// whose data is not delivered yet (rotation).
	Keys []EncryptionKey `yaml:"keys"`
}

// EncryptionKey is one key: 32 bytes written as 64 hex digits or base64.
type EncryptionKey struct {
	// ID names the key in what it encrypts: 1 to MaxKeyIDLen letters,
	// digits, '-', '_' and '.'.
	ID string `yaml:"id"`
	// Key (write it as ${ENV}) or KeyFile (read at start and on reload,
	// surrounding white space trimmed): exactly one.
	Key     string `yaml:"key"`
	KeyFile string `yaml:"key_file"`
	// Pos is where the key is written, for errors found when it is read.
	Pos Pos `yaml:"-"`
}

// StreamEncryption is a stream's effective encryption: the top-level
// block's, then the stream's own encryption block (enabled, key_id).
type StreamEncryption struct {
	// Enabled encrypts the stream; writing the stream's block turns it on
	// unless it says enabled: false.
	Enabled bool `yaml:"enabled"`
	// KeyID is the key the stream's new data is encrypted under.
	KeyID string `yaml:"key_id"`
}

// MaxKeyIDLen is the longest key id (pipeline/seal's limit, which config
// may not import).
const MaxKeyIDLen = 64

// completeEncryption applies the top-level block's implied values, before
// the streams inherit them.
func (d *decoder) completeEncryption(e *Encryption) {
	if len(e.Keys) == 0 {
		return
	}
	if !d.written(&e.Enabled) {
		e.Enabled = true
	}
	if e.KeyID == "" {
		e.KeyID = e.Keys[0].ID
	}
}

// completeStreamEncryption applies a stream block's implied enabled.
func (d *decoder) completeStreamEncryption(s *Stream) {
	e := &s.Encryption
	if d.written(e) && !d.written(&e.Enabled) {
		e.Enabled = true
	}
}

func (d *decoder) validateEncryption(e *Encryption, top Pos) {
	seen := map[string]bool{}
	for i := range e.Keys {
		k := &e.Keys[i]
		p := "encryption.keys[" + strconv.Itoa(i) + "]"
		k.Pos = d.at(&k.ID, d.at(k, top))
		switch {
		case !validKeyIDName(k.ID):
			d.fail(&k.ID, d.at(k, top), p+".id", "must be 1 to %d letters, digits, '-', '_' and '.', got %q", MaxKeyIDLen, k.ID)
		case seen[k.ID]:
			d.fail(&k.ID, top, p+".id", "key %s is listed twice", k.ID)
		}
		seen[k.ID] = true
		switch {
		case k.Key == "" && k.KeyFile == "":
			d.fail(&k.Key, k.Pos, p+".key", "is required (or key_file): 32 bytes as 64 hex digits or base64, e.g. ${SLUICE_ENCRYPTION_KEY}")
		case k.Key != "" && k.KeyFile != "":
			d.fail(&k.KeyFile, top, p+".key_file", "set key or key_file, not both")
		}
	}
	switch {
	case e.Enabled && len(e.Keys) == 0:
		d.fail(&e.Enabled, d.at(e, top), "encryption.keys", "encryption is enabled, but no key is listed")
	case e.KeyID != "" && len(e.Keys) > 0 && !seen[e.KeyID]:
		d.fail(&e.KeyID, top, "encryption.key_id", "names no listed key: %q", e.KeyID)
	case e.KeyID != "" && len(e.Keys) == 0:
		d.fail(&e.KeyID, top, "encryption.key_id", "names a key, but no key is listed")
	}
}

func (d *decoder) validateStreamEncryption(s *Stream, keys []EncryptionKey) {
	e := &s.Encryption
	path := "streams." + s.Name + ".encryption"
	if !d.written(e) {
		return
	}
	found := false
	for _, k := range keys {
		found = found || k.ID == e.KeyID
	}
	switch {
	case e.Enabled && len(keys) == 0:
		d.fail(e, s.Pos, path, "encryption is enabled, but no key is listed (list them under the top-level encryption.keys)")
	case d.written(&e.KeyID) && !found:
		d.fail(&e.KeyID, s.Pos, path+".key_id", "names no key listed under encryption.keys: %q", e.KeyID)
	}
}

func validKeyIDName(id string) bool {
	if id == "" || len(id) > MaxKeyIDLen {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
