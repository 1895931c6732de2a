package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

// Encryption at rest (Options.Keys): every segment written while keys are
// set is sealed under the keyring's current key. Its key file,
// <segment>.key, holds the key id, the segment's salt and check value
// ("SLSK", version 1, three zero bytes, seal.AppendParams, CRC32C of what
// precedes), written durably before the segment file is created. Each
// frame's metadata and data are sealed with the frame's position as the
// counter and its header (length, arrival, flags) as additional data; its
// CRC covers the ciphertext, so a torn tail is found without the key. A
// segment is never appended to by a later process, nor after a failed
// write: the log starts a new segment (a new salt) instead, so no
// (key, position) pair ever seals two plaintexts.

const (
	keySuffix   = ".key"
	keyMagic    = "SLSK"
	keyVersion  = 1
	keyFileMax  = 4 + 4 + 1 + seal.MaxIDLen + seal.SaltSize + seal.CheckSize + 4
	sealReserve = seal.Overhead
)

func keyName(base pipeline.Position) string { return segName(base) + keySuffix }

// writeKeyFile makes the key file of a new segment at base.
func (l *Log) writeKeyFile(base pipeline.Position) (*seal.Cipher, error) {
	c, salt, err := l.keys.New()
	if err != nil {
		return nil, err
	}
	b := append([]byte(keyMagic), keyVersion, 0, 0, 0)
	b = seal.AppendParams(b, c, salt)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, frame.Table()))
	if err := l.replaceFile(keyName(base), keyName(base)+".tmp", b); err != nil {
		return nil, fmt.Errorf("write key file of segment %s: %w", segName(base), err)
	}
	return c, nil
}

// openKeyFile returns the cipher of the segment at base, nil for a
// segment written without encryption. A key file that is there but cannot
// be used (no keys configured, an unknown or wrong key, damage) is an
// error naming the segment and the key: its records are not skipped.
func (l *Log) openKeyFile(base pipeline.Position) (*seal.Cipher, error) {
	f, err := l.fs.OpenFile(filepath.Join(l.dir, keyName(base)), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, keyFileMax)
	n, _ := f.ReadAt(buf, 0)
	b := buf[:n]
	if n < 12 || string(b[:4]) != keyMagic || b[4] != keyVersion ||
		crc32.Checksum(b[:n-4], frame.Table()) != binary.LittleEndian.Uint32(b[n-4:]) {
		return nil, fmt.Errorf("segment %s: key file %s is damaged", segName(base), keyName(base))
	}
	params := b[8 : n-4]
	id := ""
	if len(params) > 0 && len(params) > int(params[0]) {
		id = string(params[1 : 1+int(params[0])])
	}
	if l.keys == nil {
		return nil, fmt.Errorf("segment %s is encrypted under key %q, and no encryption key is configured", segName(base), id)
	}
	c, _, err := l.keys.OpenParams(params)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", segName(base), err) // err names the key
	}
	return c, nil
}

// unsealScratch is the memory unseal reuses.
type unsealScratch struct {
	ad    []byte
	nonce seal.Nonce
}

// sealRequest seals the frames of a request written into seg at pos.
func sealRequest(c *seal.Cipher, buf []byte, pos pipeline.Position) {
	// Scratch, once per request: what is handed to the AEAD escapes.
	ad := make([]byte, 0, 13)
	nonce := new(seal.Nonce)
	for off := 0; off < len(buf); {
		n, _ := frame.Peek(buf[off:]) // frames Append made
		f := buf[off : off+n]
		content := frame.Content(f)
		ad = frame.Header(ad[:0], f)
		c.Seal(content[:0], content[:len(content)-sealReserve], uint64(pos), ad, nonce)
		frame.SetCRC(f)
		off += n
		pos += pipeline.Position(n)
	}
}

// unseal decrypts a sealed frame read at pos, in place; sc is scratch
// space kept by the caller.
func unseal(c *seal.Cipher, seg *segment, fr frame.Frame, raw []byte, pos pipeline.Position, sc *unsealScratch) (frame.Frame, error) {
	if c == nil {
		return frame.Frame{}, fmt.Errorf("%w: sealed frame in segment %s, which has no key file", frame.ErrCorrupt, segName(seg.base))
	}
	content := frame.Content(raw)
	sc.ad = frame.Header(sc.ad[:0], raw)
	plain, err := c.Open(content[:0], content, uint64(pos), sc.ad, &sc.nonce)
	if err != nil {
		return frame.Frame{}, fmt.Errorf("%w: %v", frame.ErrCorrupt, err)
	}
	return fr.Unsealed(plain)
}
