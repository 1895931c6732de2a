package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/format/parquet"
	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

func TestDeadLetters(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, tc := range []struct {
				errPrefix string
				want      []string // key prefixes, sorted: delivery-failed then processing-failed
			}{
				{"failed/", []string{"failed/delivery-failed/2024/05/06/07/", "failed/processing-failed/2024/05/06/06/"}},
				{"e/!{firehose:error-output-type}/!{timestamp:yyyy-MM}/", []string{"e/delivery-failed/2024-05/", "e/processing-failed/2024-05/"}},
			} {
				opts := srv.options()
				opts.Compression = "GZIP"
				opts.Prefix = "data/"
				opts.ErrorOutputPrefix = tc.errPrefix
				d := newTestDest(t, opts, "dl", hooks{})
				old := time.Date(2024, 5, 6, 6, 59, 59, 999e6, time.UTC)
				dls := []pipeline.DeadLetter{
					{Record: pipeline.Record{Data: []byte("hello\n\"x\"<>"), Arrived: old.Add(time.Second)}, Attempts: 3, Code: "S3.AccessDenied", Message: "denied", OutputType: "delivery-failed"},
					{Record: pipeline.Record{Data: []byte{}, Arrived: old}, Attempts: 1, Code: "Lambda.ProcessingFailedStatus", Message: "bad", OutputType: "processing-failed"},
					{Record: pipeline.Record{Data: []byte{0xff, 0}, Arrived: old.Add(2 * time.Second)}, Attempts: 3, Code: "S3.AccessDenied", Message: "m"},
				}
				id := pipeline.BatchID{First: 5, End: 77}
				before := time.Now()
				for range 2 { // the second write replaces the first
					if err := d.WriteDeadLetters(context.Background(), id, "dl", dls); err != nil {
						t.Fatal(err)
					}
				}
				after := time.Now()
				root := strings.SplitN(tc.errPrefix, "/", 2)[0] + "/"
				keys := listKeys(t, srv.client(), root)
				slices.Sort(keys)
				if len(keys) != 2 {
					t.Fatalf("%s: dead-letter objects %v, want 2 (one per output type)", tc.errPrefix, keys)
				}
				want := []string{
					`{"attemptsMade":3,"arrivalTimestamp":1714978800999,"errorCode":"S3.AccessDenied","errorMessage":"denied","attemptEndingTimestamp":1714979289123,"rawData":"aGVsbG8KIngiPD4="}` + "\n" +
						`{"attemptsMade":3,"arrivalTimestamp":1714978801999,"errorCode":"S3.AccessDenied","errorMessage":"m","attemptEndingTimestamp":1714979289123,"rawData":"/wA="}` + "\n",
					`{"attemptsMade":1,"arrivalTimestamp":1714978799999,"errorCode":"Lambda.ProcessingFailedStatus","errorMessage":"bad","attemptEndingTimestamp":1714979289123,"rawData":""}` + "\n",
				}
				for i, key := range keys {
					if !strings.HasPrefix(key, tc.want[i]) || !strings.Contains(key, "/dl-1-2024-05-06-") || strings.HasSuffix(key, ".gz") {
						t.Errorf("key %q, want under %q, named dl-1-<time>-<uuid>, uncompressed", key, tc.want[i])
					}
					got := destinationtest.FixEnding(t, getObject(t, srv.client(), key), before, after, 1714979289123)
					if got != want[i] {
						t.Errorf("%s:\n got %s\nwant %s", key, got, want[i])
					}
					for line := range strings.Lines(got) {
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
		})
	}
}

// TestParquetPartialFailure converts JSON to Parquet: records that do not
// fit the schema come back in a PartialError (format-conversion-failed)
// while the others are stored; DuckDB reads the object.
func TestParquetPartialFailure(t *testing.T) {
	srv := startS3rver(t, testBucket)
	opts := srv.options()
	opts.Format = object.FormatOptions{Type: object.FormatParquet, Parquet: &parquet.Config{Schema: parquet.Schema{Columns: []parquet.Column{
		{Name: "id", Type: parquet.TypeInt64, Required: true},
		{Name: "name", Type: parquet.TypeString},
	}}}}
	d := newTestDest(t, opts, "pq", hooks{})
	destinationtest.DeliverRefused(t, d, "pq", []string{`{"id":1,"name":"a"}`, `not json`, `{"id":2}`, `{"name":"no id"}`, `{"id":3,"name":"c"}`}, []int{1, 3})
	keys := listKeys(t, srv.client(), "")
	if len(keys) != 1 || !strings.HasSuffix(keys[0], ".parquet") {
		t.Fatalf("keys %v, want one .parquet object", keys)
	}
	file := filepath.Join(t.TempDir(), "o.parquet")
	if err := os.WriteFile(file, getObject(t, srv.client(), keys[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	res := testpeers.DuckDB(t, "SELECT id, name FROM read_parquet("+testpeers.Quote(file)+") ORDER BY id")
	got, _ := json.Marshal(res.Rows)
	if string(got) != `[["1","a"],["2",null],["3","c"]]` { // BIGINT comes as JSON strings
		t.Errorf("DuckDB rows %s", got)
	}
}

// TestDynamicPartitioning splits a batch by partition key: one object per
// partition, records without the key and beyond max_active_partitions fail.
func TestDynamicPartitioning(t *testing.T) {
	srv := startS3rver(t, testBucket)
	opts := srv.options()
	opts.Prefix = "by/!{partitionKeyFromQuery:k}/!{timestamp:yyyy}/"
	opts.ErrorOutputPrefix = "err/!{firehose:error-output-type}/"
	opts.AppendNewline = true
	opts.MaxActivePartitions = 2
	d := newTestDest(t, opts, "dp", hooks{})
	at := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	b := pipeline.Batch{Stream: "dp", ID: pipeline.BatchID{First: 100, End: 900}}
	for i, k := range []string{"a", "b", "a", "", "c", "b"} {
		r := pipeline.Record{Data: []byte{'0' + byte(i)}, Arrived: at}
		if k != "" {
			r.Keys = map[string]string{"partitionKeyFromQuery:k": k}
		}
		b.Records = append(b.Records, r)
	}
	for range 2 {
		err := d.Deliver(context.Background(), b)
		var pe *pipeline.PartialError
		if !errors.As(err, &pe) {
			t.Fatalf("Deliver = %v, want a PartialError", err)
		}
		var types []string
		for _, f := range pe.Failed {
			var ce *pipeline.CodedError
			errors.As(f.Err, &ce)
			types = append(types, ce.OutputType)
		}
		if len(pe.Failed) != 2 || pe.Failed[0].Index != 3 || pe.Failed[1].Index != 4 ||
			!slices.Equal(types, []string{prefix.OutputPartitioningFailed, prefix.OutputActivePartitionExceeded}) {
			t.Fatalf("failures %v (%v), want record 3 partitioning-failed and 4 activePartitionExceeded", pe.Failed, types)
		}
	}
	keys := listKeys(t, srv.client(), "")
	slices.Sort(keys)
	if len(keys) != 2 || !strings.HasPrefix(keys[0], "by/a/2025/dp-1-") || !strings.HasPrefix(keys[1], "by/b/2025/dp-1-") {
		t.Fatalf("keys %v, want one object under by/a/2025/ and one under by/b/2025/", keys)
	}
	if a, b := getObject(t, srv.client(), keys[0]), getObject(t, srv.client(), keys[1]); !bytes.Equal(a, []byte("0\n2\n")) || !bytes.Equal(b, []byte("1\n5\n")) {
		t.Errorf("partition contents %q, %q", a, b)
	}
}
