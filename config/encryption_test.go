package config

import "testing"

// TestEncryptionInheritance: writing the top-level block turns encryption
// on for every stream under the first key; a stream's block overrides
// enabled and key_id; enabled: false at the top keeps the keys (to read)
// with every stream off unless its own block turns it on.
func TestEncryptionInheritance(t *testing.T) {
	src := `
encryption:
  keys:
    - {id: k1, key: "${SLUICE_ENCRYPTION_KEY}"}
    - {id: k2, key_file: /etc/k2}
streams:
  a: {destination: {type: file}}
  b: {encryption: {key_id: k2}, destination: {type: file}}
  c: {encryption: {enabled: false}, destination: {type: file}}
`
	c, err := Parse("e.yaml", []byte(src), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]StreamEncryption{"a": {true, "k1"}, "b": {true, "k2"}, "c": {false, "k1"}}
	for _, s := range c.Streams {
		if s.Encryption != want[s.Name] {
			t.Errorf("stream %s: %+v, want %+v", s.Name, s.Encryption, want[s.Name])
		}
	}
	if !c.Encryption.Enabled || c.Encryption.KeyID != "k1" || c.Encryption.Keys[1].Pos.Line != 5 {
		t.Errorf("top level: %+v", c.Encryption)
	}

	off := `
encryption:
  enabled: false
  key_id: k2
  keys:
    - {id: k1, key: "${SLUICE_ENCRYPTION_KEY}"}
    - {id: k2, key: "${SLUICE_ENCRYPTION_KEY}"}
streams:
  a: {destination: {type: file}}
  b: {encryption: {}, destination: {type: file}}
`
	c, err = Parse("e.yaml", []byte(off), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := c.Stream("a"); a.Encryption != (StreamEncryption{false, "k2"}) {
		t.Errorf("a: %+v", a.Encryption)
	}
	if b, _ := c.Stream("b"); b.Encryption != (StreamEncryption{true, "k2"}) {
		t.Errorf("b: %+v", b.Encryption)
	}

	c, err = Parse("e.yaml", []byte("streams:\n  a: {destination: {type: file}}\n"), testEnv)
	if err != nil || c.Streams[0].Encryption != (StreamEncryption{}) || c.Encryption.Enabled {
		t.Errorf("no block: %+v, %v", c.Streams[0].Encryption, err)
	}
}
