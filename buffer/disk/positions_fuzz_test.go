package disk

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/buffer/internal/frame"
)

// FuzzDecodePositions: decodePositions never panics, fails only with
// errBadPositions, and what it decodes encodes to a file that decodes to
// the same state (covered position and values). With fix set the last four
// bytes are replaced by the CRC32C of the others first, so that the entries
// are parsed (the fuzzer cannot get past the CRC by itself).
func FuzzDecodePositions(f *testing.F) {
	for _, p := range []positionsState{
		{},
		{covered: 5, values: map[string]string{}},
		{covered: 1 << 40, values: map[string]string{"shardId-000000000000": "49590338271490256608559692538361571095921575989136588898"}},
		{covered: 170, values: map[string]string{"s1": "100", "s2": "", "": "x", "s3": string(make([]byte, 200))}},
	} {
		f.Add(p.encode(), false)
		f.Add(p.encode(), true)
	}
	f.Add([]byte("SLPS"), false)
	f.Add([]byte("SLPS\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00"), true)
	f.Add([]byte("SLPS\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x01a\x00\x00\x00\x00\x00"), true)
	f.Add([]byte("SLPS\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\xff\xff\xff\xff\x0f\x00\x00\x00\x00"), true)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix && len(b) >= 4 {
			b = slices.Clone(b)
			end := len(b) - 4
			binary.LittleEndian.PutUint32(b[end:], crc32.Checksum(b[:end], frame.Table()))
		}
		p, err := decodePositions(b)
		if err != nil {
			if !errors.Is(err, errBadPositions) {
				t.Fatalf("error not errBadPositions: %v", err)
			}
			return
		}
		if p.values == nil {
			t.Fatal("decoded without a values map")
		}
		again, err := decodePositions(p.encode())
		if err != nil || again.covered != p.covered || !maps.Equal(again.values, p.values) {
			t.Fatalf("re-encoding %+v: %+v, %v", p, again, err)
		}
	})
}
