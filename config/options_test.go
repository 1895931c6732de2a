package config

import (
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/config/configtest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pipeline"
)

// thingOptions is a test-only component whose validate reports problems in
// the shapes components use (pipeline.OptionError, joins, wrappers, plain
// errors, config errors), chosen by its options.
type thingOptions struct {
	Path    string   `yaml:"path"`
	Count   int      `yaml:"count"`
	Require []string `yaml:"require"`
	Format  struct {
		Parquet struct {
			Columns []struct {
				Name string `yaml:"name"`
				Type string `yaml:"type"`
			} `yaml:"columns"`
			NeedsCompression bool   `yaml:"needs_compression"`
			Compression      string `yaml:"compression"`
		} `yaml:"parquet"`
	} `yaml:"format"`
	Nest       bool   `yaml:"nest"`
	Plain      string `yaml:"plain"`
	Wrap       bool   `yaml:"wrap"`
	Positioned bool   `yaml:"positioned"`
}

func (o *thingOptions) validate(c Component) error {
	var errs []error
	if o.Path == "" {
		errs = append(errs, pipeline.OptionErrorf("path", "must not be empty"))
	}
	if o.Count < 0 || o.Count > 10 && !o.Wrap {
		errs = append(errs, pipeline.OptionErrorf("count", "must be between 0 and 10, got %d", o.Count))
	}
	for _, k := range o.Require {
		errs = append(errs, pipeline.OptionErrorf(k, "is required"))
	}
	var cols []error
	for i, col := range o.Format.Parquet.Columns {
		if col.Type != "int" && col.Type != "float" && !o.Nest {
			cols = append(cols, pipeline.OptionErrorf(fmt.Sprintf("format.parquet.columns[%d].type", i), "unknown type %q", col.Type))
		}
	}
	errs = append(errs, errors.Join(cols...)) // a nested join
	p := o.Format.Parquet
	if p.NeedsCompression && p.Compression == "" {
		errs = append(errs, pipeline.OptionErrorf("format.parquet.compression", "is required with needs_compression"))
	}
	if o.Nest {
		// An option error holding option errors with keys relative to it.
		errs = append(errs, &pipeline.OptionError{Key: "format.parquet", Err: errors.Join(
			pipeline.OptionErrorf("columns[0].type", "unknown type %q", p.Columns[0].Type),
			errors.New("parquet is not available here"),
		)})
	}
	if o.Plain != "" {
		errs = append(errs, errors.New(o.Plain),
			fmt.Errorf("%w, and %w", pipeline.OptionErrorf("plain", "is alarming"), errors.New("a second plain problem")))
	}
	if o.Wrap {
		errs = append(errs, fmt.Errorf("checking limits: %w", errors.Join(
			pipeline.OptionErrorf("count", "must be at most 10, got %d", o.Count),
			pipeline.OptionErrorf("format", "is required with wrap"))))
	}
	if o.Positioned {
		errs = append(errs, c.KeyErrorf("positioned", "is a config.Error"), Errors{c.Errorf("is a config.Errors")})
	}
	return errors.Join(errs...)
}

// TestOptionErrorsGolden loads every testdata/options/*.yaml, decodes each
// thing component (destinations and processors), validates it, and
// compares what OptionErrors reports with the .golden file next to it (go
// test -update rewrites them).
func TestOptionErrorsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/options/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d option configs, want at least 3", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			c, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var all Errors
			for _, s := range c.Streams {
				for _, comp := range append(s.Processors, s.Destination) {
					var o thingOptions
					err := comp.Decode(&o)
					if err == nil {
						err = o.validate(comp)
					}
					es := comp.OptionErrors(err)
					if err != nil && len(es) == 0 {
						t.Errorf("%s: %v gave no Errors", comp.Path, err)
					}
					all = append(all, es...)
				}
			}
			got := all.Error() + "\n"
			if strings.Count(got, file+":") != len(all) || strings.Contains(got, ": "+file) {
				t.Errorf("an error lost or doubled its position:\n%s", got)
			}
			configtest.Golden(t, file, got, *update)
		})
	}
}

func TestOptionErrorsNil(t *testing.T) {
	var c Component
	if es := c.OptionErrors(nil); es != nil {
		t.Errorf("OptionErrors(nil) = %v, want nil", es)
	}
	if es := c.OptionErrors(errors.Join(nil, nil)); es != nil {
		t.Errorf("OptionErrors(empty join) = %v, want nil", es)
	}
}

func TestKeySteps(t *testing.T) {
	for key, want := range map[string]string{
		"a":                              "a",
		"format.parquet.columns[2].type": "format parquet columns [2] type",
		"m[1][0].x":                      "m [1] [0] x",
		"bad[x].y":                       "bad",
		"":                               "",
	} {
		var parts []string
		for _, s := range keySteps(key) {
			if s.index >= 0 {
				parts = append(parts, fmt.Sprintf("[%d]", s.index))
			} else {
				parts = append(parts, s.name)
			}
		}
		if got := strings.Join(parts, " "); got != want {
			t.Errorf("keySteps(%q) = %q, want %q", key, got, want)
		}
	}
}
