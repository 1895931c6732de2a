package jsonscan

import (
	"encoding/json"
	"testing"
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

func BenchmarkValid(b *testing.B) {
	doc := []byte(`{"event_id":"evt-1-2-3","ts":"2026-11-25T09:00:00.000Z","user_id":1000000000,"country":"US","amount":161.92,"tags":["promo","mobile"],"device":{"os":"ios","version":"17.4"},"note":"` + string(make([]byte, 0)) + `abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"}`)
	b.SetBytes(int64(len(doc)))
	for range b.N {
		if !Valid(doc) {
			b.Fatal("invalid")
		}
	}
}
