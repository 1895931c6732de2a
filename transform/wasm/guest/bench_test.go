package guest

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkTransformPassThrough measures the SDK's own per-record cost
// (native code) on a 5,000-record call of 1 KiB records.
func BenchmarkTransformPassThrough(b *testing.B) {
	in := input(5000)
	for i := range 5000 {
		in = in.str(fmt.Sprintf("49650000000000000000000000-%06d", i)).i64(1700000000000).str(strings.Repeat("x", 1024)).u32(0)
	}
	tr := transformer{handler: func(Record) Result { return Pass() }}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		tr.transform(in)
	}
	b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "records/s")
}
