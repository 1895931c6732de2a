package deaggregate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

type goldenFile struct {
	Source  string `json:"source"`
	Vectors []struct {
		Name        string `json:"name"`
		Data        string `json:"data"`
		Passthrough bool   `json:"passthrough"`
		Records     []struct {
			PartitionKey    *string `json:"partitionKey"`
			ExplicitHashKey *string `json:"explicitHashKey"`
			Data            string  `json:"data"`
		} `json:"records"`
	} `json:"vectors"`
}

// TestKPLGolden de-aggregates records produced by the real KPL, taken with
// their expected user records from the reference implementation's tests
// (testdata/kpl_golden.json names the source).
func TestKPLGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/kpl_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Vectors) < 4 {
		t.Fatalf("%d vectors in the golden file", len(g.Vectors))
	}
	p, _ := newProc(t, Options{SubRecordType: TypeKPL})
	for _, v := range g.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			data, err := base64.StdEncoding.DecodeString(v.Data)
			if err != nil {
				t.Fatal(err)
			}
			arrived := time.Unix(1518133507, 63e6)
			in := pipeline.Batch{Stream: "s", Records: []pipeline.Record{{
				ID: "shard-7", Data: data, Arrived: arrived, Meta: map[string]string{"shardId": "shardId-000000000003"},
			}}}
			out, failed, err := p.Process(context.Background(), in)
			if err != nil || len(failed) != 0 {
				t.Fatalf("err=%v failed=%v", err, failed)
			}
			if len(out.Records) != len(v.Records) {
				t.Fatalf("%d records, want %d", len(out.Records), len(v.Records))
			}
			for i, want := range v.Records {
				got := out.Records[i]
				if string(got.Data) != want.Data {
					t.Errorf("record %d: data %q, want %q", i, got.Data, want.Data)
				}
				if !got.Arrived.Equal(arrived) {
					t.Errorf("record %d: arrived %v", i, got.Arrived)
				}
				if v.Passthrough {
					if got.ID != "shard-7" || &got.Data[0] != &data[0] {
						t.Errorf("passthrough record changed: id %q", got.ID)
					}
					continue
				}
				if wantID := "shard-7-" + strconv.Itoa(i); got.ID != wantID {
					t.Errorf("record %d: id %q, want %q", i, got.ID, wantID)
				}
				wantMeta := map[string]string{"shardId": "shardId-000000000003", MetaPartitionKey: *want.PartitionKey, MetaSubSequenceNumber: strconv.Itoa(i)}
				if want.ExplicitHashKey != nil {
					wantMeta[MetaExplicitHashKey] = *want.ExplicitHashKey
				}
				if !maps.Equal(got.Meta, wantMeta) {
					t.Errorf("record %d: meta %v, want %v", i, got.Meta, wantMeta)
				}
				// The data is a sub-slice of the aggregated record, not a copy.
				if off := bytes.Index(data, got.Data); off < 0 || &data[off] != &got.Data[0] {
					t.Errorf("record %d: data was copied", i)
				}
			}
		})
	}
}

func TestKPLHandEncoded(t *testing.T) {
	recs := []userRecord{
		{pk: 1, ehk: -1, data: "first"},
		{pk: 0, ehk: 0, data: "", tags: map[string]string{"k": "v"}},
		{pk: 1, ehk: 1, data: string([]byte{0, 0xff, 0xF3, 0x89})},
	}
	pks, ehks := []string{"pk-a", "pk-b"}, []string{"ehk-0", "ehk-1"}
	// Records before the tables, and unknown fields of every wire type,
	// which a proto2 reader must skip.
	w := &pbw{}
	for _, r := range recs {
		w.bytes(3, append(r.encode(), (&pbw{}).uint(15, 99).b...))
	}
	w.uint(9, 1<<40)
	w.tag(10, 1)
	w.b = append(w.b, 1, 2, 3, 4, 5, 6, 7, 8)
	w.tag(11, 5)
	w.b = append(w.b, 1, 2, 3, 4)
	for _, k := range pks {
		w.bytes(1, []byte(k))
	}
	w.bytes(12, []byte("unknown"))
	for _, k := range ehks {
		w.bytes(2, []byte(k))
	}
	p, reg := newProc(t, Options{SubRecordType: TypeKPL})
	parent := map[string]string{MetaExplicitHashKey: "the parent's", "shardId": "s-1"}
	in := batchOf(frame(w.b), []byte("plain"))
	in.Records[0].Meta = parent
	in.Records[0].Keys = map[string]string{"k": "v"}
	before := slicesClone(in.Records)
	out, failed, err := p.Process(context.Background(), in)
	if err != nil || len(failed) != 0 {
		t.Fatalf("err=%v failed=%v", err, failed)
	}
	want := []struct{ id, data, pk, ehk string }{
		{"r0-0", "first", "pk-b", ""},
		{"r0-1", "", "pk-a", "ehk-0"},
		{"r0-2", "\x00\xff\xf3\x89", "pk-b", "ehk-1"},
		{"r1", "plain", "", ""},
	}
	if len(out.Records) != len(want) {
		t.Fatalf("%d records, want %d", len(out.Records), len(want))
	}
	for i, w := range want {
		got := out.Records[i]
		if got.ID != w.id || string(got.Data) != w.data || got.Meta[MetaPartitionKey] != w.pk || got.Meta[MetaExplicitHashKey] != w.ehk {
			t.Errorf("record %d = %q %q %v, want %+v", i, got.ID, got.Data, got.Meta, w)
		}
		if i < 3 && (got.Meta["shardId"] != "s-1" || got.Keys["k"] != "v") {
			t.Errorf("record %d lost the parent's metadata or keys: %v %v", i, got.Meta, got.Keys)
		}
	}
	if out.Bytes != len("first")+4+len("plain") {
		t.Errorf("Bytes = %d", out.Bytes)
	}
	// Each sub-record owns its maps; the input batch is intact.
	out.Records[0].Keys["k"] = "changed"
	out.Records[0].Meta["x"] = "y"
	if out.Records[1].Keys["k"] != "v" || in.Records[0].Keys["k"] != "v" || len(parent) != 2 {
		t.Error("sub-records share maps with each other or with the parent")
	}
	for i := range before {
		if before[i].ID != in.Records[i].ID || !bytes.Equal(before[i].Data, in.Records[i].Data) {
			t.Errorf("input record %d changed", i)
		}
	}
	if got := value(t, p.metrics.in, "s"); got != 2 {
		t.Errorf("in = %v, want 2", got)
	}
	if got := value(t, p.metrics.out, "s"); got != 4 {
		t.Errorf("out = %v, want 4", got)
	}
	if got := value(t, p.metrics.passthrough, "s", reasonNoMagic); got != 1 {
		t.Errorf("passthrough no_magic = %v, want 1", got)
	}
	_ = reg
}

func slicesClone(r []pipeline.Record) []pipeline.Record { return append([]pipeline.Record(nil), r...) }

// TestKPLNotAggregated checks that records that are not valid aggregated
// records pass through unchanged and are counted by reason.
func TestKPLNotAggregated(t *testing.T) {
	good := aggregatedMessage([]string{"a"}, nil, []userRecord{{pk: 0, ehk: -1, data: "x"}})
	flipped := frame(good)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name, reason string
		data         []byte
	}{
		{"empty", reasonNoMagic, []byte{}},
		{"plain", reasonNoMagic, []byte(`{"a":1}`)},
		{"partial magic", reasonNoMagic, []byte{0xF3, 0x89, 0x9A}},
		{"magic only", reasonBadMD5, []byte{0xF3, 0x89, 0x9A, 0xC2}},
		{"shorter than the digest", reasonBadMD5, append([]byte{0xF3, 0x89, 0x9A, 0xC2}, make([]byte, 15)...)},
		{"digest mismatch", reasonBadMD5, flipped},
		{"truncated message", reasonProtobuf, frame(good[:len(good)-1])},
		{"index out of range", reasonProtobuf, frame(aggregatedMessage([]string{"a"}, nil, []userRecord{{pk: 1, ehk: -1, data: "x"}}))},
		{"ehk index out of range", reasonProtobuf, frame(aggregatedMessage([]string{"a"}, nil, []userRecord{{pk: 0, ehk: 0, data: "x"}}))},
		{"missing data", reasonProtobuf, frame((&pbw{}).bytes(1, []byte("a")).bytes(3, (&pbw{}).uint(1, 0).b).b)},
		{"missing partition key index", reasonProtobuf, frame((&pbw{}).bytes(1, []byte("a")).bytes(3, (&pbw{}).bytes(3, []byte("x")).b).b)},
		{"records field as varint", reasonProtobuf, frame((&pbw{}).uint(3, 1).b)},
		{"data as varint", reasonProtobuf, frame((&pbw{}).bytes(1, []byte("a")).bytes(3, (&pbw{}).uint(1, 0).uint(3, 5).b).b)},
		{"group wire type", reasonProtobuf, frame((&pbw{}).tag(5, 3).b)},
		{"field number zero", reasonProtobuf, frame([]byte{0x02, 0x00})},
		{"overlong varint", reasonProtobuf, frame(append((&pbw{}).tag(9, 0).b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newProc(t, Options{SubRecordType: TypeKPL})
			in := batchOf(tt.data)
			out, failed, err := p.Process(context.Background(), in)
			if err != nil || len(failed) != 0 {
				t.Fatalf("err=%v failed=%v", err, failed)
			}
			if len(out.Records) != 1 || out.Records[0].ID != "r0" || !bytes.Equal(out.Records[0].Data, tt.data) {
				t.Fatalf("got %+v, want the record unchanged", out.Records)
			}
			for _, r := range []string{reasonNoMagic, reasonBadMD5, reasonProtobuf} {
				want := 0.0
				if r == tt.reason {
					want = 1
				}
				if got := value(t, p.metrics.passthrough, "s", r); got != want {
					t.Errorf("passthrough{reason=%s} = %v, want %v", r, got, want)
				}
			}
		})
	}
	// The valid message itself is de-aggregated (the cases above fail for
	// the reason they name, not for a broken fixture).
	p, _ := newProc(t, Options{SubRecordType: TypeKPL})
	out, _, _ := p.Process(context.Background(), batchOf(frame(good)))
	if len(out.Records) != 1 || out.Records[0].ID != "r0-0" || string(out.Records[0].Data) != "x" {
		t.Fatalf("valid fixture: %+v", out.Records)
	}
}

func TestKPLLimitAndEmpty(t *testing.T) {
	many := make([]userRecord, 1200)
	for i := range many {
		many[i] = userRecord{pk: 0, ehk: -1, data: strconv.Itoa(i)}
	}
	rec := frame(aggregatedMessage([]string{"k"}, nil, many))

	// No default limit for KPL.
	p, _ := newProc(t, Options{SubRecordType: TypeKPL})
	out, failed, err := p.Process(context.Background(), batchOf(rec))
	if err != nil || len(failed) != 0 || len(out.Records) != 1200 {
		t.Fatalf("err=%v failed=%d records=%d", err, len(failed), len(out.Records))
	}
	if out.Records[1199].ID != "r0-1199" || string(out.Records[1199].Data) != "1199" || out.Records[1199].Meta[MetaSubSequenceNumber] != "1199" {
		t.Errorf("last record %+v", out.Records[1199])
	}

	// An explicit limit fails the whole record.
	p, _ = newProc(t, Options{SubRecordType: TypeKPL, MaxSubRecords: 1000})
	out, failed, err = p.Process(context.Background(), batchOf([]byte("before"), rec, []byte("after")))
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].Index != 1 {
		t.Fatalf("failed = %v", failed)
	}
	var ce *pipeline.CodedError
	if !errors.As(failed[0].Err, &ce) || ce.Code != CodeTooManySubRecords || ce.OutputType != pipeline.OutputProcessingFailed {
		t.Errorf("error %v", failed[0].Err)
	}
	if len(out.Records) != 2 || string(out.Records[0].Data) != "before" || string(out.Records[1].Data) != "after" {
		t.Errorf("records %+v", out.Records)
	}

	// An aggregated record without user records yields nothing.
	p, _ = newProc(t, Options{SubRecordType: TypeKPL})
	out, failed, _ = p.Process(context.Background(), batchOf(frame(nil)))
	if len(out.Records) != 0 || len(failed) != 0 {
		t.Errorf("empty aggregate: %+v %v", out.Records, failed)
	}
}

func TestConsumeVarint(t *testing.T) {
	tests := []struct {
		in   []byte
		v    uint64
		n    int
		fail bool
	}{
		{[]byte{0}, 0, 1, false},
		{[]byte{0x96, 0x01}, 150, 2, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1<<64 - 1, 10, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 0, 0, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, 0, true},
		{[]byte{0x80}, 0, 0, true},
		{nil, 0, 0, true},
	}
	for _, tt := range tests {
		v, n := consumeVarint(tt.in)
		if tt.fail {
			if n >= 0 {
				t.Errorf("consumeVarint(%x) = %d, %d; want failure", tt.in, v, n)
			}
			continue
		}
		if v != tt.v || n != tt.n {
			t.Errorf("consumeVarint(%x) = %d, %d; want %d, %d", tt.in, v, n, tt.v, tt.n)
		}
	}
	// Round trip with the independent writer.
	for _, v := range []uint64{1, 127, 128, 300, 1 << 35, 1<<63 + 5} {
		b := (&pbw{}).varint(v).b
		if got, n := consumeVarint(b); got != v || n != len(b) {
			t.Errorf("round trip %d: %d, %d", v, got, n)
		}
	}
}

func ExampleProcessor_kpl() {
	msg := aggregatedMessage([]string{"user-1"}, nil, []userRecord{{pk: 0, ehk: -1, data: "hello"}, {pk: 0, ehk: -1, data: "world"}})
	c, _ := Options{SubRecordType: TypeKPL}.Compile()
	p, _ := New(c, pipeline.Deps{})
	out, _, _ := p.Process(context.Background(), pipeline.Batch{Records: []pipeline.Record{{ID: "r", Data: frame(msg)}}})
	for _, r := range out.Records {
		fmt.Println(r.ID, string(r.Data), r.Meta[MetaPartitionKey], r.Meta[MetaSubSequenceNumber])
	}
	// Output:
	// r-0 hello user-1 0
	// r-1 world user-1 1
}
