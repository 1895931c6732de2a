package guest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"maps"
	"strings"
	"testing"
)

// unhex decodes hex with spaces and newlines, as written in ABI.md.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enc builds a buffer field by field, following ABI.md §2.
type enc []byte

func (e enc) u32(v uint32) enc { return append(e, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
func (e enc) raw(s string) enc { return append(e, s...) }
func (e enc) str(s string) enc { return e.u32(uint32(len(s))).raw(s) }
func (e enc) i64(v int64) enc  { return e.u32(uint32(v)).u32(uint32(uint64(v) >> 32)) }

// input is an input buffer header for count records.
func input(count uint32) enc {
	return enc(nil).raw("SLUI").u32(1).u32(0).u32(count).str("inv-1").
		str("arn:aws:firehose:eu-west-1:000000000000:deliverystream/s").str("eu-west-1").str("arn:aws:kinesis:eu-west-1:000000000000:stream/k")
}

// output is a status-0 output buffer header for count results.
func output(count uint32) enc { return enc(nil).raw("SLUO").u32(1).u32(0).u32(count) }

// The worked example of ABI.md §7, byte for byte, both ways.
func TestWorkedExample(t *testing.T) {
	in := unhex(t, `53 4c 55 49  01 00 00 00  00 00 00 00  01 00 00 00
		01 00 00 00 69
		38 00 00 00`+hex.EncodeToString([]byte("arn:aws:firehose:us-east-1:000000000000:deliverystream/s"))+`
		09 00 00 00`+hex.EncodeToString([]byte("us-east-1"))+`
		00 00 00 00
		02 00 00 00 72 31
		00 68 e5 cf 8b 01 00 00
		07 00 00 00 7b 22 61 22 3a 31 7d
		00 00 00 00`)
	want := unhex(t, `53 4c 55 4f  01 00 00 00  00 00 00 00  01 00 00 00
		00
		02 00 00 00 72 31
		ff ff ff ff
		01 00 00 00  01 00 00 00 6b  01 00 00 00 76
		00 00 00 00`)
	var got Record
	var inv Invocation
	tr := transformer{handler: func(r Record) Result {
		got, inv = r, *r.Invocation
		return Pass().WithKeys(map[string]string{"k": "v"})
	}}
	out := tr.transform(in)
	if !bytes.Equal(out, want) {
		t.Fatalf("output\n%x, want\n%x", out, want)
	}
	if got.ID != "r1" || got.ArrivalMillis != 1700000000000 || string(got.Data) != `{"a":1}` || got.Meta != nil {
		t.Errorf("record %+v", got)
	}
	wantInv := Invocation{ID: "i", DeliveryStreamARN: "arn:aws:firehose:us-east-1:000000000000:deliverystream/s", Region: "us-east-1"}
	if inv != wantInv {
		t.Errorf("invocation %+v, want %+v", inv, wantInv)
	}
}

// Every kind of result, and the SDK's conversions of results the host would
// reject, against hand-built buffers.
func TestResults(t *testing.T) {
	in := input(8).
		str("a").i64(-1).str("hello").u32(2).str("shardId").str("shardId-000000000001").str("partitionKey").str("pk").
		str("b").i64(2).str("drop me").u32(0).
		str("c").i64(3).str("fail me").u32(0).
		str("d").i64(4).str("keys").u32(0).
		str("e").i64(5).str("panic").u32(0).
		str("f").i64(6).str("empty key").u32(0).
		str("g").i64(7).str("status 9").u32(0).
		str("h").i64(8).str("empty").u32(1).str("x").str("")
	want := output(8).
		raw("\x00").str("a").str("HELLO").u32(0).str("").
		raw("\x01").str("b").u32(0xFFFFFFFF).u32(0).str("").
		raw("\x02").str("c").u32(0xFFFFFFFF).u32(0).str("bad record").
		raw("\x00").str("d").u32(0xFFFFFFFF).u32(3).str("a").str("").str("month").str("11").str("year").str("2023").str("").
		raw("\x02").str("e").u32(0xFFFFFFFF).u32(0).str("panic: boom").
		raw("\x02").str("f").u32(0xFFFFFFFF).u32(0).str("guest: empty partition key").
		raw("\x02").str("g").u32(0xFFFFFFFF).u32(0).str("guest: invalid result status 9").
		raw("\x00").str("h").str("").u32(0).str("")
	var metas []map[string]string
	var arrivals []int64
	tr := transformer{handler: func(r Record) Result {
		metas = append(metas, maps.Clone(r.Meta))
		arrivals = append(arrivals, r.ArrivalMillis)
		switch r.ID {
		case "a":
			return Replace(bytes.ToUpper(r.Data))
		case "b":
			return Result{Status: Dropped, Error: "ignored", Data: []byte("ignored")}.WithKeys(map[string]string{"k": "ignored"})
		case "c":
			return Result{Status: ProcessingFailed, Error: "bad record", Data: []byte("ignored"), Keep: true}
		case "d":
			return Pass().WithKeys(map[string]string{"year": "2023", "month": "11", "a": ""})
		case "e":
			panic("boom")
		case "f":
			return Pass().WithKeys(map[string]string{"": "x"})
		case "g":
			return Result{Status: 9}
		}
		return Replace(nil)
	}}
	out := tr.transform(in)
	if !bytes.Equal(out, want) {
		t.Fatalf("output\n%q, want\n%q", out, want)
	}
	wantMetas := []map[string]string{{"shardId": "shardId-000000000001", "partitionKey": "pk"}, nil, nil, nil, nil, nil, nil, {"x": ""}}
	wantArrivals := []int64{-1, 2, 3, 4, 5, 6, 7, 8}
	for i := range wantMetas {
		if !maps.Equal(metas[i], wantMetas[i]) || (metas[i] == nil) != (wantMetas[i] == nil) || arrivals[i] != wantArrivals[i] {
			t.Errorf("record %d: meta %v arrival %d, want %v %d", i, metas[i], arrivals[i], wantMetas[i], wantArrivals[i])
		}
	}
}

// failed checks that out is a status-1 buffer whose message contains want.
func failed(t *testing.T, out []byte, want string) {
	t.Helper()
	head := enc(nil).raw("SLUO").u32(1).u32(1)
	if len(out) < 16 || !bytes.Equal(out[:12], head) {
		t.Fatalf("output %q is not a status-1 buffer", out)
	}
	msg := out[16:]
	if n := le.Uint32(out[12:]); int(n) != len(msg) {
		t.Fatalf("message length %d, %d bytes follow", n, len(msg))
	}
	if !strings.Contains(string(msg), want) {
		t.Errorf("message %q does not contain %q", msg, want)
	}
}

func TestMalformedInput(t *testing.T) {
	valid := input(2).str("a").i64(1).str("x").u32(1).str("k").str("v").str("b").i64(2).str("y").u32(0)
	calls := 0
	tr := transformer{handler: func(Record) Result { calls++; return Pass() }}
	if out := tr.transform(valid); !bytes.Equal(out[:16], output(2)) {
		t.Fatalf("valid input: %q", out)
	}
	// Every strict prefix is truncated (or too short for a header).
	for n := range len(valid) {
		out := tr.transform(valid[:n])
		switch {
		case n < 16:
			failed(t, out, "bad magic")
		default:
			failed(t, out, "truncated")
		}
	}
	failed(t, tr.transform(append(valid, 0)), "1 trailing bytes after 2 records")
	bad := bytes.Clone(valid)
	bad[3] = 'X'
	failed(t, tr.transform(bad), "bad magic")
	bad = bytes.Clone(valid)
	bad[4] = 2
	failed(t, tr.transform(bad), "version 2, this SDK implements 1")
	// A length beyond the buffer, and a count beyond the records.
	failed(t, tr.transform(input(1).u32(0xFFFFFFF0)), "truncated")
	failed(t, tr.transform(input(0xFFFFFFFF).str("a").i64(1).str("x").u32(0)), "truncated")
	// Unknown flag bits are ignored.
	flags := bytes.Clone(valid)
	flags[8], flags[11] = 0xFF, 0x80
	if out := tr.transform(flags); !bytes.Equal(out[:16], output(2)) {
		t.Errorf("flags: %q", out)
	}
	// An empty call is valid.
	if out := tr.transform(input(0)); !bytes.Equal(out, output(0)) {
		t.Errorf("no records: %q", out)
	}
}

func TestNoHandler(t *testing.T) {
	var tr transformer
	failed(t, tr.transform(input(0)), "no handler registered")
	if err := tr.init(nil); !errors.Is(err, errNoHandler) {
		t.Errorf("init without a handler: %v", err)
	}
}

func TestInit(t *testing.T) {
	var seen []byte
	errBad := errors.New("bad config")
	tr := transformer{
		handler: func(Record) Result { return Pass() },
		onInit: func(c []byte) error {
			seen = c
			if string(c) == "bad" {
				return errBad
			}
			return nil
		},
	}
	region := tr.alloc(15)
	copy(region, `{"table":"t"}`)
	if err := tr.init(region[:13]); err != nil {
		t.Fatal(err)
	}
	copy(region, "overwritten by the host")
	if string(tr.config) != `{"table":"t"}` || string(seen) != `{"table":"t"}` {
		t.Errorf("config %q, seen by OnInit %q: not a copy", tr.config, seen)
	}
	tr.config = nil
	if err := tr.init(nil); err != nil || tr.config != nil || seen != nil {
		t.Errorf("no config: %v, %q, %q", err, tr.config, seen)
	}
	if err := tr.init([]byte("bad")); !errors.Is(err, errBad) {
		t.Errorf("failing OnInit: %v", err)
	}
}

func TestAlloc(t *testing.T) {
	var tr transformer
	a := tr.alloc(100)
	if len(a) != 100 || &tr.region[0] != &a[0] {
		t.Fatalf("alloc(100): len %d, not kept", len(a))
	}
	b := tr.alloc(200)
	if len(b) != 200 || &tr.region[0] != &b[0] || &a[0] == &b[0] {
		t.Fatalf("alloc(200): len %d, not kept or not new", len(b))
	}
	if z := tr.alloc(0); z == nil || len(z) != 0 {
		t.Errorf("alloc(0): %v", z)
	}
}

// The handler may rewrite Data in place and append to it without touching
// the next record; the result may alias Data.
func TestDataAliasing(t *testing.T) {
	in := input(2).str("a").i64(1).str("ab").u32(0).str("b").i64(2).str("cd").u32(0)
	want := output(2).raw("\x00").str("a").str("AB!").u32(0).str("").raw("\x00").str("b").str("D").u32(0).str("")
	tr := transformer{handler: func(r Record) Result {
		if cap(r.Data) != len(r.Data) {
			t.Errorf("%s: cap %d > len %d", r.ID, cap(r.Data), len(r.Data))
		}
		copy(r.Data, bytes.ToUpper(r.Data))
		if r.ID == "a" {
			return Replace(append(r.Data, '!'))
		}
		return Replace(r.Data[1:])
	}}
	if out := tr.transform(in); !bytes.Equal(out, want) {
		t.Errorf("output\n%q, want\n%q", out, want)
	}
}

// Once its buffers have grown, the SDK allocates nothing per call or per
// record (for a handler that allocates nothing).
func TestZeroAllocations(t *testing.T) {
	in := input(3).
		str("a").i64(1).str(`{"a":1}`).u32(2).str("shardId").str("s").str("partitionKey").str("pk").
		str("b").i64(2).str("drop").u32(0).
		str("c").i64(3).str("keys").u32(1).str("shardId").str("t")
	keys := map[string]string{"year": "2024", "customer": "c1"}
	tr := transformer{handler: func(r Record) Result {
		switch r.ID {
		case "a":
			return Replace(r.Data[1:])
		case "b":
			return Drop()
		}
		return Pass().WithKeys(keys)
	}}
	tr.transform(in)
	if n := testing.AllocsPerRun(100, func() { tr.transform(in) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

func TestRegistration(t *testing.T) {
	saved := module
	t.Cleanup(func() { module = saved })
	module = transformer{}
	f := func(Record) Result { return Pass() }
	Handle(f)
	if module.handler == nil {
		t.Fatal("Handle did not register")
	}
	mustPanic(t, "Handle twice", func() { Handle(f) })
	mustPanic(t, "Handle(nil)", func() { Handle(nil) })
	OnInit(func([]byte) error { return nil })
	mustPanic(t, "OnInit twice", func() { OnInit(func([]byte) error { return nil }) })
	if err := module.init([]byte("cfg")); err != nil || string(Config()) != "cfg" {
		t.Errorf("init: %v, Config %q", err, Config())
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{Ok: "Ok", Dropped: "Dropped", ProcessingFailed: "ProcessingFailed", 7: "Status(7)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.String(), want)
		}
	}
}
