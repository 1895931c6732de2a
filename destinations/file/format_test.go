package file

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/format/parquet"
	"github.com/sluice-dev/sluice/destinations/object"
)

// TestCodecs writes every codec but GZIP (see TestConformance) through the
// shared object layer and decodes the files with independent readers.
func TestCodecs(t *testing.T) {
	b := destinationtest.NewBatch("c", 0, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		[]byte(`{"n":1}`), bytes.Repeat([]byte("compressible "), 5000), []byte(`{"n":3}`))
	want := string(b.Records[0].Data) + "\n" + string(b.Records[1].Data) + "\n" + string(b.Records[2].Data) + "\n"
	for _, tc := range []struct {
		codec, ext string
		decode     func([]byte) ([]byte, error)
	}{
		{"ZSTD", ".zst", func(p []byte) ([]byte, error) {
			d, err := zstd.NewReader(bytes.NewReader(p))
			if err != nil {
				return nil, err
			}
			defer d.Close()
			return io.ReadAll(d)
		}},
		{"Snappy", ".snappy", func(p []byte) ([]byte, error) { return io.ReadAll(s2.NewReader(bytes.NewReader(p))) }},
		{"ZIP", ".zip", func(p []byte) ([]byte, error) {
			zr, err := zip.NewReader(bytes.NewReader(p), int64(len(p)))
			if err != nil {
				return nil, err
			}
			if len(zr.File) != 1 {
				return nil, errors.New("want one entry")
			}
			f, err := zr.File[0].Open()
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return io.ReadAll(f)
		}},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			root := t.TempDir()
			d := newDest(t, Options{Path: root, Options: object.Options{Compression: tc.codec, AppendNewline: true}}, "c")
			if err := d.Deliver(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			objs := listFiles(t, root)
			if len(objs) != 1 {
				t.Fatalf("objects %v", objs)
			}
			for key, data := range objs {
				if !strings.HasSuffix(key, tc.ext) {
					t.Errorf("key %s, want extension %s", key, tc.ext)
				}
				if len(data) >= len(want) {
					t.Errorf("%d bytes compressed, %d raw: not compressed", len(data), len(want))
				}
				got, err := tc.decode(data)
				if err != nil || string(got) != want {
					t.Errorf("decoded %d bytes (%v), want %d", len(got), err, len(want))
				}
			}
		})
	}
}

// TestParquetReadByDuckDB converts JSON records to Parquet in the file
// destination: records that do not fit the schema come back in a
// PartialError, the others are in a .parquet file DuckDB reads.
func TestParquetReadByDuckDB(t *testing.T) {
	root := t.TempDir()
	d := newDest(t, Options{Path: root, Options: object.Options{Prefix: "pq/", Format: object.FormatOptions{Type: object.FormatParquet, Parquet: &parquet.Config{
		Schema: parquet.Schema{Columns: []parquet.Column{
			{Name: "id", Type: parquet.TypeInt64, Required: true},
			{Name: "name", Type: parquet.TypeString},
			{Name: "ts", Type: parquet.TypeTimestamp},
		}},
		Options: parquet.Options{Compression: "zstd"},
	}}}}, "pq")
	destinationtest.DeliverRefused(t, d, "pq", []string{`{"id":1,"name":"a","ts":"2024-01-02T03:04:05Z"}`, `not json`, `{"id":2}`, `{"name":"no id"}`, `{"id":3,"name":"c","ts":1704164645000}`}, []int{1, 3})
	objs := listFiles(t, root)
	if len(objs) != 1 {
		t.Fatalf("objects %v", objs)
	}
	for key := range objs {
		if !strings.HasPrefix(key, "pq/2024/01/02/03/pq-1-") || !strings.HasSuffix(key, ".parquet") {
			t.Fatalf("key %s, want a .parquet object under pq/2024/01/02/03/", key)
		}
		file := filepath.Join(root, filepath.FromSlash(key))
		res := testpeers.DuckDB(t, "SELECT id, name, epoch_ms(ts) FROM read_parquet("+testpeers.Quote(file)+") ORDER BY id")
		got, _ := json.Marshal(res.Rows)
		if string(got) != `[["1","a","1704164645000"],["2",null,null],["3","c","1704164645000"]]` { // BIGINT comes as JSON strings
			t.Errorf("DuckDB rows %s", got)
		}
	}
}
