package assemble

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/ingest/kinesis"
)

// TestDocsListEveryComponentKey keeps docs/configuration.md in step with
// the components: every destination, processor and source type has a
// section "destination type: NAME" / "processor type: NAME" / "source
// type: NAME" whose table lists exactly the top-level YAML keys of its
// options (the Kinesis source's fleet block has a section of its own).
func TestDocsListEveryComponentKey(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string][]string{}
	var heading string
	// A row's first cell names one key, or several sharing the row.
	row := regexp.MustCompile("^\\| (`[a-z0-9_]+`(?:, `[a-z0-9_]+`)*) \\|")
	name := regexp.MustCompile("`([a-z0-9_]+)`")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil {
			for _, k := range name.FindAllStringSubmatch(m[1], -1) {
				sections[heading] = append(sections[heading], k[1])
			}
		}
	}
	check := func(section string, options any) {
		want := yamlKeys(reflect.TypeOf(options)) // "type" is documented once, for all components
		got := sections[section]
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("docs/configuration.md section %q lists %v; the options have %v", section, got, want)
		}
	}
	for name, k := range destinationKinds() {
		check("destination type: "+name, k.options)
	}
	for name, k := range processorKinds() {
		check("processor type: "+name, k.options)
	}
	for name, k := range sourceKinds() {
		check("source type: "+name, k.options)
	}
	check("kinesis fleet", kinesis.FleetOptions{})
}

// yamlKeys returns the top-level YAML keys of an options struct, with the
// keys of its inline-embedded structs.
func yamlKeys(typ reflect.Type) []string {
	var keys []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct:
			keys = append(keys, yamlKeys(f.Type)...)
		case name != "" && name != "-":
			keys = append(keys, name)
		}
	}
	return keys
}
