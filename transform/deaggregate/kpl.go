package deaggregate

import (
	"crypto/md5"
	"errors"
	"fmt"
	"math"
)

// The KPL aggregated record format (amazon-kinesis-producer
// aggregation-format.md; contract §6.3):
//
//	F3 89 9A C2 ‖ protobuf AggregatedRecord ‖ MD5 of the protobuf bytes
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//	message Tag { required string key = 1; optional string value = 2; }
const (
	kplMagic   = "\xf3\x89\x9a\xc2"
	kplMD5Size = md5.Size
)

// Why a record is not de-aggregated as KPL (metric label values).
const (
	reasonNoMagic  = "no_magic"
	reasonBadMD5   = "bad_md5"
	reasonProtobuf = "invalid_protobuf"
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// kplRecord is one user record of an aggregated record. data aliases the
// aggregated record's bytes.
type kplRecord struct {
	data   []byte
	pk     string
	ehk    string
	hasEHK bool
}

// kplBody returns the protobuf message of an aggregated record, or the
// reason data is not one: no magic prefix, or too short for the digest or
// a digest that does not match (KCL's convention: such records are plain
// records).
func kplBody(data []byte) ([]byte, string) {
	if len(data) < len(kplMagic) || string(data[:len(kplMagic)]) != kplMagic {
		return nil, reasonNoMagic
	}
	if len(data) < len(kplMagic)+kplMD5Size {
		return nil, reasonBadMD5
	}
	body := data[len(kplMagic) : len(data)-kplMD5Size]
	sum := md5.Sum(body)
	if string(sum[:]) != string(data[len(data)-kplMD5Size:]) {
		return nil, reasonBadMD5
	}
	return body, ""
}

// decodeKPL appends the user records of the protobuf AggregatedRecord body
// to dst. It fails, wrapping errTooMany, when there are more than max
// records (max 0: no limit).
func decodeKPL(body []byte, max int, dst []kplRecord) ([]kplRecord, error) {
	// First pass: check the framing and count the table entries, so that
	// the tables, which may follow the records, are complete before any
	// record is resolved.
	var npk, nehk, nrec int
	it := fields{b: body}
	for it.next() {
		switch it.num {
		case 1, 2, 3:
			if it.wt != wireBytes {
				return dst, fmt.Errorf("AggregatedRecord field %d has wire type %d, not length-delimited", it.num, it.wt)
			}
		}
		switch it.num {
		case 1:
			npk++
		case 2:
			nehk++
		case 3:
			nrec++
		}
	}
	if it.err != nil {
		return dst, it.err
	}
	if max > 0 && nrec > max {
		return dst, fmt.Errorf("%w: %d user records, more than %d", errTooMany, nrec, max)
	}
	pks := make([]string, 0, npk)
	var ehks []string
	if nehk > 0 {
		ehks = make([]string, 0, nehk)
	}
	for it = (fields{b: body}); it.next(); {
		switch it.num {
		case 1:
			pks = append(pks, string(it.val))
		case 2:
			ehks = append(ehks, string(it.val))
		}
	}
	start := len(dst)
	for it = (fields{b: body}); it.next(); {
		if it.num != 3 {
			continue
		}
		r, err := decodeUserRecord(it.val, pks, ehks)
		if err != nil {
			return dst[:start], fmt.Errorf("record %d: %w", len(dst)-start, err)
		}
		dst = append(dst, r)
	}
	return dst, nil
}

// decodeUserRecord decodes one Record message and resolves its table
// indexes.
func decodeUserRecord(b []byte, pks, ehks []string) (kplRecord, error) {
	var (
		r              kplRecord
		pkIdx, ehkIdx  uint64
		hasPK, hasData bool
	)
	it := fields{b: b}
	for it.next() {
		switch it.num {
		case 1, 2:
			if it.wt != wireVarint {
				return r, fmt.Errorf("field %d has wire type %d, not varint", it.num, it.wt)
			}
			v, _ := consumeVarint(it.val)
			if it.num == 1 {
				pkIdx, hasPK = v, true
			} else {
				ehkIdx, r.hasEHK = v, true
			}
		case 3:
			if it.wt != wireBytes {
				return r, fmt.Errorf("data has wire type %d, not length-delimited", it.wt)
			}
			r.data, hasData = it.val, true
		case 4:
			if it.wt != wireBytes {
				return r, fmt.Errorf("tags have wire type %d, not length-delimited", it.wt)
			}
		}
	}
	switch {
	case it.err != nil:
		return r, it.err
	case !hasPK:
		return r, errors.New("required partition_key_index is missing")
	case !hasData:
		return r, errors.New("required data is missing")
	case pkIdx >= uint64(len(pks)):
		return r, fmt.Errorf("partition_key_index %d is outside the table of %d keys", pkIdx, len(pks))
	case r.hasEHK && ehkIdx >= uint64(len(ehks)):
		return r, fmt.Errorf("explicit_hash_key_index %d is outside the table of %d keys", ehkIdx, len(ehks))
	}
	r.pk = pks[pkIdx]
	if r.hasEHK {
		r.ehk = ehks[ehkIdx]
	}
	return r, nil
}

// fields iterates over the fields of the protobuf message b. After each
// successful next, num and wt are the field's number and wire type and val
// its value: for varints the varint's bytes, for length-delimited fields
// the contents, for fixed-size fields their bytes. Groups (wire types 3
// and 4, deprecated) are not supported. err is set when next stops early.
type fields struct {
	b   []byte
	i   int
	num uint64
	wt  int
	val []byte
	err error
}

func (f *fields) next() bool {
	if f.err != nil || f.i >= len(f.b) {
		return false
	}
	b, i := f.b, f.i
	tag, n := consumeVarint(b[i:])
	if n < 0 {
		f.err = fmt.Errorf("byte %d: truncated or overlong field tag", i)
		return false
	}
	num, wt := tag>>3, int(tag&7)
	if num == 0 || num > math.MaxInt32>>2 {
		f.err = fmt.Errorf("byte %d: invalid field number %d", i, num)
		return false
	}
	i += n
	switch wt {
	case wireVarint:
		_, m := consumeVarint(b[i:])
		if m < 0 {
			f.err = fmt.Errorf("byte %d: field %d: truncated or overlong varint", i, num)
			return false
		}
		f.val = b[i : i+m]
		i += m
	case wireFixed64, wireFixed32:
		size := 8
		if wt == wireFixed32 {
			size = 4
		}
		if len(b)-i < size {
			f.err = fmt.Errorf("byte %d: field %d: truncated fixed-size value", i, num)
			return false
		}
		f.val = b[i : i+size]
		i += size
	case wireBytes:
		l, m := consumeVarint(b[i:])
		if m < 0 {
			f.err = fmt.Errorf("byte %d: field %d: truncated or overlong length", i, num)
			return false
		}
		i += m
		if l > uint64(len(b)-i) {
			f.err = fmt.Errorf("byte %d: field %d: length %d runs past the end of the message (%d bytes left)", i, num, l, len(b)-i)
			return false
		}
		f.val = b[i : i+int(l)]
		i += int(l)
	default:
		f.err = fmt.Errorf("byte %d: field %d: unsupported wire type %d", f.i, num, wt)
		return false
	}
	f.num, f.wt, f.i = num, wt, i
	return true
}

// consumeVarint decodes a protobuf varint at the start of b and returns it
// with its length, or n < 0 when b ends inside it or it is longer than 10
// bytes or overflows 64 bits.
func consumeVarint(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, -1 // overflows 64 bits
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}
