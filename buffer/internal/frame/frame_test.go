package frame

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sluice-dev/sluice/pipeline"
)

func TestRoundTrip(t *testing.T) {
	recs := []pipeline.Record{
		{Data: nil},
		{Data: []byte("hello")},
		{Data: bytes.Repeat([]byte{0xff}, 70000), Meta: map[string]string{"shard": "shardId-1", "seq": "4960", "": ""}},
	}
	var buf []byte
	for i := range recs {
		var err error
		if buf, err = Append(buf, &recs[i], int64(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	off := 0
	for i := range recs {
		f, err := Decode(buf[off:])
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if f.Len != Size(&recs[i]) || f.Arrived != int64(1000+i) || !bytes.Equal(f.Data, recs[i].Data) {
			t.Fatalf("record %d: decoded %+v", i, f)
		}
		m := DecodeMeta(f.MetaRaw)
		if len(m) != len(recs[i].Meta) {
			t.Fatalf("record %d: meta %v", i, m)
		}
		for k, v := range recs[i].Meta {
			if m[k] != v {
				t.Fatalf("record %d: meta %v", i, m)
			}
		}
		off += f.Len
	}
	if off != len(buf) {
		t.Fatalf("decoded %d of %d bytes", off, len(buf))
	}
}

func TestCorruptionDetected(t *testing.T) {
	r := pipeline.Record{Data: []byte("some payload"), Meta: map[string]string{"k": "v"}}
	good, _ := Append(nil, &r, 42)
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		if _, err := Decode(b); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	for n := 0; n < len(good); n++ {
		if _, err := Decode(good[:n]); !errors.Is(err, ErrShort) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
	}
	if _, err := Decode(make([]byte, 64)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("zeros: %v", err)
	}
}

func TestID(t *testing.T) {
	id := string(AppendID(nil, "0123456789abcdef", 0x1f))
	if id != "0123456789abcdef-000000000000001f" || len(id) != IDLen {
		t.Fatalf("id %q", id)
	}
}

func FuzzDecode(f *testing.F) {
	r := pipeline.Record{Data: []byte("x"), Meta: map[string]string{"a": "b"}}
	seed, _ := Append(nil, &r, 1)
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		_ = DecodeMeta(fr.MetaRaw)
		if fr.Len > len(b) || len(fr.Data) > fr.Len {
			t.Fatalf("frame %+v from %d bytes", fr, len(b))
		}
	})
}
