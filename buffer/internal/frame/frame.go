// Package frame is the record framing shared by Sluice's buffers. buffer/disk
// stores frames in its segment files; buffer/memory only uses Size, so that
// positions and State.Bytes are comparable between the two implementations.
//
// The layout is documented in buffer/disk/doc.go.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

const (
	// PrefixSize is the length and CRC prefix of every frame.
	PrefixSize = 8
	// FixedBody is the fixed part of a frame's body: arrival time and flags.
	FixedBody = 9
	// HeaderSize is the fixed overhead of a frame without metadata.
	HeaderSize = PrefixSize + FixedBody
	// MaxBody bounds the body length field; larger frames are rejected on
	// append and treated as corruption on read.
	MaxBody = 1 << 28

	// FlagMeta says that a metadata section follows the flags byte.
	FlagMeta = 1 << 0
	// FlagSealed says that the metadata section and the data are
	// encrypted: what follows the flags byte is their ciphertext and its
	// tag (package pipeline/seal), authenticated with the frame's header.
	FlagSealed = 1 << 1
	knownFlags = FlagMeta | FlagSealed
)

// castagnoli is the CRC32C table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Table returns the CRC32C table used by frames.
func Table() *crc32.Table { return castagnoli }

// ErrTooLarge is returned for a record whose frame exceeds MaxBody.
var ErrTooLarge = errors.New("record too large")

// Errors reported by Decode.
var (
	// ErrShort means the buffer ends before the frame does (torn tail, or
	// more bytes must be read).
	ErrShort = errors.New("short frame")
	// ErrCorrupt means the frame is malformed or fails its CRC.
	ErrCorrupt = errors.New("corrupt frame")
)

func metaSize(m map[string]string) int {
	if len(m) == 0 {
		return 0
	}
	n := uvarintLen(uint64(len(m)))
	for k, v := range m {
		n += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// Size returns the number of bytes r takes as a frame.
func Size(r *pipeline.Record) int {
	return HeaderSize + metaSize(r.Meta) + len(r.Data)
}

// Append encodes r as a frame at the end of dst, with the given arrival time
// in unix nanoseconds, and returns the extended slice.
func Append(dst []byte, r *pipeline.Record, arrived int64) ([]byte, error) {
	return AppendReserved(dst, r, arrived, 0)
}

// AppendReserved is Append with reserve bytes left at the end of the body
// for an encryption tag: such a frame is flagged FlagSealed and gets its
// CRC only once sealed (SetCRC). Size plus reserve is its length.
func AppendReserved(dst []byte, r *pipeline.Record, arrived int64, reserve int) ([]byte, error) {
	ms := metaSize(r.Meta)
	body := FixedBody + ms + len(r.Data) + reserve
	if body > MaxBody {
		return dst, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(r.Data))
	}
	start := len(dst)
	dst = grow(dst, PrefixSize+body)
	f := dst[start:]
	binary.LittleEndian.PutUint32(f[0:4], uint32(body))
	binary.LittleEndian.PutUint64(f[8:16], uint64(arrived))
	p := 17
	if ms > 0 {
		f[16] = FlagMeta
		p += binary.PutUvarint(f[p:], uint64(len(r.Meta)))
		for k, v := range r.Meta {
			p += binary.PutUvarint(f[p:], uint64(len(k)))
			p += copy(f[p:], k)
			p += binary.PutUvarint(f[p:], uint64(len(v)))
			p += copy(f[p:], v)
		}
	} else {
		f[16] = 0
	}
	copy(f[p:], r.Data)
	if reserve > 0 {
		f[16] |= FlagSealed
		clear(f[p+len(r.Data):])
		return dst, nil
	}
	SetCRC(f)
	return dst, nil
}

// SetCRC sets the CRC of the whole frame f.
func SetCRC(f []byte) {
	crc := crc32.Update(0, castagnoli, f[0:4])
	crc = crc32.Update(crc, castagnoli, f[8:])
	binary.LittleEndian.PutUint32(f[4:8], crc)
}

// Header is what a sealed frame authenticates besides its content: the
// body length, arrival time and flags of f (13 bytes, appended to dst).
func Header(dst, f []byte) []byte {
	dst = append(dst, f[0:4]...)
	return append(dst, f[8:PrefixSize+FixedBody]...)
}

// Content is the part of the frame f that sealing encrypts: the metadata
// section and data, with the tag's room (or the tag) after them.
func Content(f []byte) []byte { return f[PrefixSize+FixedBody:] }

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// Frame is a decoded frame. Data and MetaRaw alias the decoded buffer.
type Frame struct {
	Len     int // total frame length, prefix included
	Arrived int64
	Flags   byte
	MetaRaw []byte
	Data    []byte
}

// Peek returns the total length of the frame starting at b, from its length
// field alone, or an error if the field is implausible or b is too short.
func Peek(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, ErrShort
	}
	body := binary.LittleEndian.Uint32(b[0:4])
	if body < FixedBody || body > MaxBody {
		return 0, fmt.Errorf("%w: body length %d", ErrCorrupt, body)
	}
	return PrefixSize + int(body), nil
}

// Decode decodes and verifies the frame at the start of b.
func Decode(b []byte) (Frame, error) {
	n, err := Peek(b)
	if err != nil {
		return Frame{}, err
	}
	if len(b) < n {
		return Frame{}, ErrShort
	}
	f := b[:n]
	crc := crc32.Update(0, castagnoli, f[0:4])
	crc = crc32.Update(crc, castagnoli, f[8:])
	if crc != binary.LittleEndian.Uint32(f[4:8]) {
		return Frame{}, fmt.Errorf("%w: crc mismatch", ErrCorrupt)
	}
	fr := Frame{Len: n, Arrived: int64(binary.LittleEndian.Uint64(f[8:16])), Flags: f[16]}
	if fr.Flags&^knownFlags != 0 {
		return Frame{}, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, fr.Flags)
	}
	if fr.Flags&FlagSealed != 0 {
		fr.Data = f[17:] // ciphertext and tag, until Unsealed
		return fr, nil
	}
	return fr.Unsealed(f[17:])
}

// Unsealed completes a sealed frame's decoding with its decrypted content
// (metadata section and data), or a plain frame's with its content.
func (fr Frame) Unsealed(content []byte) (Frame, error) {
	rest := content
	fr.MetaRaw = nil
	if fr.Flags&FlagMeta != 0 {
		ml, err := metaLen(rest)
		if err != nil {
			return Frame{}, err
		}
		fr.MetaRaw, rest = rest[:ml], rest[ml:]
	}
	fr.Data = rest
	return fr, nil
}

// Sealed reports whether the frame's content is encrypted.
func (fr Frame) Sealed() bool { return fr.Flags&FlagSealed != 0 }

// metaLen validates a metadata section and returns its length.
func metaLen(b []byte) (int, error) {
	cnt, p := binary.Uvarint(b)
	if p <= 0 || cnt > uint64(len(b)) {
		return 0, fmt.Errorf("%w: bad meta count", ErrCorrupt)
	}
	for i := uint64(0); i < 2*cnt; i++ {
		l, q := binary.Uvarint(b[p:])
		if q <= 0 || l > uint64(len(b)-p-q) {
			return 0, fmt.Errorf("%w: bad meta entry", ErrCorrupt)
		}
		p += q + int(l)
	}
	return p, nil
}

// DecodeMeta turns a validated metadata section into a map (nil if empty).
func DecodeMeta(raw []byte) map[string]string {
	if len(raw) == 0 {
		return nil
	}
	cnt, p := binary.Uvarint(raw)
	m := make(map[string]string, cnt)
	for i := uint64(0); i < cnt; i++ {
		kl, q := binary.Uvarint(raw[p:])
		p += q
		k := string(raw[p : p+int(kl)])
		p += int(kl)
		vl, q := binary.Uvarint(raw[p:])
		p += q
		m[k] = string(raw[p : p+int(vl)])
		p += int(vl)
	}
	return m
}

// EachMeta calls fn with each key and value of a validated metadata
// section, without allocating; both alias raw.
func EachMeta(raw []byte, fn func(k, v []byte)) {
	if len(raw) == 0 {
		return
	}
	cnt, p := binary.Uvarint(raw)
	for i := uint64(0); i < cnt; i++ {
		kl, q := binary.Uvarint(raw[p:])
		p += q
		k := raw[p : p+int(kl)]
		p += int(kl)
		vl, q := binary.Uvarint(raw[p:])
		p += q
		fn(k, raw[p:p+int(vl)])
		p += int(vl)
	}
}

// ArrivedTime converts an encoded arrival time.
func ArrivedTime(nanos int64) time.Time { return time.Unix(0, nanos) }

// AppendID appends the RecordId of the record at pos in the log identified by
// logID (16 hex digits): "<logID>-<pos as 16 hex digits>", 33 ASCII bytes.
func AppendID(dst []byte, logID string, pos pipeline.Position) []byte {
	const hexd = "0123456789abcdef"
	dst = append(dst, logID...)
	dst = append(dst, '-')
	for s := 60; s >= 0; s -= 4 {
		dst = append(dst, hexd[(uint64(pos)>>uint(s))&0xf])
	}
	return dst
}

// IDLen is the length of an ID made by AppendID with a 16-digit logID.
const IDLen = 16 + 1 + 16
