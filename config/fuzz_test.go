package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/config"
)

// fuzzEnv is a fixed environment: the variables the examples and the
// testdata read (so that they parse as they do in the other tests), and
// nothing else, so that ${UNSET} errors are exercised too.
func fuzzEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"SIZE":                     "7",
		"EMPTY":                    "",
		"NULLISH":                  "null",
		"YAMLISH":                  "a: [b]",
		"S3_BUCKET":                "example-bucket",
		"HTTP_ENDPOINT_URL":        "http://127.0.0.1:8080/ingest",
		"HTTP_ENDPOINT_ACCESS_KEY": "example-key",
		"PG_DSN":                   "postgres://loader@127.0.0.1:5432/analytics",
		"REDSHIFT_DSN":             "postgres://loader@127.0.0.1:5439/dev",
		"PG_TABLE":                 "public.events",
		"REDSHIFT_TABLE":           "public.events",
		"REDSHIFT_IAM_ROLE":        "arn:aws:iam::123456789012:role/redshift",
		"ES_URL":                   "http://127.0.0.1:9200",
		"ES_INDEX":                 "firehose",
		"ES_API_KEY":               "c2VjcmV0",
		"KINESIS_STREAM":           "clicks",
		"KINESIS_FLEET_DSN":        "postgres://loader@127.0.0.1:5432/fleet",
		"SLUICE_TEST_HOME":         "/home/sluice",
	}[name]
	return v, ok
}

// streamNameRE is the rule Parse enforces on stream names (1 to 64
// characters of a-z, A-Z, 0-9, '_', '.' and '-').
var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// FuzzParse feeds arbitrary YAML to Parse: no panic; a *Config or an
// error, never neither; an error is a config.Errors whose every entry
// names the file and says something; a configuration that parses has
// unique, well-formed stream names and parses again from the same bytes
// to the same streams in the same order, with the same errors (Parse is
// deterministic, whatever map iteration order does).
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, glob := range []string{"../examples/*.yaml", "testdata/bad/*.yaml", "testdata/good/*.yaml"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, files...)
	}
	if len(seeds) == 0 {
		f.Fatal("no seed files found")
	}
	for _, file := range seeds {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "~", "null", "[]", "x", "streams:", "streams: []", "streams: {}",
		"x-a: &a {type: memory}\nstreams:\n  s:\n    destination: *a\n",
		"streams:\n  s:\n    destination: {type: memory}\n    buffering: {size: ${SIZE}}\n",
		"streams:\n  s: &s {destination: {type: memory}}\n  t: *s\n",
		"a: &a [*a]", "<<: {listen: x}", "streams: !!binary aGk=",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		c, err := config.Parse(name, data, fuzzEnv)
		if c == nil && err == nil {
			t.Fatal("neither a Config nor an error")
		}
		if err != nil {
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not config.Errors: %v", err, err)
			}
			if len(es) == 0 {
				t.Fatal("empty config.Errors returned as an error")
			}
			for i, e := range es {
				if e.File == "" || e.Msg == "" {
					t.Fatalf("error %d has no file or no message: %#v", i, e)
				}
			}
		} else {
			if c.File != name {
				t.Fatalf("Config.File = %q, want %q", c.File, name)
			}
			seen := map[string]bool{}
			for _, s := range c.Streams {
				if !streamNameRE.MatchString(s.Name) {
					t.Fatalf("accepted stream name %q", s.Name)
				}
				if seen[s.Name] {
					t.Fatalf("stream %q twice", s.Name)
				}
				seen[s.Name] = true
			}
		}

		again, err2 := config.Parse(name, data, fuzzEnv)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("parsing twice:\n%v\nthen:\n%v", err, err2)
		}
		if (c == nil) != (again == nil) {
			t.Fatalf("parsing twice: config %v then %v", c != nil, again != nil)
		}
		if c != nil && !slices.Equal(streamNames(c), streamNames(again)) {
			t.Fatalf("parsing twice: streams %q then %q", streamNames(c), streamNames(again))
		}
	})
}

func streamNames(c *config.Config) []string {
	names := make([]string, len(c.Streams))
	for i, s := range c.Streams {
		names[i] = s.Name
	}
	return names
}
