// Package configtest holds what tests of configuration errors share: the
// comparison of an error listing with its golden file.
package configtest

import (
	"os"
	"strings"
	"testing"
)

// Golden compares got with the .golden file beside yamlFile (foo.yaml →
// foo.golden), or rewrites that file when update is set (go test -update).
func Golden(t testing.TB, yamlFile, got string, update bool) {
	t.Helper()
	golden := strings.TrimSuffix(yamlFile, ".yaml") + ".golden"
	if update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("errors differ from %s\n--- got:\n%s--- want:\n%s", golden, got, want)
	}
}
