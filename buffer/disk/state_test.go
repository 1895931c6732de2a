package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3, buffer.MaxInflight} {
		c := cursorState{logID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, committed: 1000}
		for i := 0; i < n; i++ {
			c.inflight = append(c.inflight, pipeline.BatchID{First: pipeline.Position(1000 + 100*i), End: pipeline.Position(1050 + 100*i)})
		}
		b := c.encode()
		if len(b) != 36+16*n || b[4] != 2 {
			t.Fatalf("%d in flight: %d bytes, version %d", n, len(b), b[4])
		}
		got, err := decodeCursor(b)
		if err != nil {
			t.Fatalf("%d in flight: %v", n, err)
		}
		if got.logID != c.logID || got.committed != c.committed || !slices.Equal(got.inflight, c.inflight) {
			t.Fatalf("%d in flight: decoded %+v, want %+v", n, got, c)
		}
		for i := range b {
			bad := bytes.Clone(b)
			bad[i] ^= 0x10
			if _, err := decodeCursor(bad); !errors.Is(err, errBadCursor) {
				t.Fatalf("%d in flight: flipped byte %d accepted: %v", n, i, err)
			}
		}
		if _, err := decodeCursor(b[:len(b)-1]); !errors.Is(err, errBadCursor) {
			t.Fatalf("%d in flight: short file accepted: %v", n, err)
		}
	}
}

func TestCursorVersion1(t *testing.T) {
	b, err := os.ReadFile("testdata/v1-inflight/cursor")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 44 || b[4] != 1 {
		t.Fatalf("fixture is not a version 1 cursor: %d bytes, version %d", len(b), b[4])
	}
	c, err := decodeCursor(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []pipeline.BatchID{{First: 0, End: 1200}}
	if c.committed != 0 || !slices.Equal(c.inflight, want) {
		t.Fatalf("decoded %+v, want committed 0 and in flight %v", c, want)
	}
	// Without a batch in flight (end 0) the set is empty.
	none := bytes.Clone(b)
	clear(none[24:40])
	binary.LittleEndian.PutUint32(none[40:], crc32.Checksum(none[:40], frame.Table()))
	got, err := decodeCursor(none)
	if err != nil || len(got.inflight) != 0 || got.logID != c.logID {
		t.Fatalf("version 1 without a batch in flight: %+v, %v", got, err)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(cursorState{committed: 5}.encode())
	f.Add(cursorState{committed: 5, inflight: []pipeline.BatchID{{First: 5, End: 9}, {First: 9, End: 20}}}.encode())
	if b, err := os.ReadFile("testdata/v1-inflight/cursor"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCursor(b)
		if err != nil {
			if !errors.Is(err, errBadCursor) {
				t.Fatalf("error not errBadCursor: %v", err)
			}
			return
		}
		if len(c.inflight) > buffer.MaxInflight {
			t.Fatalf("%d in flight", len(c.inflight))
		}
		for i, id := range c.inflight {
			if id.End <= id.First || i > 0 && id.First < c.inflight[i-1].End {
				t.Fatalf("accepted a bad set %v", c.inflight)
			}
		}
		again, err := decodeCursor(c.encode())
		if err != nil || again.committed != c.committed || !slices.Equal(again.inflight, c.inflight) {
			t.Fatalf("re-encoding: %+v, %v", again, err)
		}
	})
}
