package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type commonOpts struct {
	Timeout time.Duration `yaml:"timeout"`
}

type testOpts struct {
	commonOpts `yaml:",inline"`
	Path       string            `yaml:"path"`
	Count      int               `yaml:"count"`
	Ratio      float64           `yaml:"ratio"`
	Enabled    bool              `yaml:"enabled"`
	Limit      Size              `yaml:"limit"`
	Labels     map[string]string `yaml:"labels"`
	Hosts      []string          `yaml:"hosts"`
	Nested     *struct {
		Type string `yaml:"type"` // "type" is a normal key below the top level
	} `yaml:"nested"`
	Raw *yaml.Node `yaml:"raw"`
}

func parseNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

func TestDecodeNode(t *testing.T) {
	n := parseNode(t, `
type: thing
timeout: 2s
path: /x
count: 0x10
ratio: 1.5
enabled: true
limit: 10MiB
labels: {a: b}
hosts: [h1, h2]
nested: {type: inner}
raw: {anything: [goes]}
`)
	opts := testOpts{Count: 99, Path: "default"}
	if err := DecodeNode(n, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.Timeout != 2*time.Second || opts.Path != "/x" || opts.Count != 16 || opts.Ratio != 1.5 ||
		!opts.Enabled || opts.Limit != 10*MiB || !reflect.DeepEqual(opts.Labels, map[string]string{"a": "b"}) ||
		!reflect.DeepEqual(opts.Hosts, []string{"h1", "h2"}) || opts.Nested == nil || opts.Nested.Type != "inner" ||
		opts.Raw == nil || opts.Raw.Kind != yaml.MappingNode {
		t.Errorf("decoded %+v", opts)
	}
}

func TestDecodeNodeKeepsDefaults(t *testing.T) {
	opts := testOpts{Count: 99, Path: "default"}
	if err := DecodeNode(parseNode(t, "path:\nenabled: true\n"), &opts); err != nil {
		t.Fatal(err)
	}
	if opts.Count != 99 || opts.Path != "default" || !opts.Enabled {
		t.Errorf("decoded %+v, want defaults kept for absent and null keys", opts)
	}
}

func TestDecodeNodeErrors(t *testing.T) {
	n := parseNode(t, `type: thing
pth: /x
count: many
enabled: yes
limit: 10 furlongs
nested: {type: a, extra: 1}
hosts: h1
timeout: 5
count: 3
`)
	var opts testOpts
	err := DecodeNode(n, &opts)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %T %v, want Errors", err, err)
	}
	want := strings.Join([]string{
		`2:1: unknown key "pth" (did you mean "path"?)`,
		`3:8: count: expected an integer, got string "many"`,
		`4:10: enabled: expected true or false, got string "yes"`,
		`5:8: limit: invalid size "10 furlongs": unknown unit "furlongs" (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)`,
		`6:19: nested: unknown key "extra"`,
		`7:8: hosts: expected a list, got string "h1"`,
		`8:10: timeout: duration 5 needs a unit, e.g. "5s"`,
		`9:1: duplicate key "count" (first at line 3)`,
	}, "\n")
	if err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

func TestComponentDecodeNamesFileAndPath(t *testing.T) {
	c, err := Parse("c.yaml", []byte("streams:\n  s:\n    destination:\n      type: file\n      bogus: 1\n"), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		Path string `yaml:"path"`
	}
	err = c.Streams[0].Destination.Decode(&opts)
	if want := `c.yaml:5:7: streams.s.destination: unknown key "bogus"`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	if got := c.Streams[0].Destination.KeyErrorf("type", "no such type").Error(); got != "c.yaml:4:13: streams.s.destination.type: no such type" {
		t.Errorf("KeyErrorf = %s", got)
	}
}

func TestDecodeNodeNeedsPointer(t *testing.T) {
	var opts testOpts
	if err := DecodeNode(parseNode(t, "path: x"), opts); err == nil {
		t.Error("decoding into a non-pointer succeeded")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"0": 0, "1048576": MiB, "64MiB": 64 * MiB, "1 GiB": GiB, "1gib": GiB, "10KB": 10_000,
		"2 TB": 2e12, "3TiB": 3 * TiB, "5B": 5, "1_024KiB": MiB,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5GiB", "-1", "1 GiBs", "99999999999TiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	if s := (64 * MiB).String(); s != "64MiB" {
		t.Errorf("String = %s", s)
	}
}

func TestErrorsSortedAndRendered(t *testing.T) {
	es := Errors{
		{File: "b", Line: 1, Column: 1, Msg: "z"},
		{File: "a", Line: 2, Column: 1, Msg: "y"},
		{File: "a", Line: 1, Column: 5, Msg: "x"},
		{Msg: "no position"},
	}
	want := "no position\na:1:5: x\na:2:1: y\nb:1:1: z"
	if got := es.Err().Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if (Errors{}).Err() != nil {
		t.Error("empty Errors.Err() is not nil")
	}
}

// yamlKeys lists the yaml keys of a struct type.
func yamlKeys(t reflect.Type) []string {
	_, names := fieldsOf(t)
	return names
}

// TestDocsListEveryKey keeps docs/configuration.md in sync with the code:
// each block's section has a table row for every key of its struct, and no
// row for a key the struct does not have.
func TestDocsListEveryKey(t *testing.T) {
	data, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string][]string{} // heading → keys of its table rows
	var heading string
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil {
			sections[heading] = append(sections[heading], m[1])
		}
	}
	top := append(yamlKeys(reflect.TypeFor[Config]()), "streams")
	for heading, keys := range map[string][]string{
		"Top level":       top,
		"log":             yamlKeys(reflect.TypeFor[Log]()),
		"buffer":          yamlKeys(reflect.TypeFor[Buffer]()),
		"streams":         yamlKeys(reflect.TypeFor[Stream]()),
		"buffering":       yamlKeys(reflect.TypeFor[Buffering]()),
		"retry":           yamlKeys(reflect.TypeFor[Retry]()),
		"auth":            yamlKeys(reflect.TypeFor[Auth]()),
		"auth keys":       yamlKeys(reflect.TypeFor[AccessKey]()),
		"auth allow":      yamlKeys(reflect.TypeFor[Grant]()),
		"tls":             yamlKeys(reflect.TypeFor[TLS]()),
		"quota":           yamlKeys(reflect.TypeFor[Quota]()),
		"audit":           yamlKeys(reflect.TypeFor[Audit]()),
		"encryption":      yamlKeys(reflect.TypeFor[Encryption]()),
		"encryption keys": yamlKeys(reflect.TypeFor[EncryptionKey]()),
	} {
		got := sections[heading]
		if !sameSet(got, keys) {
			t.Errorf("docs/configuration.md section %q documents %v; the code has %v", heading, got, keys)
		}
	}
	// Component sections (destination type: …, processor type: …) are
	// checked against the components' option structs in pipeline/assemble.
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}

// hexByte is a component-defined scalar type decoded through
// encoding.TextUnmarshaler.
type hexByte byte

func (h *hexByte) UnmarshalText(b []byte) error {
	var v byte
	if _, err := fmt.Sscanf(string(b), "0x%02x", &v); err != nil {
		return fmt.Errorf("want 0xNN, got %q", b)
	}
	*h = hexByte(v)
	return nil
}

func TestDecodeNodeTextUnmarshaler(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("a: 0x2a\nb: nope\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var out struct {
		A hexByte `yaml:"a"`
		B hexByte `yaml:"b"`
	}
	err := DecodeNode(doc.Content[0], &out)
	if out.A != 0x2a {
		t.Errorf("a = %#x, want 0x2a", out.A)
	}
	if err == nil || !strings.Contains(err.Error(), "2:4") || !strings.Contains(err.Error(), `want 0xNN, got "nope"`) {
		t.Errorf("want a positioned error for b, got %v", err)
	}
}
