package file

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/filestore"
	"github.com/sluice-dev/sluice/pipeline"
)

func newDest(t testing.TB, opts Options, stream string) *object.Writer {
	t.Helper()
	cfg, err := Compile(opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	d, err := New(context.Background(), cfg, stream, pipeline.Deps{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// listFiles returns the raw content of every file under root, keyed by
// slash-separated key. It fails the test if a temporary file is visible.
func listFiles(t testing.TB, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file visible: %s", key)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[key] = data
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// readObjects returns the decoded content of every object under root
// outside the error prefix, keyed by slash-separated key.
func readObjects(t testing.TB, root, errPrefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for key, data := range listFiles(t, root) {
		if errPrefix == "" || !strings.HasPrefix(key, errPrefix) {
			out[key] = destinationtest.DecodeObject(t, key, data)
		}
	}
	return out
}

// store is the conformance harness's view of a file store under root.
func store(root string) destinationtest.ObjectStore {
	return destinationtest.ObjectStore{
		New: func(t *testing.T, o object.Options, stream string) *object.Writer {
			return newDest(t, Options{Path: root, Options: o}, stream)
		},
		List: func(t *testing.T) map[string][]byte { return listFiles(t, root) },
		Failures: []destinationtest.Failure{{
			Name: "directory-replaced-by-a-file",
			New: func(t *testing.T, stream string) (pipeline.Destination, func()) {
				dir := filepath.Join(t.TempDir(), "out")
				d := newDest(t, Options{Path: dir}, stream)
				return d, func() {
					if err := os.RemoveAll(dir); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			},
			Retryable: false, Code: filestore.CodeInvalidPath,
		}},
	}
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts object.Options
	}{
		{"uncompressed", object.Options{}},
		{"gzip", object.Options{Compression: "gzip", Prefix: "logs/"}},
		{"zstd", object.Options{Compression: "ZSTD", Prefix: "z/", MaxConcurrentObjects: 1}},
		{"newline", object.Options{AppendNewline: true, Prefix: "raw", Compression: "UNCOMPRESSED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			destinationtest.Run(t, destinationtest.ObjectHarness(store(t.TempDir()), tc.opts))
		})
	}
}

var keyRE = regexp.MustCompile(`^(.*?)(\d{4}/\d{2}/\d{2}/\d{2}/)([a-zA-Z0-9_.-]+)-1-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-([0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})(\.gz)?$`)

func TestObjectKeyLayout(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	// The oldest record is the second one; its time is given in another zone.
	recs := []pipeline.Record{
		{Data: []byte("b"), Arrived: time.Date(2019, 10, 1, 9, 30, 0, 0, time.UTC)},
		{Data: []byte("a"), Arrived: time.Date(2019, 10, 1, 10, 20, 18, 500e6, paris)},
	}
	b := pipeline.Batch{Stream: "s1", Records: recs, Bytes: 2, ID: pipeline.BatchID{First: 10, End: 90}}
	for _, tc := range []struct {
		prefix, comp, wantPrefix, wantExt string
	}{
		{"", "", "", ""},
		{"logs", "GZIP", "logs", ".gz"}, // no slash inserted, as in Firehose
		{"a/b/", "Gzip", "a/b/", ".gz"},
	} {
		root := t.TempDir()
		d := newDest(t, Options{Path: root, Options: object.Options{Prefix: tc.prefix, Compression: tc.comp}}, "s1")
		if err := d.Deliver(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		objs := readObjects(t, root, "")
		if len(objs) != 1 {
			t.Fatalf("prefix %q: %d objects, want 1: %v", tc.prefix, len(objs), objs)
		}
		for key, data := range objs {
			m := keyRE.FindStringSubmatch(key)
			if m == nil {
				t.Fatalf("key %q does not have Firehose's layout", key)
			}
			if m[1] != tc.wantPrefix || m[2] != "2019/10/01/09/" || m[3] != "s1" || m[4] != "2019-10-01-09-20-18" || m[6] != tc.wantExt {
				t.Errorf("key %q: prefix %q time path %q stream %q ts %q ext %q", key, m[1], m[2], m[3], m[4], m[6])
			}
			if keys := d.ObjectKeys(b); len(keys) != 1 || key != keys[0] {
				t.Errorf("stored under %q, ObjectKeys says %q", key, keys)
			}
			if string(data) != "ba" {
				t.Errorf("content %q, want %q", data, "ba")
			}
		}
	}
}

func TestObjectKeyIdentity(t *testing.T) {
	d := newDest(t, Options{Path: t.TempDir()}, "s")
	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	mk := func(first, end pipeline.Position) pipeline.Batch {
		return pipeline.Batch{Records: []pipeline.Record{{Arrived: at}}, ID: pipeline.BatchID{First: first, End: end}}
	}
	key := func(b pipeline.Batch) string { return d.ObjectKeys(b)[0] }
	if k1, k2 := key(mk(1, 2)), key(mk(1, 2)); k1 != k2 {
		t.Error("same identity gave different keys")
	}
	seen := map[string]bool{}
	for _, id := range [][2]pipeline.Position{{1, 2}, {1, 3}, {0, 2}, {2, 1}} {
		k := key(mk(id[0], id[1]))
		if seen[k] {
			t.Errorf("identity %v collides: %s", id, k)
		}
		seen[k] = true
	}
	other := newDest(t, Options{Path: t.TempDir()}, "t")
	if strings.TrimPrefix(other.ObjectKeys(mk(1, 2))[0], "2020/01/02/03/t") == strings.TrimPrefix(key(mk(1, 2)), "2020/01/02/03/s") {
		t.Error("two streams derive the same uuid for the same identity")
	}
}

func TestStaleTempFilesRemoved(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "2024", "01", "01", "00")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const u = "0a1b2c3d-0000-8000-8000-000000000000"
	ours := []string{
		".s-1-2024-01-01-00-00-00-" + u + ".123.tmp",
		".s-1-2024-01-01-00-00-00-" + u + ".gz.4567.tmp",
	}
	kept := []string{
		".s-x-1-2024-01-01-00-00-00-" + u + ".123.tmp", // stream "s-x"
		".hidden.tmp",
		"s-1-2024-01-01-00-00-00-" + u, // a real object
	}
	for _, n := range append(slices.Clone(ours), kept...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newDest(t, Options{Path: root}, "s")
	for _, n := range ours {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale temp %s still there (%v)", n, err)
		}
	}
	for _, n := range kept {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s removed: %v", n, err)
		}
	}
}

func TestPermanentFailureIsClassified(t *testing.T) {
	root := t.TempDir()
	// The prefix's first directory is a regular file: mkdir fails with
	// ENOTDIR whoever runs the test (root included).
	if err := os.WriteFile(filepath.Join(root, "blocked"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDest(t, Options{Path: root, Options: object.Options{Prefix: "blocked/"}}, "s")
	b := destinationtest.NewBatch("s", 0, time.Now(), []byte("r"))
	err := d.Deliver(context.Background(), b)
	if err == nil {
		t.Fatal("Deliver under a regular file succeeded")
	}
	if pipeline.IsRetryable(err) {
		t.Errorf("ENOTDIR classified retryable: %v", err)
	}
	var fe *filestore.Error
	if !errors.As(err, &fe) || fe.ErrorCode() != "File.InvalidPath" {
		t.Errorf("error %v: want *filestore.Error with code File.InvalidPath", err)
	}
	if got := readObjects(t, root, ""); len(got) != 1 { // only "blocked"
		t.Errorf("objects after failure: %v", got)
	}
}

func TestValidate(t *testing.T) {
	o := func(path string, oo object.Options) Options { return Options{Path: path, Options: oo} }
	good := []Options{
		o("out", object.Options{}),
		o("/abs", object.Options{Prefix: "logs", Compression: "gzip", ErrorOutputPrefix: "e/"}),
		o("x", object.Options{Compression: "Uncompressed", Prefix: "a/b/c/"}),
		o("x", object.Options{Compression: "ZSTD"}),
		o("x", object.Options{Compression: "HADOOP_SNAPPY", MaxConcurrentObjects: 8}),
	}
	for _, o := range good {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	bad := map[string]Options{
		"path":                {},
		"compression":         o("x", object.Options{Compression: "LZMA"}),
		"prefix":              o("x", object.Options{Prefix: "/abs"}),
		"..":                  o("x", object.Options{Prefix: "a/../b"}),
		"!{bogus:x}":          o("x", object.Options{Prefix: "!{bogus:x}"}),
		"error-output-type":   o("x", object.Options{Prefix: "!{timestamp:yyyy}/"}),
		"custom_time_zone":    o("x", object.Options{CustomTimeZone: "Mars/Base"}),
		"file_extension":      o("x", object.Options{FileExtension: "gz"}),
		"max_active":          o("x", object.Options{MaxActivePartitions: -1}),
		`".." path elements`:  o("x", object.Options{Prefix: "a/!{timestamp:'..'}/", ErrorOutputPrefix: "e/!{firehose:error-output-type}/"}),
		"error_output_prefix": o("x", object.Options{ErrorOutputPrefix: ".hidden/"}),
		"must differ":         o("x", object.Options{Prefix: "same/", ErrorOutputPrefix: "same/"}),
	}
	for want, o := range bad {
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want one mentioning %q", o, err, want)
		}
	}
	// All problems are reported at once, each keyed by its option.
	err := (Options{Options: object.Options{Compression: "lz4", Prefix: "/x"}}).Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want three joined errors, got %v", err)
	}
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var oe *pipeline.OptionError
		if !errors.As(e, &oe) {
			t.Fatalf("%v is not a *pipeline.OptionError", e)
		}
		keys = append(keys, oe.Key)
	}
	if slices.Sort(keys); !slices.Equal(keys, []string{"compression", "path", "prefix"}) {
		t.Errorf("option error keys %v, want compression, path, prefix", keys)
	}
	cfg, err := Compile(Options{Path: "relative"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), cfg, "s", pipeline.Deps{}); err == nil {
		t.Error("New accepted a relative path without a data directory")
	}
	if _, err := New(context.Background(), cfg, "bad/name", pipeline.Deps{DataDir: t.TempDir()}); err == nil {
		t.Error("New accepted stream name bad/name")
	}
	if d := DefaultOptions(); d.Compression != "UNCOMPRESSED" || d.ErrorOutputPrefix != "errors/" || d.AppendNewline || d.Prefix != "" {
		t.Errorf("DefaultOptions = %+v", d)
	}
}

// TestRelativePathResolvesAgainstDataDir: a relative path lands under
// deps.DataDir.
func TestRelativePathResolvesAgainstDataDir(t *testing.T) {
	dataDir := t.TempDir()
	cfg, err := Compile(Options{Path: "out/sub"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), cfg, "rel", pipeline.Deps{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	b := destinationtest.NewBatch("rel", 0, time.Now(), []byte("x"))
	if err := d.Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if objs := readObjects(t, filepath.Join(dataDir, "out", "sub"), ""); len(objs) != 1 {
		t.Errorf("objects under data_dir/out/sub: %v", objs)
	}
	if got := cfg.Where(dataDir); got != filepath.Join(dataDir, "out", "sub") {
		t.Errorf("Where = %q", got)
	}
}
