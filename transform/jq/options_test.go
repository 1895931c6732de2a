package jq

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/transform/transformtest"
)

func TestDefaultOptions(t *testing.T) {
	o := DefaultOptions()
	if o.JSONParsingEngine != "JQ-1.6" || o.RecordTimeout != time.Second || o.Query != "" {
		t.Errorf("DefaultOptions = %+v", o)
	}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "query: required") {
		t.Errorf("empty query: %v", err)
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, q := range []string{
		`{customer_id: .customer_id, year: .ts | strftime("%Y")}`,
		`{"customer_id":.customer_id,"device":.type.device,"year":.event_timestamp|strftime("%Y")}`,
		`{a: (if .x then "y" else "n" end)}`,
		`{a: (.x + 1), b: -.y, c: .z?, d: [.w] | length, e: "\(.v)"}`,
		`{a}`,
		`def f: .x; {a: f}`,
		"{\n  a: .a,\n  b: .b\n}",
	} {
		o := DefaultOptions()
		o.Query = q
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%q): %v", q, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name, query string
		want        []string
	}{
		{"syntax error with position", "{a: .a,\n b: .b |}", []string{"query: syntax error at line 2, column"}},
		{"not an object", `.customer_id`, []string{"not a jq object construction"}},
		{"pipe after object", `{a: .a} | .a`, []string{"not a jq object construction"}},
		{"suffix after object", `{a: .a}.a`, []string{"not a jq object construction"}},
		{"empty object", `{}`, []string{"at least one partition key"}},
		{"input is not available", `{a: input}`, []string{"compile", "input"}},
		{"computed key", `{(.k): .v}`, []string{"key 1 ((.k): .v): partition key names must be literal"}},
		{"interpolated key", `{"\(.k)": .v}`, []string{"must be literal"}},
		{"duplicate key", `{a: .a, a: .b}`, []string{`key "a" appears more than once`}},
		{"brace in key", `{"a}": .a}`, []string{`cannot contain '{' or '}'`}},
		{"empty key", `{"": .a}`, []string{"name is empty"}},
		{"jq 1.7 if as value", `{a: if .x then 1 else 2 end}`, []string{`key "a": jq 1.6 only accepts terms`}},
		{"jq 1.7 arithmetic as value", `{a: .x + 1}`, []string{`write (.x + 1) in parentheses`}},
		{"jq 1.7 try as value", `{a: try .x}`, []string{"jq 1.6"}},
		{"jq 1.7 reduce as value", `{a: reduce .[] as $x (0; . + $x)}`, []string{"jq 1.6"}},
		{"unknown function", `{a: .x | nosuchfn}`, []string{"compile", "nosuchfn"}},
		{"debug is not available", `{a: debug}`, []string{"compile", "debug"}},
		{"undefined variable", `{a: $nope}`, []string{"compile", "$nope"}},
		{"import", `import "m" as m; {a: .a}`, []string{"modules"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			o.Query = tt.query
			err := o.Validate()
			if err == nil {
				t.Fatalf("Validate(%q) = nil", tt.query)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if keys, other := transformtest.OptionKeys(err); len(keys) == 0 || len(other) > 0 || keys[0] != "query" {
				t.Errorf("option keys %q, other errors %v: want every problem at query", keys, other)
			}
			if _, cerr := o.Compile(); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Compile: %v, want what Validate reports", cerr)
			}
		})
	}
}

func TestValidateReportsEverythingAtOnce(t *testing.T) {
	o := Options{
		Query:             `{(.k): .v, a: .a + 1, a: .b}`,
		JSONParsingEngine: "JQ-1.7",
		RecordTimeout:     -time.Second,
	}
	err := o.Validate()
	if err == nil {
		t.Fatal("Validate = nil")
	}
	keys, other := transformtest.OptionKeys(err)
	if want := []string{"json_parsing_engine", "record_timeout", "query", "query", "query"}; !slices.Equal(keys, want) || len(other) > 0 {
		t.Errorf("option keys %q, other errors %v, want keys %q", keys, other, want)
	}
	for _, w := range []string{
		`json_parsing_engine: "JQ-1.7" is not supported`,
		"record_timeout: -1s is negative",
		"must be literal",
		`key "a": jq 1.6`,
		`key "a" appears more than once`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}

func TestKeyLimit(t *testing.T) {
	build := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("k%d: .k%d", i, i)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	o := DefaultOptions()
	o.Query = build(MaxKeys)
	if err := o.Validate(); err != nil {
		t.Errorf("%d keys: %v", MaxKeys, err)
	}
	o.Query = build(MaxKeys + 1)
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "51 keys: at most 50") {
		t.Errorf("%d keys: %v", MaxKeys+1, err)
	}
}
