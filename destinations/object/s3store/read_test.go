package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

// TestDeadLetterS3ListAndRead: List pages through every key under a
// prefix (three keys a page here) in key order; Open streams an object
// and reports a missing key as fs.ErrNotExist; the dead letters a Writer
// wrote to the bucket are found and read back through them.
func TestDeadLetterS3ListAndRead(t *testing.T) {
	old := listPageSize
	listPageSize = 3
	t.Cleanup(func() { listPageSize = old })
	ctx := context.Background()
	s, err := New(ctx, s3rverConfig(t, "sluice-test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, content string) {
		t.Helper()
		o, err := s.Create(ctx, key, object.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		if err := o.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := 9; i >= 0; i-- {
		k := fmt.Sprintf("p/%02d", i)
		put(k, k)
		want = append(want, k)
	}
	put("q/other", "x")
	slices.Sort(want)
	infos, err := s.List(ctx, "p/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range infos {
		got = append(got, in.Key)
		if in.Size != 4 || in.Modified.IsZero() {
			t.Errorf("%+v", in)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	rc, err := s.Open(ctx, "p/07")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "p/07" {
		t.Fatalf("read %q %v", b, err)
	}
	if _, err := s.Open(ctx, "p/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}

	cfg, err := object.Compile(object.Options{ErrorOutputPrefix: "errs/"}, Rule)
	if err != nil {
		t.Fatal(err)
	}
	w, err := object.NewWriter(cfg, s, "st", object.Location{Kind: "s3", Code: "S3"}, pipeline.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 4 {
		dls := []pipeline.DeadLetter{{Record: pipeline.Record{Data: fmt.Appendf(nil, "r%d", i), Arrived: t0}, Code: "C", OutputType: pipeline.OutputProcessingFailed}}
		if err := w.WriteDeadLetters(ctx, pipeline.BatchID{First: pipeline.Position(i), End: pipeline.Position(i + 1)}, "st", dls); err != nil {
			t.Fatal(err)
		}
	}
	d, err := object.NewDeadLetters(cfg, s, "st", "s3://sluice-test")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := d.List(ctx)
	if err != nil || len(objs) != 4 {
		t.Fatalf("dead-letter objects %+v %v", objs, err)
	}
	var data []string
	for _, o := range objs {
		if o.OutputType != pipeline.OutputProcessingFailed {
			t.Errorf("%+v", o)
		}
		if err := d.Each(ctx, o.Key, func(r object.DeadLetterRecord) error { data = append(data, string(r.Data)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(data)
	if !slices.Equal(data, []string{"r0", "r1", "r2", "r3"}) {
		t.Fatalf("records %v", data)
	}
	if d.Where() != "s3://sluice-test/errs/" {
		t.Errorf("Where %q", d.Where())
	}
}
