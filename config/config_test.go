package config

import (
	"errors"
	"flag"
	"github.com/sluice-dev/sluice/config/configtest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden from the current output")

// testEnv is the environment the testdata files are parsed with.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"SIZE":    "7",
		"EMPTY":   "",
		"NULLISH": "null",
		"YAMLISH": "a: [b]",
		// Read by the http_endpoint example of docs/configuration.md.
		"HTTP_ENDPOINT_ACCESS_KEY": "secret",
		"HTTP_ENDPOINT_URL":        "http://127.0.0.1:9/",
		// Read by the postgres example of docs/configuration.md.
		"PG_DSN": "postgres://loader@127.0.0.1:5432/shop",
		// Read by the elasticsearch example of docs/configuration.md.
		"ES_API_KEY": "c2VjcmV0",
		// Read by the auth example of docs/configuration.md.
		"SLUICE_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		// Read by the encryption example of docs/configuration.md.
		"SLUICE_ENCRYPTION_KEY": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	}[name]
	return v, ok
}

// TestBadGolden parses every testdata/bad/*.yaml and compares the error
// output with the .golden file next to it (go test -update rewrites them).
func TestBadGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d bad configs, want at least 10", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(file, data, testEnv)
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want Errors: %v", err, err)
			}
			got := err.Error() + "\n"
			configtest.Golden(t, file, got, *update)
		})
	}
}

// comparable strips the raw nodes, which are compared separately.
func strip(c *Config) *Config {
	out := *c
	out.Streams = append([]Stream(nil), c.Streams...)
	for i := range out.Streams {
		s := &out.Streams[i]
		s.Source.Node = nil
		s.Destination.Node = nil
		s.ErrorOutput.Node = nil
		s.Retry.Pos = Pos{} // checked in TestGood
		s.Processors = append([]Component(nil), s.Processors...)
		for j := range s.Processors {
			s.Processors[j].Node = nil
		}
	}
	return &out
}

func comp(file string, line, col int, typ, path string) Component {
	return Component{Type: typ, Pos: Pos{File: file, Line: line, Column: col}, Path: path}
}

func TestGood(t *testing.T) {
	defaults := func(file string, streams ...Stream) *Config {
		c := DefaultConfig
		c.File = file
		c.Streams = streams
		return &c
	}
	stream := func(name string, line, col int, edit func(*Stream)) Stream {
		s := DefaultStream
		s.Name = name
		s.Pos = Pos{File: "", Line: line, Column: col}
		s.Buffer = DefaultBuffer
		edit(&s)
		return s
	}
	const (
		minimal = "testdata/good/minimal.yaml"
		full    = "testdata/good/full.yaml"
		env     = "testdata/good/env.yaml"
		anchors = "testdata/good/anchors.yaml"
		empty   = "testdata/good/empty.yaml"
	)
	want := map[string]*Config{
		empty: defaults(empty),
		minimal: defaults(minimal, stream("s", 2, 3, func(s *Stream) {
			s.Pos.File = minimal
			s.Destination = comp(minimal, 4, 7, "file", "streams.s.destination")
		})),
		full: {
			File:            full,
			Audit:           DefaultAudit,
			Listen:          "0.0.0.0:8080",
			AdminListen:     "127.0.0.1:9090",
			DataDir:         "/var/lib/sluice",
			Region:          "eu-west-1",
			AccountID:       "012345678901",
			Log:             Log{Level: "debug", Format: "json"},
			ShutdownTimeout: 90 * time.Second,
			Buffer:          Buffer{Type: "disk", Durability: "os", MaxBytes: 2 * GiB, SegmentBytes: 16 * MiB, MinFreeBytes: 64 * MiB},
			Streams: []Stream{
				{
					Name: "orders", Pos: Pos{full, 16, 3}, Type: "DirectPut",
					Buffering:   Buffering{Size: 64, Interval: 300},
					Retry:       Retry{Duration: 0, Written: true},
					Buffer:      Buffer{Type: "disk", Durability: "os", MaxBytes: 100_000_000, SegmentBytes: 16 * MiB, MinFreeBytes: 64 * MiB},
					Tags:        map[string]string{"team": "payments", "cost center": "42"},
					Destination: comp(full, 28, 7, "file", "streams.orders.destination"),
					Processors: []Component{
						comp(full, 32, 9, "jq", "streams.orders.processors[0]"),
						comp(full, 34, 9, "append_delimiter", "streams.orders.processors[1]"),
					},
				},
				{
					Name: "clicks", Pos: Pos{full, 35, 3}, Type: "DirectPut",
					MaxInFlight: 1,
					Buffering:   Buffering{Size: 5, Interval: 0},
					Retry:       DefaultRetry,
					Buffer:      Buffer{Type: "memory", Durability: "memory", MaxBytes: 2 * GiB, SegmentBytes: 16 * MiB, MinFreeBytes: 64 * MiB},
					Destination: comp(full, 42, 7, "file", "streams.clicks.destination"),
					ErrorOutput: comp(full, 45, 7, "s3", "streams.clicks.error_output"),
				},
			},
		},
		env: func() *Config {
			c := defaults(env, stream("s", 6, 3, func(s *Stream) {
				s.Pos.File = env
				s.Buffering = Buffering{Size: 7, Interval: 7}
				s.Tags = map[string]string{"nullish": "null", "empty": ""}
				s.Destination = comp(env, 14, 7, "file", "streams.s.destination")
			}))
			c.Listen = "127.0.0.1:4573"
			c.DataDir = "/tmp/sluice"
			c.Region = "eu-central-1"
			return c
		}(),
		anchors: defaults(anchors,
			stream("a", 4, 3, func(s *Stream) {
				s.Pos.File = anchors
				s.Buffering = Buffering{Size: 1, Interval: 2}
				s.Destination = comp(anchors, 6, 18, "file", "streams.a.destination")
			}),
			stream("b", 9, 3, func(s *Stream) {
				s.Pos.File = anchors
				s.Buffering = Buffering{Size: 1, Interval: 10}
				s.Destination = comp(anchors, 6, 18, "file", "streams.b.destination")
			}),
			stream("c", 14, 3, func(s *Stream) {
				s.Pos.File = anchors
				s.Buffering = Buffering{Size: 64, Interval: 900}
				s.Destination = comp(anchors, 6, 18, "file", "streams.c.destination")
			})),
	}
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("found %d good configs, expectations for %d", len(files), len(want))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(file, data, testEnv)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			w, ok := want[file]
			if !ok {
				t.Fatalf("no expectation for %s", file)
			}
			if got := strip(c); !reflect.DeepEqual(got, w) {
				t.Errorf("got\n%+v\nwant\n%+v", *got, *w)
			}
			for _, s := range c.Streams {
				if s.Retry.Written == (s.Retry.Pos == s.Pos) {
					t.Errorf("stream %s: retry written %v, at %v (the stream at %v)", s.Name, s.Retry.Written, s.Retry.Pos, s.Pos)
				}
				if s.Destination.Node == nil || s.Destination.Node.Kind != yaml.MappingNode {
					t.Errorf("stream %s: destination node not kept", s.Name)
				}
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	data, err := os.ReadFile("testdata/good/env.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("env.yaml", data, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		Path    string `yaml:"path"`
		Prefix  string `yaml:"prefix"`
		YAMLish string `yaml:"yamlish"`
	}
	if err := c.Streams[0].Destination.Decode(&opts); err != nil {
		t.Fatal(err)
	}
	if opts.Path != "out-7" {
		t.Errorf("path = %q, want out-7", opts.Path)
	}
	if want := "${SIZE} and $$ and 7"; opts.Prefix != want {
		t.Errorf("prefix = %q, want %q ($${ is a literal ${)", opts.Prefix, want)
	}
	if want := "a: [b]"; opts.YAMLish != want {
		t.Errorf("yamlish = %q, want the variable's text %q, not YAML structure", opts.YAMLish, want)
	}
}

func TestEnvCases(t *testing.T) {
	env := func(name string) (string, bool) {
		v, ok := map[string]string{"A": "x", "E": "", "N": "12"}[name]
		return v, ok
	}
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "${A}", want: "x"},
		{in: "${A:-d}", want: "x"},
		{in: "${U:-d}", want: "d"},
		{in: "${E:-d}", want: "d"},
		{in: "${E}", want: ""},
		{in: "${U:-}", want: ""},
		{in: "pre-${A}-${N}-post", want: "pre-x-12-post"},
		{in: "$${A}", want: "${A}"},
		{in: "$$${A}", want: "$${A}"}, // "$", then the escape
		{in: "$A and $", want: "$A and $"},
		{in: "${U}", err: "t.yaml:1:7: v: environment variable U is not set (use ${U:-default} for a default)"},
		{in: "ab ${U}", err: "t.yaml:1:10: v: environment variable U is not set (use ${U:-default} for a default)"},
		{in: "${1X}", err: `t.yaml:1:7: v: invalid environment variable name "1X" in ${1X}`},
		{in: "${A", err: `t.yaml:1:7: v: unterminated ${ in value "${A" (write $${ for a literal ${)`},
	} {
		root := &yaml.Node{}
		// Quote so that YAML does not interpret the test input.
		src := "v:   " + "'" + strings.ReplaceAll(tc.in, "'", "''") + "'"
		if err := yaml.Unmarshal([]byte(src), root); err != nil {
			t.Fatal(err)
		}
		errs, _ := expandEnv("t.yaml", []byte(src), root, env)
		got := root.Content[0].Content[1].Value
		switch {
		case tc.err != "":
			if errs.Error() != tc.err {
				t.Errorf("%q: error %q, want %q", tc.in, errs.Error(), tc.err)
			}
		case len(errs) > 0:
			t.Errorf("%q: unexpected error %v", tc.in, errs)
		case got != tc.want:
			t.Errorf("%q expanded to %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	// Examples read their store's address and bucket from the environment,
	// as a user would set them.
	exampleEnv := func(name string) (string, bool) {
		switch name {
		case "S3_BUCKET":
			return "example-bucket", true
		case "HTTP_ENDPOINT_URL":
			return "http://127.0.0.1:8080/ingest", true
		case "HTTP_ENDPOINT_ACCESS_KEY":
			return "example-key", true
		case "PG_DSN", "REDSHIFT_DSN":
			return "postgres://loader@127.0.0.1:5432/analytics", true
		case "PG_TABLE", "REDSHIFT_TABLE":
			return "public.events", true
		case "REDSHIFT_IAM_ROLE":
			return "arn:aws:iam::123456789012:role/redshift", true
		case "ES_URL":
			return "http://127.0.0.1:9200", true
		case "ES_INDEX":
			return "firehose", true
		case "KINESIS_STREAM":
			return "clicks", true
		case "SLUICE_TLS_CERT", "SLUICE_TLS_KEY":
			return "/etc/sluice/tls/" + name, true
		case "SLUICE_ACCESS_KEY_ID":
			return "AKIAIOSFODNN7EXAMPLE", true
		case "SLUICE_SECRET_ACCESS_KEY":
			return "example-secret", true
		}
		return os.LookupEnv(name)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse(file, data, exampleEnv)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if len(c.Streams) == 0 {
			t.Errorf("%s: no streams", file)
		}
	}
}

func TestQuickstart(t *testing.T) {
	c, err := Load("../examples/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, ok := c.Stream("quickstart")
	if !ok {
		t.Fatal("no stream quickstart")
	}
	if c.Listen != "127.0.0.1:4573" || c.DataDir != "./data" {
		t.Errorf("listen %q data_dir %q", c.Listen, c.DataDir)
	}
	if s.Buffering != (Buffering{Size: 1, Interval: 2}) || s.Destination.Type != "file" {
		t.Errorf("stream = %+v", *s)
	}
	var opts struct {
		Path          string `yaml:"path"`
		AppendNewline bool   `yaml:"append_newline"`
	}
	if err := s.Destination.Decode(&opts); err != nil {
		t.Fatal(err)
	}
	if opts.Path != "quickstart" || !opts.AppendNewline {
		t.Errorf("destination options = %+v", opts)
	}
	if got, want := c.BufferDir("quickstart"), filepath.Join("data", "buffer", "quickstart"); got != want {
		t.Errorf("BufferDir = %q, want %q", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want one wrapping os.ErrNotExist", err)
	}
}

// TestDocsExamplesParse parses every complete YAML example in
// docs/configuration.md (fragments start with "destination:").
func TestDocsExamplesParse(t *testing.T) {
	data, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	parsed := 0
	for i, block := range strings.Split(string(data), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		lines := strings.Split(block, "\n")
		indent := len(lines[0]) - len(strings.TrimLeft(lines[0], " "))
		for j := range lines {
			lines[j] = strings.TrimPrefix(lines[j], strings.Repeat(" ", indent))
		}
		block = strings.Join(lines, "\n")
		if strings.HasPrefix(block, "destination:") {
			continue
		}
		if _, err := Parse("docs example "+strconv.Itoa(i+1), []byte(block), testEnv); err != nil {
			t.Errorf("%v", err)
		}
		parsed++
	}
	if parsed < 3 {
		t.Errorf("parsed %d examples, want at least 3", parsed)
	}
}

func TestMemoryLimit(t *testing.T) {
	c, err := Parse("m.yaml", []byte("memory_limit: 256MiB\n"), testEnv)
	if err != nil || c.MemoryLimit != 256*MiB {
		t.Fatalf("memory_limit 256MiB: %v, %v", c.MemoryLimit, err)
	}
	_, err = Parse("m.yaml", []byte("memory_limit: 1MiB\n"), testEnv)
	if err == nil || !strings.Contains(err.Error(), "m.yaml:1:15: memory_limit: must be at least 32MiB") {
		t.Fatalf("memory_limit 1MiB: %v", err)
	}
}
