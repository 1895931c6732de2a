package file

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/pipeline"
)

func newDest(t testing.TB, opts Options, stream string) *Destination {
	t.Helper()
	d, err := New(opts, stream, pipeline.Deps{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// readObjects returns the decoded content of every object under root
// outside the error prefix, keyed by slash-separated key. It fails the
// test if a temporary file is visible.
func readObjects(t testing.TB, root, errPrefix string) map[string][]byte {
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
		if errPrefix != "" && strings.HasPrefix(key, errPrefix) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(key, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: not gzip: %v", key, err)
			}
			data, err = io.ReadAll(zr)
			if err != nil {
				t.Fatalf("%s: bad gzip: %v", key, err)
			}
		}
		out[key] = data
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"uncompressed", Options{}},
		{"gzip", Options{Compression: "gzip", Prefix: "logs/"}},
		{"newline", Options{AppendNewline: true, Prefix: "raw", Compression: "UNCOMPRESSED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			opts := tc.opts
			opts.Path = root
			h := destinationtest.Harness{
				New: func(t *testing.T, stream string) pipeline.Destination { return newDest(t, opts, stream) },
				Read: func(t *testing.T, stream string) [][]byte {
					var units [][]byte
					for key, data := range readObjects(t, root, DefaultErrorOutputPrefix) {
						if strings.Contains(key, "/"+stream+"-1-") {
							units = append(units, data)
						}
					}
					return units
				},
			}
			if opts.AppendNewline {
				h.Expect = func(b pipeline.Batch) [][]byte {
					var buf bytes.Buffer
					for _, r := range b.Records {
						buf.Write(r.Data)
						buf.WriteByte('\n')
					}
					return [][]byte{buf.Bytes()}
				}
			}
			destinationtest.Run(t, h)
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
		d := newDest(t, Options{Path: root, Prefix: tc.prefix, Compression: tc.comp}, "s1")
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

func TestDeadLetters(t *testing.T) {
	root := t.TempDir()
	d := newDest(t, Options{Path: root, Compression: "GZIP", ErrorOutputPrefix: "failed/"}, "dl")
	now := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	d.now = func() time.Time { return now }
	old := time.Date(2024, 5, 6, 6, 59, 59, 999e6, time.UTC)
	dls := []pipeline.DeadLetter{
		{Record: pipeline.Record{Data: []byte("hello\n\"x\"<>"), Arrived: old.Add(time.Second)}, Attempts: 3, Code: "File.InvalidPath", Message: "not a directory", OutputType: "delivery-failed"},
		{Record: pipeline.Record{Data: []byte{}, Arrived: old}, Attempts: 1, Code: "Lambda.ProcessingFailedStatus", Message: "bad", OutputType: "processing-failed"},
		{Record: pipeline.Record{Data: []byte{0xff, 0}, Arrived: old.Add(2 * time.Second)}, Attempts: 3, Code: "File.InvalidPath", Message: "m"},
	}
	id := pipeline.BatchID{First: 5, End: 77}
	if err := d.WriteDeadLetters(context.Background(), id, "dl", dls); err != nil {
		t.Fatal(err)
	}
	// Writing the same batch's dead letters again replaces them.
	if err := d.WriteDeadLetters(context.Background(), id, "dl", dls); err != nil {
		t.Fatal(err)
	}
	objs := readObjects(t, root, "")
	if len(objs) != 2 {
		t.Fatalf("%d objects, want 2 (one per output type): %v", len(objs), slices.Collect(mapsKeys(objs)))
	}
	want := map[string]string{
		"failed/delivery-failed/2024/05/06/07/": `{"attemptsMade":3,"arrivalTimestamp":1714978800999,"errorCode":"File.InvalidPath","errorMessage":"not a directory","attemptEndingTimestamp":1714979289123,"rawData":"aGVsbG8KIngiPD4="}` + "\n" +
			`{"attemptsMade":3,"arrivalTimestamp":1714978801999,"errorCode":"File.InvalidPath","errorMessage":"m","attemptEndingTimestamp":1714979289123,"rawData":"/wA="}` + "\n",
		"failed/processing-failed/2024/05/06/06/": `{"attemptsMade":1,"arrivalTimestamp":1714978799999,"errorCode":"Lambda.ProcessingFailedStatus","errorMessage":"bad","attemptEndingTimestamp":1714979289123,"rawData":""}` + "\n",
	}
	for key, data := range objs {
		m := keyRE.FindStringSubmatch(key)
		if m == nil || m[6] != "" {
			t.Fatalf("dead-letter key %q does not have the layout (uncompressed)", key)
		}
		w, ok := want[m[1]+m[2]]
		if !ok {
			t.Fatalf("unexpected dead-letter object %q", key)
		}
		if string(data) != w {
			t.Errorf("%s:\n got %s\nwant %s", key, data, w)
		}
		for line := range strings.Lines(string(data)) {
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil || len(v) != 6 {
				t.Errorf("line %q: %v (fields %d)", line, err, len(v))
			}
		}
	}
	if err := d.WriteDeadLetters(context.Background(), id, "dl", []pipeline.DeadLetter{{OutputType: "../x"}}); err == nil {
		t.Error("output type ../x accepted")
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
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
	d := newDest(t, Options{Path: root, Prefix: "blocked/"}, "s")
	b := destinationtest.NewBatch("s", 0, time.Now(), []byte("r"))
	err := d.Deliver(context.Background(), b)
	if err == nil {
		t.Fatal("Deliver under a regular file succeeded")
	}
	if pipeline.IsRetryable(err) {
		t.Errorf("ENOTDIR classified retryable: %v", err)
	}
	var fe *Error
	if !errors.As(err, &fe) || fe.ErrorCode() != "File.InvalidPath" {
		t.Errorf("error %v: want *file.Error with code File.InvalidPath", err)
	}
	if got := readObjects(t, root, ""); len(got) != 1 { // only "blocked"
		t.Errorf("objects after failure: %v", got)
	}
}

func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err       error
		code      string
		retryable bool
	}{
		{&fs.PathError{Op: "write", Path: "p", Err: syscall.ENOSPC}, "File.NoSpace", true},
		{&fs.PathError{Op: "write", Path: "p", Err: syscall.EIO}, "File.IOError", true},
		{&fs.PathError{Op: "mkdir", Path: "p", Err: errNotDir}, "File.InvalidPath", false},
		{&fs.PathError{Op: "open", Path: "p", Err: fs.ErrPermission}, "File.AccessDenied", false},
		{errors.New("something else"), "File.WriteFailed", true},
	} {
		err := classify("op", "p", tc.err)
		var fe *Error
		if !errors.As(err, &fe) || fe.Code != tc.code || pipeline.IsRetryable(err) != tc.retryable {
			t.Errorf("classify(%v) = %v, want code %s retryable %v", tc.err, err, tc.code, tc.retryable)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("classify(%v) lost the cause", tc.err)
		}
	}
}

func TestValidate(t *testing.T) {
	good := []Options{
		{Path: "out"},
		{Path: "/abs", Prefix: "logs", Compression: "gzip", ErrorOutputPrefix: "e/"},
		{Path: "x", Compression: "Uncompressed", Prefix: "a/b/c/"},
	}
	for _, o := range good {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	bad := map[string]Options{
		"path":                {},
		"compression":         {Path: "x", Compression: "ZIP"},
		"prefix":              {Path: "x", Prefix: "/abs"},
		"..":                  {Path: "x", Prefix: "a/../b"},
		"!{bogus:x}":          {Path: "x", Prefix: "!{bogus:x}"},
		"error-output-type":   {Path: "x", Prefix: "!{timestamp:yyyy}/"},
		"custom_time_zone":    {Path: "x", CustomTimeZone: "Mars/Base"},
		"file_extension":      {Path: "x", FileExtension: "gz"},
		"max_active":          {Path: "x", MaxActivePartitions: -1},
		`".." path elements`:  {Path: "x", Prefix: "a/!{timestamp:'..'}/", ErrorOutputPrefix: "e/!{firehose:error-output-type}/"},
		"error_output_prefix": {Path: "x", ErrorOutputPrefix: ".hidden/"},
		"must differ":         {Path: "x", Prefix: "same/", ErrorOutputPrefix: "same/"},
	}
	for want, o := range bad {
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want one mentioning %q", o, err, want)
		}
	}
	// All problems are reported at once.
	if err := (Options{Compression: "lz4", Prefix: "/x"}).Validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want three joined errors, got %v", err)
	}
	if _, err := New(Options{Path: "relative"}, "s", pipeline.Deps{}); err == nil {
		t.Error("New accepted a relative path")
	}
	if _, err := New(Options{Path: t.TempDir()}, "bad/name", pipeline.Deps{}); err == nil {
		t.Error("New accepted stream name bad/name")
	}
	if d := DefaultOptions(); d.Compression != CompressionUncompressed || d.ErrorOutputPrefix != "errors/" || d.AppendNewline || d.Prefix != "" {
		t.Errorf("DefaultOptions = %+v", d)
	}
}
