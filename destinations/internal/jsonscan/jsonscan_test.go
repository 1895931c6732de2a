package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestValidAgreesWithEncodingJSON on hand-picked cases (the fuzz test in
// destinations/postgres covers the rest).
func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{}`, ` {"a":[1,2.5e-3,-0,true,false,null,"x\u00e9\n"]} `, `[]`, `"s"`, `0`, `-1.0E+2`,
		``, ` `, `{`, `{"a"}`, `{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `"\x"`, "\"\x01\"", `tru`, `{} {}`, `[1 2]`,
		`{"a":{"b":[{"c":[[]]}]}}`, `"\ud800"`, `nul`, `-`, `1e`,
	} {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%q) = %v, json.Valid = %v", s, got, want)
		}
	}
}

// TestControlOrHigh checks the word-at-a-time tests against the
// byte-by-byte ones on every byte value at every position (in the
// four-word rounds, the single words and the tail), and on random words.
func TestControlOrHigh(t *testing.T) {
	slow := func(b []byte) (ctrl, high bool) {
		for _, c := range b {
			ctrl = ctrl || c < 0x20
			high = high || c >= 0x80
		}
		return ctrl, high
	}
	check := func(b []byte) {
		c, h := controlOrHigh(b)
		if wc, wh := slow(b); c != wc || h != wh {
			t.Fatalf("controlOrHigh(%q) = %v, %v, want %v, %v", b, c, h, wc, wh)
		}
	}
	for _, base := range [][]byte{[]byte("abcdefghijk"), []byte(strings.Repeat("abcdefghij", 5))} {
		for pos := range len(base) {
			for c := range 256 {
				b := append([]byte(nil), base...)
				b[pos] = byte(c)
				check(b)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		check(binary.LittleEndian.AppendUint64(nil, r.Uint64()))
	}
}

// TestSpecial8 checks the word test and the position of its lowest flag
// against the byte-by-byte test, on every byte value at every position and
// on random words.
func TestSpecial8(t *testing.T) {
	first := func(b []byte) int {
		for i, c := range b {
			if c < 0x20 || c == '"' || c == '\\' {
				return i
			}
		}
		return -1
	}
	check := func(b []byte) {
		m := special8(binary.LittleEndian.Uint64(b))
		got := -1
		if m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if want := first(b); got != want {
			t.Fatalf("special8(%q): first special at %d, want %d", b, got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			check(b)
			b[7-pos/2] = '"'
			check(b)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		check(binary.LittleEndian.AppendUint64(nil, r.Uint64()))
	}
}

// TestValidLongStrings puts every special byte at every offset of a long
// string, so both the word and the byte loops meet it.
func TestValidLongStrings(t *testing.T) {
	for n := range 70 {
		for _, special := range []string{`"`, `\`, `\"`, `\n`, `\u00e9`, `\x`, "\x01", "\x1f", "\x7f", "é", "\xff"} {
			s := `{"k":"` + strings.Repeat("a", n) + special + strings.Repeat("b", 17) + `"}`
			if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
				t.Errorf("Valid(%q) = %v, json.Valid = %v", s, got, want)
			}
		}
	}
}

// FuzzValid compares Valid with encoding/json.Valid.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":"0123456789abcdef\"x"}`, `["\u1234abcdefghijklmnopqrstuvwxyz"]`, `{"a":[1,{"b":null}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		if got, want := Valid(d), json.Valid(d); got != want {
			t.Errorf("Valid(%q) = %v, json.Valid = %v", d, got, want)
		}
	})
}

// validLine is ValidLine's contract, from the standard library.
func validLine(d []byte) bool {
	return json.Valid(d) && utf8.Valid(d) && !bytes.ContainsAny(d, "\n\r")
}

// TestValidLine on hand-picked cases: line breaks as white space and
// inside strings, UTF-8 valid and not in strings, in the short and the long
// scans and split across words.
func TestValidLine(t *testing.T) {
	long := strings.Repeat("abcdefgh", 6)
	for _, s := range []string{
		`{"a":1}`, " {\"a\":1}\t", "{\"a\":1}\n", "\r{}", "{\"a\":\n1}", "[1,\r2]", `"é"`, `"日本語 ünïcödé"`,
		`{"a":"` + long + `é"}`, `{"a":"é` + long + `"}`, `{"a":"` + long + `\n` + long + `日"}`,
		"\"\xff\"", "\"abc\xc3\"", "\"" + long + "\xc3\xa9\xc3\"", "\"\xed\xa0\x80\"", "\"abcdefg\xc3\xa9hij\"",
		"\"" + long + "\xe6\x97\"", "{\"k\xff\":1}", "\xef\xbb\xbf{}", `{"a":"\u00e9"}`, "\"a\u2028b\"",
	} {
		if got, want := ValidLine([]byte(s)), validLine([]byte(s)); got != want {
			t.Errorf("ValidLine(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestPlain against the byte-by-byte test, on every byte value at every
// position of strings shorter and longer than a word.
func TestPlain(t *testing.T) {
	slow := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				return false
			}
		}
		return true
	}
	for _, base := range []string{"", "abc", "abcdefgh", "0123456789abcdef-0000000000000123"} {
		if !Plain(base) {
			t.Fatalf("Plain(%q) = false", base)
		}
		for pos := range len(base) {
			for c := range 256 {
				s := base[:pos] + string([]byte{byte(c)}) + base[pos+1:]
				if got, want := Plain(s), slow(s); got != want {
					t.Fatalf("Plain(%q) = %v, want %v", s, got, want)
				}
			}
		}
	}
}

// FuzzValidLine compares ValidLine with its contract.
func FuzzValidLine(f *testing.F) {
	for _, s := range []string{`{"a":"0123456789abcdef\"x"}`, "{\"a\":\"\xc3\xa9abcdefghijklmnopqrstuvwxyz\"}", "[1,\n2]", "\"abcdefghijklmnopqrst\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		if got, want := ValidLine(d), validLine(d); got != want {
			t.Errorf("ValidLine(%q) = %v, want %v", d, got, want)
		}
	})
}

// benchDoc is a 1 KiB clickstream document, the shape `sluice load
// --payload json` sends (a long note string ends it).
func benchDoc() []byte {
	head := `{"event_id":"evt-1-2-3","ts":"2026-11-25T09:00:00.000Z","user_id":1000000000,"country":"US","amount":161.92,"tags":["promo","mobile"],"device":{"os":"ios","version":"17.4"},"note":"`
	return []byte(head + strings.Repeat("abcdefghijklmnopqrstuvwxyz", (1024-len(head)-2)/26) + `"}`)
}

func BenchmarkValid(b *testing.B) {
	doc := benchDoc()
	b.SetBytes(int64(len(doc)))
	for range b.N {
		if !Valid(doc) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkValidLine beside the separate passes it replaces (what the
// elasticsearch destination did per document).
func BenchmarkValidLine(b *testing.B) {
	doc := benchDoc()
	b.Run("one-pass", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for range b.N {
			if !ValidLine(doc) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("four-passes", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for range b.N {
			if !utf8.Valid(doc) || bytes.IndexByte(doc, '\n') >= 0 || bytes.IndexByte(doc, '\r') >= 0 || !Valid(doc) {
				b.Fatal("invalid")
			}
		}
	})
}
