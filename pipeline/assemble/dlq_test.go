package assemble

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/filestore"
	"github.com/sluice-dev/sluice/pipeline"
)

// TestDeadLetterOpen: OpenDeadLetters finds a stream's error output — the
// file destination itself under its error_output_prefix, or the stream's
// error_output block (its mode taken out) — relative to data_dir, reads
// what a writer of the same options wrote there, and creates nothing.
func TestDeadLetterOpen(t *testing.T) {
	dataDir := t.TempDir()
	cfg, err := config.Parse("test.yaml", []byte(`data_dir: `+dataDir+`
streams:
  own:
    destination: {type: file, path: own, error_output_prefix: "bad/!{firehose:error-output-type}/"}
  sep:
    destination: {type: http_endpoint, url: "http://127.0.0.1:1/"}
    error_output: {type: file, path: sep-errors, mode: AllData, prefix: backup/}
  s3:
    destination: {type: s3, bucket: some-bucket, endpoint: "http://127.0.0.1:1"}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	write := func(dir, errPrefix, stream string) {
		t.Helper()
		oc, err := object.Compile(object.Options{ErrorOutputPrefix: errPrefix}, filestore.Rule)
		if err != nil {
			t.Fatal(err)
		}
		st, err := filestore.New(filepath.Join(dataDir, dir), stream, nil)
		if err != nil {
			t.Fatal(err)
		}
		w, err := object.NewWriter(oc, st, stream, object.Location{Kind: "file", Code: "File"}, pipeline.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		dls := []pipeline.DeadLetter{{Record: pipeline.Record{Data: []byte("x-" + stream), Arrived: time.Now()}, Code: "C", OutputType: "processing-failed"}}
		if err := w.WriteDeadLetters(ctx, pipeline.BatchID{End: 1}, stream, dls); err != nil {
			t.Fatal(err)
		}
	}
	write("own", "bad/!{firehose:error-output-type}/", "own")
	write("sep-errors", "", "sep")
	for _, stream := range []string{"own", "sep"} {
		d, err := OpenDeadLetters(ctx, cfg, stream)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := d.List(ctx)
		if err != nil || len(objs) != 1 || objs[0].OutputType != "processing-failed" {
			t.Fatalf("%s: %+v %v", stream, objs, err)
		}
		var got string
		if err := d.Each(ctx, objs[0].Key, func(r DeadLetterRecord) error { got = string(r.Data); return nil }); err != nil || got != "x-"+stream {
			t.Fatalf("%s: %q %v", stream, got, err)
		}
		if err := d.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenDeadLetters(ctx, cfg, "s3")
	if err != nil {
		t.Fatal(err)
	}
	if d.Where() != "s3://some-bucket/errors/" {
		t.Errorf("where %q", d.Where())
	}
	_ = d.Close(ctx)
	if _, err := OpenDeadLetters(ctx, cfg, "nope"); err == nil || !strings.Contains(err.Error(), `no stream "nope"`) {
		t.Errorf("unknown stream: %v", err)
	}
	entries, _ := os.ReadDir(dataDir)
	if len(entries) != 2 {
		t.Errorf("the data directory holds %v: OpenDeadLetters created something", entries)
	}
}
