package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/pipeline"
)

// ABI constants (ABI.md).
const (
	// ABIVersion is the version of ABI.md this host implements.
	ABIVersion = 1

	magicIn  = "SLUI"
	magicOut = "SLUO"

	inHeaderLen  = 16
	outHeaderLen = 16

	statusResults = 0
	statusFailed  = 1

	resultOk               = 0
	resultDropped          = 1
	resultProcessingFailed = 2

	dataUnchanged = 0xFFFFFFFF
)

// callHeader holds the per-call strings of the input header.
type callHeader struct {
	invocationID string
	streamARN    string
	region       string
	sourceARN    string
}

// inputSize returns the encoded size of the input buffer for recs, or -1
// when it exceeds 4 GiB.
func inputSize(h *callHeader, recs []pipeline.Record) int {
	n := inHeaderLen + 16 + len(h.invocationID) + len(h.streamARN) + len(h.region) + len(h.sourceARN)
	for i := range recs {
		r := &recs[i]
		n += 4 + len(r.ID) + 8 + 4 + len(r.Data) + 4
		for k, v := range r.Meta {
			n += 8 + len(k) + len(v)
		}
	}
	if n > 1<<32-1 {
		return -1
	}
	return n
}

// encodeInput writes the input buffer for recs into dst, which must be
// exactly inputSize bytes long.
func encodeInput(dst []byte, h *callHeader, recs []pipeline.Record) {
	le := binary.LittleEndian
	copy(dst, magicIn)
	le.PutUint32(dst[4:], ABIVersion)
	le.PutUint32(dst[8:], 0)
	le.PutUint32(dst[12:], uint32(len(recs)))
	off := inHeaderLen
	off = putStr(dst, off, h.invocationID)
	off = putStr(dst, off, h.streamARN)
	off = putStr(dst, off, h.region)
	off = putStr(dst, off, h.sourceARN)
	for i := range recs {
		r := &recs[i]
		off = putStr(dst, off, r.ID)
		var ms int64
		if !r.Arrived.IsZero() {
			ms = r.Arrived.UnixMilli()
		}
		le.PutUint64(dst[off:], uint64(ms))
		off += 8
		le.PutUint32(dst[off:], uint32(len(r.Data)))
		off += 4
		off += copy(dst[off:], r.Data)
		le.PutUint32(dst[off:], uint32(len(r.Meta)))
		off += 4
		for k, v := range r.Meta {
			off = putStr(dst, off, k)
			off = putStr(dst, off, v)
		}
	}
}

func putStr(dst []byte, off int, s string) int {
	binary.LittleEndian.PutUint32(dst[off:], uint32(len(s)))
	off += 4
	return off + copy(dst[off:], s)
}

// outResult is one decoded result. Its slices are views of the output
// buffer (guest memory): valid until the next call into the instance.
type outResult struct {
	result    byte
	unchanged bool
	id        []byte
	data      []byte
	keys      []byte // the encoded partition keys map entries
	nkeys     uint32
	msg       []byte
}

// errInvalid marks a malformed output buffer.
var errInvalid = errors.New("invalid output")

// guestError is a status-1 output buffer: the guest failed the call.
type guestError struct{ msg string }

func (e *guestError) Error() string { return "the module reported: " + e.msg }

// decodeOutput parses and validates an output buffer into rs (reused),
// returning the results. Errors wrap errInvalid, or are a *guestError.
func decodeOutput(buf []byte, rs []outResult) ([]outResult, error) {
	le := binary.LittleEndian
	if len(buf) < 12 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 16-byte header", errInvalid, len(buf))
	}
	if string(buf[:4]) != magicOut {
		return nil, fmt.Errorf("%w: bad magic %q (want %q)", errInvalid, buf[:4], magicOut)
	}
	if v := le.Uint32(buf[4:]); v != ABIVersion {
		return nil, fmt.Errorf("%w: version %d (want %d)", errInvalid, v, ABIVersion)
	}
	d := decoder{buf: buf, off: 12}
	switch st := le.Uint32(buf[8:]); st {
	case statusResults:
	case statusFailed:
		msg, ok := d.bytes()
		if !ok || d.off != len(buf) {
			return nil, fmt.Errorf("%w: malformed failure message", errInvalid)
		}
		return nil, &guestError{msg: string(msg)}
	default:
		return nil, fmt.Errorf("%w: unknown status %d", errInvalid, st)
	}
	count, ok := d.u32()
	if !ok {
		return nil, fmt.Errorf("%w: truncated header", errInvalid)
	}
	// Every result takes at least 17 bytes: do not trust count for the
	// allocation before checking it against the buffer.
	if uint64(count)*17 > uint64(len(buf)-d.off) {
		return nil, fmt.Errorf("%w: %d results cannot fit in %d bytes", errInvalid, count, len(buf))
	}
	rs = rs[:0]
	for i := uint32(0); i < count; i++ {
		r, err := d.result()
		if err != nil {
			return nil, fmt.Errorf("%w: result %d: %w", errInvalid, i, err)
		}
		rs = append(rs, r)
	}
	if d.off != len(buf) {
		return nil, fmt.Errorf("%w: %d trailing bytes after %d results", errInvalid, len(buf)-d.off, count)
	}
	return rs, nil
}

type decoder struct {
	buf []byte
	off int
}

func (d *decoder) u32() (uint32, bool) {
	if len(d.buf)-d.off < 4 {
		return 0, false
	}
	v := binary.LittleEndian.Uint32(d.buf[d.off:])
	d.off += 4
	return v, true
}

func (d *decoder) bytes() ([]byte, bool) {
	n, ok := d.u32()
	if !ok || uint64(n) > uint64(len(d.buf)-d.off) {
		return nil, false
	}
	b := d.buf[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b, true
}

var errTruncated = errors.New("truncated")

func (d *decoder) result() (outResult, error) {
	var r outResult
	if d.off >= len(d.buf) {
		return r, errTruncated
	}
	r.result = d.buf[d.off]
	d.off++
	if r.result > resultProcessingFailed {
		return r, fmt.Errorf("unknown result code %d", r.result)
	}
	var ok bool
	if r.id, ok = d.bytes(); !ok {
		return r, errTruncated
	}
	n, ok := d.u32()
	if !ok {
		return r, errTruncated
	}
	if n == dataUnchanged {
		r.unchanged = true
	} else {
		if uint64(n) > uint64(len(d.buf)-d.off) {
			return r, errTruncated
		}
		r.data = d.buf[d.off : d.off+int(n) : d.off+int(n)]
		d.off += int(n)
	}
	if r.nkeys, ok = d.u32(); !ok {
		return r, errTruncated
	}
	start := d.off
	for i := uint32(0); i < r.nkeys; i++ {
		k, ok := d.bytes()
		if !ok {
			return r, errTruncated
		}
		if _, ok := d.bytes(); !ok {
			return r, errTruncated
		}
		if len(k) == 0 {
			return r, errors.New("empty partition key name")
		}
	}
	r.keys = d.buf[start:d.off:d.off]
	if r.nkeys > 1 {
		if err := uniqueKeys(r.keys, r.nkeys); err != nil {
			return r, err
		}
	}
	if r.msg, ok = d.bytes(); !ok {
		return r, errTruncated
	}
	return r, nil
}

// eachKey calls fn for every entry of an encoded map validated by result.
func eachKey(keys []byte, n uint32, fn func(k, v []byte)) {
	d := decoder{buf: keys}
	for i := uint32(0); i < n; i++ {
		k, _ := d.bytes()
		v, _ := d.bytes()
		fn(k, v)
	}
}

func uniqueKeys(keys []byte, n uint32) error {
	names := make([][]byte, 0, n)
	var dup []byte
	eachKey(keys, n, func(k, _ []byte) {
		for _, prev := range names {
			if string(prev) == string(k) {
				dup = k
			}
		}
		names = append(names, k)
	})
	if dup != nil {
		return fmt.Errorf("partition key %q appears more than once", dup)
	}
	return nil
}
