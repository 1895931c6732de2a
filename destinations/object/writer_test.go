package object_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/format/parquet"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/filestore"
	"github.com/sluice-dev/sluice/pipeline"
)

func newWriter(t *testing.T, o object.Options, stream string) (*object.Writer, string) {
	t.Helper()
	cfg, err := object.Compile(o, filestore.Rule)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	st, err := filestore.New(root, stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := object.NewWriter(cfg, st, stream, object.Location{Kind: "file", Code: "File", BucketARN: "arn:aws:s3:::" + strings.TrimPrefix(root, "/")}, pipeline.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w, root
}

func files(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func optionKeys(t *testing.T, err error) []string {
	t.Helper()
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var oe *pipeline.OptionError
		if !errors.As(e, &oe) {
			t.Fatalf("%v is not a *pipeline.OptionError", e)
		}
		keys = append(keys, oe.Key)
	}
	slices.Sort(keys)
	return keys
}

// TestCompileKeysEveryProblem: every problem is reported at once, keyed by
// its option, nested ones dotted.
func TestCompileKeysEveryProblem(t *testing.T) {
	_, err := object.Compile(object.Options{
		Prefix:               "/abs/!{bogus:x}",
		ErrorOutputPrefix:    "e/!{timestamp:yyyy}/",
		Compression:          "GZIP",
		AppendNewline:        true,
		CustomTimeZone:       "Mars/Base",
		FileExtension:        "gz",
		MaxActivePartitions:  -1,
		MaxConcurrentObjects: 65,
		Format: object.FormatOptions{Type: "parquet", Parquet: &parquet.Config{Schema: parquet.Schema{Columns: []parquet.Column{
			{Name: "a", Type: "text"}, {Name: "s", Type: parquet.TypeStruct, Fields: []parquet.Column{{Name: "x", Type: parquet.TypeDecimal, Precision: 99}}},
		}}, Options: parquet.Options{Compression: "lz4"}}},
	}, filestore.Rule)
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{"append_newline", "compression", "custom_time_zone", "error_output_prefix", "file_extension",
		"format.parquet.columns[0].type", "format.parquet.columns[1].fields[0].precision", "format.parquet.compression",
		"max_active_partitions", "max_concurrent_objects", "prefix"}
	got := slices.Compact(optionKeys(t, err))
	if !slices.Equal(got, want) {
		t.Errorf("keys\n got %v\nwant %v\n%v", got, want, err)
	}
}

// TestDescribe: Firehose's shapes, exactly.
func TestDescribe(t *testing.T) {
	w, root := newWriter(t, object.Options{Prefix: "p/", Compression: "snappy"}, "s")
	in := pipeline.DescribeInput{Stream: "s", RoleARN: "arn:aws:iam::123456789012:role/r", BufferingSizeMiB: 64, BufferingIntervalSeconds: 60}
	got, err := json.Marshal(w.Describe(in))
	if err != nil {
		t.Fatal(err)
	}
	base := `"RoleARN":"arn:aws:iam::123456789012:role/r","BucketARN":"arn:aws:s3:::` + strings.TrimPrefix(root, "/") + `","Prefix":"p/","ErrorOutputPrefix":"errors/",` +
		`"BufferingHints":{"SizeInMBs":64,"IntervalInSeconds":60},"CompressionFormat":"Snappy",` +
		`"EncryptionConfiguration":{"NoEncryptionConfig":"NoEncryption"},"CloudWatchLoggingOptions":{"Enabled":false}`
	want := `{"ExtendedS3DestinationDescription":{` + base + `,"S3BackupMode":"Disabled"},"S3DestinationDescription":{` + base + `}}`
	if string(got) != want {
		t.Errorf("Describe\n got %s\nwant %s", got, want)
	}
	plain, _ := json.Marshal(w.S3DestinationDescription(pipeline.DescribeInput{RoleARN: "r"}))
	if !strings.Contains(string(plain), `"BufferingHints":{"SizeInMBs":5,"IntervalInSeconds":300}`) || !strings.HasPrefix(string(plain), `{"RoleARN":"r",`) {
		t.Errorf("S3DestinationDescription with default hints: %s", plain)
	}
	pq, _ := newWriter(t, object.Options{Format: object.FormatOptions{Type: "parquet", Parquet: &parquet.Config{Schema: parquet.Schema{Columns: []parquet.Column{{Name: "a", Type: parquet.TypeString}}}}}}, "s")
	if d := pq.S3DestinationDescription(in); d.CompressionFormat != "UNCOMPRESSED" {
		t.Errorf("Parquet CompressionFormat %q", d.CompressionFormat)
	}
}

// TestBackupNamesDifferFromData: a batch delivered and backed up in the
// same place is two objects, and each is rewritten in place.
func TestBackupNamesDifferFromData(t *testing.T) {
	w, root := newWriter(t, object.Options{Prefix: "same/", AppendNewline: true}, "s")
	b := destinationtest.NewBatch("s", 0, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), []byte("a"), []byte("b"))
	for range 2 {
		if err := w.Deliver(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if err := w.Backup(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	got := files(t, root)
	if len(got) != 2 {
		t.Fatalf("objects %v, want a data object and a backup", got)
	}
	data := w.ObjectKeys(b)[0]
	for k, v := range got {
		if v != "a\nb\n" || !strings.HasPrefix(k, "same/2024/01/01/00/s-1-2024-01-01-00-00-00-") {
			t.Errorf("%s = %q", k, v)
		}
	}
	if _, ok := got[data]; !ok {
		t.Errorf("data object %s not among %v", data, got)
	}
	// Parts and rounds of a batch are objects of their own.
	part := b
	part.ID.Part, part.ID.Round = 1, 1
	if w.ObjectKeys(part)[0] == data {
		t.Error("a part of a batch takes the batch's name")
	}
}

// TestDeadLetterObjects: one object per output type, Firehose's error
// records byte for byte, rewritten in place.
func TestDeadLetterObjects(t *testing.T) {
	w, root := newWriter(t, object.Options{Compression: "GZIP", ErrorOutputPrefix: "failed/"}, "dl")
	w.SetNow(func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC) })
	old := time.Date(2024, 5, 6, 6, 59, 59, 999e6, time.UTC)
	dls := []pipeline.DeadLetter{
		{Record: pipeline.Record{Data: []byte("hello\n\"x\"<>"), Arrived: old.Add(time.Second)}, Attempts: 3, Code: "File.InvalidPath", Message: "not a directory", OutputType: "delivery-failed"},
		{Record: pipeline.Record{Data: []byte{}, Arrived: old}, Attempts: 1, Code: "Lambda.ProcessingFailedStatus", Message: "bad", OutputType: "processing-failed"},
		{Record: pipeline.Record{Data: []byte{0xff, 0}, Arrived: old.Add(2 * time.Second)}, Attempts: 3, Code: "File.InvalidPath", Message: "m"},
	}
	id := pipeline.BatchID{First: 5, End: 77}
	for range 2 {
		if err := w.WriteDeadLetters(context.Background(), id, "dl", dls); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		"failed/delivery-failed/2024/05/06/07/": `{"attemptsMade":3,"arrivalTimestamp":1714978800999,"errorCode":"File.InvalidPath","errorMessage":"not a directory","attemptEndingTimestamp":1714979289123,"rawData":"aGVsbG8KIngiPD4="}` + "\n" +
			`{"attemptsMade":3,"arrivalTimestamp":1714978801999,"errorCode":"File.InvalidPath","errorMessage":"m","attemptEndingTimestamp":1714979289123,"rawData":"/wA="}` + "\n",
		"failed/processing-failed/2024/05/06/06/": `{"attemptsMade":1,"arrivalTimestamp":1714978799999,"errorCode":"Lambda.ProcessingFailedStatus","errorMessage":"bad","attemptEndingTimestamp":1714979289123,"rawData":""}` + "\n",
	}
	got := files(t, root)
	if len(got) != 2 {
		t.Fatalf("objects %v", got)
	}
	for k, v := range got {
		dir := k[:strings.LastIndex(k, "/")+1]
		name := k[len(dir):]
		if want[dir] != v || !strings.HasPrefix(name, "dl-1-2024-05-06-") || strings.HasSuffix(name, ".gz") {
			t.Errorf("%s:\n got %s\nwant %s", k, v, want[dir])
		}
	}
	if err := w.WriteDeadLetters(context.Background(), id, "bad/stream", dls); err == nil {
		t.Error("invalid stream name accepted")
	}
}

// TestPermanentFailureOfOnePartition: among several partitions, one that
// cannot be written fails its records only; when all fail, the batch
// fails with the store's error.
func TestPermanentFailureOfOnePartition(t *testing.T) {
	w, root := newWriter(t, object.Options{Prefix: "!{partitionKeyFromQuery:k}/", ErrorOutputPrefix: "e/!{firehose:error-output-type}/"}, "s")
	if err := os.WriteFile(filepath.Join(root, "blocked"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := destinationtest.NewBatch("s", 0, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), []byte("1"), []byte("2"), []byte("3"))
	for i, k := range []string{"ok", "blocked", "ok"} {
		b.Records[i].Keys = map[string]string{"partitionKeyFromQuery:k": k}
	}
	err := w.Deliver(context.Background(), b)
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Index != 1 || pipeline.IsRetryable(pe.Failed[0].Err) {
		t.Fatalf("Deliver = %v, want record 1 failed permanently", err)
	}
	blocked := destinationtest.NewBatch("s", 100, time.Now(), []byte("x"))
	blocked.Records[0].Keys = map[string]string{"partitionKeyFromQuery:k": "blocked"}
	err = w.Deliver(context.Background(), blocked)
	var fe *filestore.Error
	if errors.As(err, &pe) || !errors.As(err, &fe) || fe.Code != filestore.CodeInvalidPath {
		t.Fatalf("Deliver of one blocked partition = %v, want the store's File.InvalidPath", err)
	}
}
