package main

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/transform/wasm/guest"
)

func TestMaskEmails(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"email":"jane@example.com"}`, `{"email":"j***@example.com"}`},
		{` { "b" : 1 , "email" : "jo@x.org" , "a" : [ ] } ` + "\n", ` { "b" : 1 , "email" : "j***@x.org" , "a" : [ ] } ` + "\n"},
		{`{"user":{"email":"ann@a.io","profile":{"email":"bob@b.io"}}}`, `{"user":{"email":"a***@a.io","profile":{"email":"b***@b.io"}}}`},
		{`[{"email":"c@c.c"},{"list":[[{"email":"d.e@f.g"}]]}]`, `[{"email":"c***@c.c"},{"list":[[{"email":"d***@f.g"}]]}]`},
		{`{"email":"é@x.fr"}`, `{"email":"é***@x.fr"}`},
		{`{"email":"a@b@c.d"}`, `{"email":"a***@c.d"}`},
		{`{"email":"no-at-sign"}`, `{"email":"***"}`},
		{`{"email":"@x.org"}`, `{"email":"***"}`},
		{`{"email":""}`, `{"email":"***"}`},
		{`{"email":42}`, `{"email":"***"}`},
		{`{"email":{"primary":"x@y.z"},"n":1e5}`, `{"email":"***","n":1e5}`},
		{`{"email":["x@y.z"]}`, `{"email":"***"}`},
		{`{"email":true}`, `{"email":"***"}`},
		{`{"email":null}`, ""},
		{`{"em\u0061il":"k@l.m"}`, `{"em\u0061il":"k***@l.m"}`},
		{`{"email":"k\u0040l.m\"q"}`, `{"email":"k***@l.m\"q"}`},
		{`{"email":"\u00e9t\u00e9@x.fr"}`, `{"email":"é***@x.fr"}`},
		{`{"Email":"k@l.m","emails":"k@l.m","x":"email"}`, ""},
		{`{"a":"b","n":-0.5E-3,"t":[true,false,null,"\\\/\b\f\n\r\t"]}`, ""},
		{`"email"`, ""},
		{`[]`, ""},
	} {
		got, changed, err := maskEmails(nil, []byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if c.want == "" {
			if changed || got != nil {
				t.Errorf("%s: changed to %s", c.in, got)
			}
			continue
		}
		if !changed || string(got) != c.want {
			t.Errorf("%s: %s (changed %v), want %s", c.in, got, changed, c.want)
		}
	}
}

func TestMaskEmailsInvalid(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{``, "offset 0: unexpected end of data"},
		{`<not json/>`, "offset 0: unexpected character '<'"},
		{`{"email":"a@b.c"} x`, "offset 18: data after the JSON value"},
		{`{"email":"a@b.c"}{}`, "offset 17: data after the JSON value"},
		{`{"a":1,}`, "offset 7: expected a string key"},
		{`{"a" 1}`, "offset 5: expected ':'"},
		{`{"a":1 "b":2}`, "offset 7: expected ',' or '}'"},
		{`[1 2]`, "offset 3: expected ',' or ']'"},
		{`[1,`, "offset 3: unexpected end of data"},
		{`{"email":"a@b.c`, "unexpected end of data in a string"},
		{`{"email":"a\x@b.c"}`, `invalid escape 'x'`},
		{`["\u12g4"]`, `invalid \u escape`},
		{"[\"a\tb\"]", "control character 0x9"},
		{`[01]`, "offset 2: expected ',' or ']'"},
		{`[-]`, "invalid number"},
		{`[1.]`, "no digit after '.'"},
		{`[1e+]`, "no digit in the exponent"},
		{`[tru]`, "expected true"},
		{`{"email":nul}`, "expected null"},
		{strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2), "nested deeper than 1000"},
	} {
		_, _, err := maskEmails(nil, []byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "invalid JSON at offset ") {
			t.Errorf("%q: error %v, want one containing %q", c.in, err, c.want)
		}
	}
}

// Masking reuses the output buffer: no allocation per record once grown.
func TestMaskEmailsAllocations(t *testing.T) {
	m := &masker{}
	data := []byte(`{"id":1,"users":[{"email":"jane@example.com"},{"email":"joe@example.org"}],"msg":"hello"}`)
	m.handle(guest.Record{ID: "r", Data: data})
	if n := testing.AllocsPerRun(100, func() { m.handle(guest.Record{ID: "r", Data: data}) }); n != 0 {
		t.Errorf("%v allocations per record", n)
	}
}

// BenchmarkMaskEmails measures the masking itself in native code, to
// compare with BenchmarkGuestMaskEmail (through WebAssembly) in the parent
// directory.
func BenchmarkMaskEmails(b *testing.B) {
	head := `{"id":1,"customer_id":"c-0001","email":"user1@example.com","contacts":[{"name":"x","email":"friend1@example.org"}],"ts":1700000000,"msg":"`
	data := []byte(head + strings.Repeat("x", 1024-len(head)-2) + `"}`)
	m := &masker{}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if res := m.handle(guest.Record{ID: "r", Data: data}); res.Status != guest.Ok {
			b.Fatal(res.Error)
		}
	}
}
