package transform

import (
	"strconv"
	"unsafe"
)

// SubRecordIDs appends to dst the IDs of the n records a processor splits
// the record with ID parent into: parent + "-" + index, stable since the
// parent's ID is (so a redelivered batch yields the same IDs). The IDs
// share one allocation.
func SubRecordIDs(parent string, n int, dst []string) []string {
	size := 0
	for j := range n {
		size += len(parent) + 1 + digits(j)
	}
	buf := make([]byte, 0, size)
	for j := range n {
		buf = append(buf, parent...)
		buf = append(buf, '-')
		buf = strconv.AppendInt(buf, int64(j), 10)
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	off := 0
	for j := range n {
		l := len(parent) + 1 + digits(j)
		dst = append(dst, all[off:off+l])
		off += l
	}
	return dst
}

// digits is the number of decimal digits of j >= 0.
func digits(j int) int {
	n := 1
	for ; j >= 10; j /= 10 {
		n++
	}
	return n
}
