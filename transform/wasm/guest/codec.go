package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unsafe"
)

// ABIVersion is the version of ABI.md this SDK implements.
const ABIVersion = 1

const (
	inMagic  = "SLUI"
	outMagic = "SLUO"

	headerSize = 16         // magic, version, flags or status, count
	unchanged  = 0xFFFFFFFF // result data length meaning "keep the input data"

	statusResults = 0 // output buffer status: results follow
	statusFailed  = 1 // output buffer status: the invocation failed
)

var le = binary.LittleEndian

// errNoHandler is returned to the host when the module never called Handle.
var errNoHandler = errors.New("no handler registered: call guest.Handle from an init function")

// transformer is the guest side of the ABI, independent of how the exports
// reach it (wasip1 exports in exports_wasip1.go, direct calls in tests).
type transformer struct {
	handler Handler
	onInit  func([]byte) error

	config []byte            // copy of sluice_init's configuration
	region []byte            // the input region last returned by alloc: the host's
	out    []byte            // the output buffer, reused across calls
	meta   map[string]string // Record.Meta, reused across records
	inv    Invocation        // Record.Invocation, reused across calls
	keys   []string          // scratch for sorting partition keys
}

// alloc implements sluice_alloc: a fresh region of size bytes, kept alive
// (and never touched) until the next alloc, when the previous one becomes
// garbage.
func (t *transformer) alloc(size uint32) []byte {
	// At least one byte so that the region has an address of its own.
	t.region = make([]byte, max(size, 1))[:size]
	return t.region
}

// init implements sluice_init: it keeps a copy of the configuration (the
// host's region is reused for input later) and runs the OnInit function.
func (t *transformer) init(config []byte) error {
	if t.handler == nil {
		return errNoHandler
	}
	if len(config) > 0 {
		t.config = slices.Clone(config)
	}
	if t.onInit != nil {
		if err := t.onInit(t.config); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	return nil
}

// transform implements sluice_transform: it decodes the input buffer, runs
// the handler on each record and returns the output buffer, valid until the
// next call. A malformed input gives a status-1 (invocation failed) buffer.
func (t *transformer) transform(in []byte) []byte {
	if t.handler == nil {
		return t.failure(errNoHandler)
	}
	out, err := t.run(in)
	if err != nil {
		return t.failure(err)
	}
	t.out = out
	return out
}

// failure returns a status-1 output buffer carrying err's message.
func (t *transformer) failure(err error) []byte {
	out := append(t.out[:0], outMagic...)
	out = le.AppendUint32(out, ABIVersion)
	out = le.AppendUint32(out, statusFailed)
	out = appendString(out, "guest: "+err.Error())
	t.out = out
	return out
}

func (t *transformer) run(in []byte) ([]byte, error) {
	if len(in) < headerSize || string(in[:4]) != inMagic {
		return nil, errors.New("input buffer: bad magic")
	}
	if v := le.Uint32(in[4:]); v != ABIVersion {
		return nil, fmt.Errorf("input buffer: version %d, this SDK implements %d", v, ABIVersion)
	}
	// in[8:12] are the flags: no bit is defined in version 1, unknown bits
	// are ignored.
	count := le.Uint32(in[12:])
	r := reader{b: in, off: headerSize}
	t.inv = Invocation{
		ID:                     r.str(),
		DeliveryStreamARN:      r.str(),
		Region:                 r.str(),
		SourceKinesisStreamARN: r.str(),
	}
	out := append(t.out[:0], outMagic...)
	out = le.AppendUint32(out, ABIVersion)
	out = le.AppendUint32(out, statusResults)
	out = le.AppendUint32(out, count)
	for i := uint32(0); i < count && r.err == nil; i++ {
		id := r.bytes()
		rec := Record{
			ID:            unsafeString(id),
			ArrivalMillis: r.i64(),
			Data:          r.bytes(),
			Invocation:    &t.inv,
		}
		rec.Meta = t.readMeta(&r)
		if r.err != nil {
			break
		}
		out = t.appendResult(out, id, t.call(rec))
	}
	if r.err != nil {
		return nil, fmt.Errorf("input buffer: %w", r.err)
	}
	if r.off != len(in) {
		return nil, fmt.Errorf("input buffer: %d trailing bytes after %d records", len(in)-r.off, count)
	}
	return out, nil
}

// readMeta decodes a record's metadata map into the reused map, or returns
// nil when it is empty.
func (t *transformer) readMeta(r *reader) map[string]string {
	n := r.u32()
	if n == 0 || r.err != nil {
		return nil
	}
	if t.meta == nil {
		t.meta = make(map[string]string, n)
	} else {
		clear(t.meta)
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		k := r.str()
		t.meta[k] = r.str()
	}
	return t.meta
}

// call runs the handler, turning a panic into a failed record.
func (t *transformer) call(rec Record) (res Result) {
	defer func() {
		if v := recover(); v != nil {
			res = Fail(fmt.Sprint("panic: ", v))
		}
	}()
	return t.handler(rec)
}

// appendResult encodes one result (ABI.md §2.2). A result the host would
// reject as a malformed buffer (unknown status, empty partition key) becomes
// a ProcessingFailed result instead, so that one bad record does not fail
// the whole call.
func (t *transformer) appendResult(out, id []byte, res Result) []byte {
	status, msg := res.Status, res.Error
	switch {
	case status > ProcessingFailed:
		status, msg = ProcessingFailed, "guest: invalid result status "+strconv.Itoa(int(res.Status))
	case status == Ok && !res.Keep && uint64(len(res.Data)) >= unchanged:
		status, msg = ProcessingFailed, "guest: result data too large"
	case status == Ok:
		if _, empty := res.PartitionKeys[""]; empty {
			status, msg = ProcessingFailed, "guest: empty partition key"
		}
	}
	out = append(out, byte(status))
	out = appendBytes(out, id)
	if status != Ok || res.Keep {
		out = le.AppendUint32(out, unchanged)
	} else {
		out = appendBytes(out, res.Data)
	}
	if status == Ok {
		out = t.appendKeys(out, res.PartitionKeys)
	} else {
		out = le.AppendUint32(out, 0)
	}
	if status != ProcessingFailed {
		msg = ""
	}
	return appendString(out, msg)
}

// appendKeys encodes the partition keys sorted by key, so that the output
// does not depend on map iteration order.
func (t *transformer) appendKeys(out []byte, keys map[string]string) []byte {
	out = le.AppendUint32(out, uint32(len(keys)))
	if len(keys) == 0 {
		return out
	}
	t.keys = t.keys[:0]
	for k := range keys {
		t.keys = append(t.keys, k)
	}
	slices.Sort(t.keys)
	for _, k := range t.keys {
		out = appendString(out, k)
		out = appendString(out, keys[k])
	}
	clear(t.keys) // do not retain the handler's strings
	return out
}

func appendBytes(out, b []byte) []byte {
	out = le.AppendUint32(out, uint32(len(b)))
	return append(out, b...)
}

func appendString(out []byte, s string) []byte {
	out = le.AppendUint32(out, uint32(len(s)))
	return append(out, s...)
}

// unsafeString returns a string sharing b's bytes: the strings of a Record
// alias the input buffer instead of being copied (documented as valid for
// the handler call only).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// reader decodes the input buffer; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(what string, n uint64) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated at offset %d: %s needs %d bytes, %d left", r.off, what, n, len(r.b)-r.off)
	}
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b)-r.off < 4 {
		r.fail("u32", 4)
		return 0
	}
	v := le.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

func (r *reader) i64() int64 {
	if r.err != nil || len(r.b)-r.off < 8 {
		r.fail("i64", 8)
		return 0
	}
	v := int64(le.Uint64(r.b[r.off:]))
	r.off += 8
	return v
}

// bytes returns the next length-prefixed field, with its capacity limited
// to its length so that appending to it cannot overwrite what follows.
func (r *reader) bytes() []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)-r.off) < uint64(n) {
		r.fail("bytes", uint64(n))
		return nil
	}
	end := r.off + int(n)
	b := r.b[r.off:end:end]
	r.off = end
	return b
}

func (r *reader) str() string { return unsafeString(r.bytes()) }
