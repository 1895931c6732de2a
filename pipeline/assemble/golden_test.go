package assemble

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/config/configtest"
)

var update = flag.Bool("update", false, "rewrite the .golden files")

// TestComponentErrorsGolden checks every testdata/bad/*.yaml and compares
// the errors with the .golden file next to it (go test -update rewrites
// them): each problem once, at the line and column of its key.
func TestComponentErrorsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d bad configs, want at least 5", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(file, data, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("the file itself must parse: %v", err)
			}
			err = Check(cfg)
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("Check returned %T, want config.Errors: %v", err, err)
			}
			got := err.Error() + "\n"
			configtest.Golden(t, file, got, *update)
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if strings.Count(line, file+":") != 1 {
					t.Errorf("not one position in %q", line)
				}
			}
		})
	}
}
