package decompress

import (
	"bytes"
	"testing"
)

// FuzzGunzip: no panic on any input; the output respects the limit; gzip
// of the input round-trips.
func FuzzGunzip(f *testing.F) {
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add(gz(f, []byte("hello")))
	f.Add([]byte("plain"))
	in := &inflater{}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := in.gunzip(data, 4096)
		if err == nil && len(out) > 4096 {
			t.Fatalf("%d bytes past the limit", len(out))
		}
		if len(data) <= 4096 {
			out, err := in.gunzip(gz(t, data), 4096)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

// FuzzExtract: no panic on any payload.
func FuzzExtract(f *testing.F) {
	f.Add(cwl(MessageTypeData, "a", "b"))
	f.Add([]byte(`{"messageType":"DATA_MESSAGE","logEvents":[{"message":null}]}`))
	f.Add([]byte(`{"messageType":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, typ, err := extractMessages(data)
		if err == nil && typ != MessageTypeData && typ != MessageTypeControl {
			t.Fatalf("type %q", typ)
		}
		if err != nil && len(msgs) != 0 {
			t.Fatal("messages with an error")
		}
	})
}
