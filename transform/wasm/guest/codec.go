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
	st := loop{in: in, count: le.Uint32(in[12:])}
	r := reader{b: in, off: headerSize}
	t.inv = Invocation{
		ID:                     r.str(),
		DeliveryStreamARN:      r.str(),
		Region:                 r.str(),
		SourceKinesisStreamARN: r.str(),
	}
	if r.err != nil {
		return nil, fmt.Errorf("input buffer: %w", r.err)
	}
	st.off = r.off
	st.out = append(t.out[:0], outMagic...)
	st.out = le.AppendUint32(st.out, ABIVersion)
	st.out = le.AppendUint32(st.out, statusResults)
	st.out = le.AppendUint32(st.out, st.count)
	for t.records(&st) {
		// A handler panicked: its record failed, go on with the next.
	}
	if st.err != nil {
		return nil, fmt.Errorf("input buffer: %w", st.err)
	}
	if st.off != len(in) {
		return nil, fmt.Errorf("input buffer: %d trailing bytes after %d records", len(in)-st.off, st.count)
	}
	return st.out, nil
}

// loop is the state of the record loop of one call.
type loop struct {
	in    []byte
	off   int    // the next record's offset
	i     uint32 // the next record's index
	count uint32
	id    []byte // the current record's ID
	out   []byte
	err   error
}

// records decodes records, runs the handler and encodes its results until
// the last record or a malformed one (st.err). It returns true when the
// handler panicked: the record then has a ProcessingFailed result and the
// caller calls records again for the next ones. (One deferred recover per
// call rather than per record: function calls are expensive in Go's
// WebAssembly code, so the per-record path is kept to the handler call.)
func (t *transformer) records(st *loop) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			st.out = t.appendResult(st.out, st.id, Fail(fmt.Sprint("panic: ", v)))
			st.i++
			panicked = true
		}
	}()
	in := st.in
	for ; st.i < st.count; st.i++ {
		// record_id str, arrival_ms i64, data bytes, metadata map; each
		// length is checked against what is left (no overflow: lengths
		// are at most 2^32-1 and offsets at most len(in)).
		off := st.off
		if len(in)-off < 4 {
			st.err = truncated(off, "record_id")
			return false
		}
		n := int(le.Uint32(in[off:]))
		off += 4
		if len(in)-off < n+8+4 {
			st.err = truncated(off, "record_id and arrival_ms")
			return false
		}
		id := in[off : off+n : off+n]
		off += n
		arrival := int64(le.Uint64(in[off:]))
		n = int(le.Uint32(in[off+8:]))
		off += 12
		if len(in)-off < n+4 {
			st.err = truncated(off, "data")
			return false
		}
		data := in[off : off+n : off+n]
		off += n
		var meta map[string]string
		if le.Uint32(in[off:]) == 0 {
			off += 4
		} else {
			r := reader{b: in, off: off}
			meta = t.readMeta(&r)
			if r.err != nil {
				st.err = r.err
				return false
			}
			off = r.off
		}
		st.off, st.id = off, id
		res := t.handler(Record{ID: unsafeString(id), ArrivalMillis: arrival, Data: data, Meta: meta, Invocation: &t.inv})
		st.out = t.appendResult(st.out, id, res)
	}
	return false
}

func truncated(off int, what string) error {
	return fmt.Errorf("truncated at offset %d: %s", off, what)
}

// readMeta decodes a non-empty metadata map into the reused map.
func (t *transformer) readMeta(r *reader) map[string]string {
	n := r.u32()
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

// appendResult encodes one result (ABI.md §2.2). A result the host would
// reject as a malformed buffer (unknown status, empty partition key) becomes
// a ProcessingFailed result instead, so that one bad record does not fail
// the whole call.
func (t *transformer) appendResult(out, id []byte, res Result) []byte {
	if res.Status == Ok && res.Keep && len(res.PartitionKeys) == 0 {
		// The pass-through fast path: code, record_id, "unchanged", no
		// keys, empty message.
		out = append(out, byte(Ok))
		out = appendBytes(out, id)
		return append(out, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0)
	}
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
