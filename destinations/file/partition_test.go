package file

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

var at = time.Date(2019, 10, 1, 9, 20, 18, 0, time.UTC)

func rec(id, data, customer string, sec int) pipeline.Record {
	r := pipeline.Record{ID: id, Data: []byte(data), Arrived: at.Add(time.Duration(sec) * time.Second)}
	if customer != "-" {
		r.Keys = map[string]string{"partitionKeyFromQuery:customer_id": customer}
	}
	return r
}

var uuidRE = regexp.MustCompile(`-[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`)

// stripUUID replaces the object names' uuid so keys can be compared
// exactly (uuids are checked for determinism separately).
func stripUUID(key string) string {
	if n := len(uuidRE.FindAllString(key, -1)); n != 1 {
		return key + " (uuids: " + strconv.Itoa(n) + ")"
	}
	return uuidRE.ReplaceAllString(key, "-UUID")
}

func TestDeliverPartitions(t *testing.T) {
	root := t.TempDir()
	reg := prometheus.NewRegistry()
	opts := Options{
		Path:    root,
		Options: object.Options{Prefix: "customer_id=!{partitionKeyFromQuery:customer_id}/!{timestamp:yyyy/MM/dd}/", ErrorOutputPrefix: "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/", AppendNewline: true},
	}
	cfg, err := Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), cfg, "s", pipeline.Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), cfg, "s2", pipeline.Deps{Registry: reg}); err != nil { // same registry: metrics shared
		t.Fatal(err)
	}
	b := pipeline.Batch{Stream: "s", ID: pipeline.BatchID{First: 1, End: 9}, Records: []pipeline.Record{
		rec("0", "a1", "a", 3),
		rec("1", "b1", "b", 1),
		rec("2", "x", "-", 0),
		rec("3", "a2", "a", 2),
		rec("4", "c1", "c", 4),
		rec("5", "b2", "b", 0),
	}}
	err = d.Deliver(context.Background(), b)
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Index != 2 {
		t.Fatalf("Deliver: %v, want a partial error for record 2", err)
	}
	var ce *pipeline.CodedError
	if !errors.As(pe.Failed[0].Err, &ce) || ce.OutputType != "partitioning-failed" || ce.Code != prefix.CodeMetadataExtractionFailed || pipeline.IsRetryable(pe.Failed[0].Err) {
		t.Errorf("failure %v", pe.Failed[0].Err)
	}
	objs := readObjects(t, root, "errors/")
	got := map[string]string{}
	for k, v := range objs {
		got[stripUUID(k)] = string(v)
	}
	want := map[string]string{
		"customer_id=a/2019/10/01/s-1-2019-10-01-09-20-20-UUID": "a1\na2\n",
		"customer_id=b/2019/10/01/s-1-2019-10-01-09-20-18-UUID": "b1\nb2\n",
		"customer_id=c/2019/10/01/s-1-2019-10-01-09-20-22-UUID": "c1\n",
	}
	if !maps.Equal(got, want) {
		t.Errorf("objects\n got %v\nwant %v", got, want)
	}
	keys := d.ObjectKeys(b)
	if len(keys) != 3 || objs[keys[0]] == nil || objs[keys[1]] == nil || objs[keys[2]] == nil {
		t.Errorf("ObjectKeys %v do not name the objects %v", keys, slices.Collect(maps.Keys(objs)))
	}
	// A redelivery replaces the same objects.
	if err := d.Deliver(context.Background(), b); !errors.As(err, &pe) {
		t.Fatal(err)
	}
	if again := readObjects(t, root, "errors/"); len(again) != 3 {
		t.Errorf("redelivery: %d objects, want 3", len(again))
	}
	// The runner dead-letters the failed record under the error prefix.
	dl := []pipeline.DeadLetter{{Record: b.Records[2], Attempts: 1, Code: ce.Code, Message: ce.Error(), OutputType: ce.OutputType}}
	if err := d.WriteDeadLetters(context.Background(), b.ID, "s", dl); err != nil {
		t.Fatal(err)
	}
	var dlKeys []string
	for k := range readObjects(t, root, "") {
		if strings.HasPrefix(k, "errors/") {
			dlKeys = append(dlKeys, stripUUID(k))
		}
	}
	if len(dlKeys) != 1 || dlKeys[0] != "errors/partitioning-failed/2019/s-1-2019-10-01-09-20-18-UUID" {
		t.Errorf("dead-letter objects %v", dlKeys)
	}
	// Metrics: 3 partitions, limit not exceeded.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "sluice_partitions_active" {
			found = true
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 3 {
				t.Errorf("sluice_partitions_active = %v, want 3", v)
			}
		}
	}
	if !found {
		t.Error("sluice_partitions_active not registered")
	}
}

func TestDeliverPartitionLimitAndUnsafeKeys(t *testing.T) {
	root := t.TempDir()
	d := newDest(t, Options{
		Path:    root,
		Options: object.Options{Prefix: "!{partitionKeyFromQuery:customer_id}/", ErrorOutputPrefix: "e/!{firehose:error-output-type}/", MaxActivePartitions: 3},
	}, "s")
	b := pipeline.Batch{Stream: "s", Records: []pipeline.Record{
		rec("0", "a", "a", 0),
		rec("1", "dots", "..", 0),
		rec("2", "b", "b", 0),
		rec("3", "c", "c", 0), // fourth distinct partition: over the limit
		rec("4", "a", "a", 0),
		rec("5", "c", "c", 0),
	}}
	err := d.Deliver(context.Background(), b)
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Deliver: %v", err)
	}
	type f struct {
		index      int
		code, kind string
	}
	var got []f
	for _, r := range pe.Failed {
		var ce *pipeline.CodedError
		if !errors.As(r.Err, &ce) {
			t.Fatalf("record %d: %v", r.Index, r.Err)
		}
		got = append(got, f{r.Index, ce.Code, ce.OutputType})
	}
	want := []f{
		{1, "File.InvalidPath", "partitioning-failed"},
		{3, prefix.CodeActivePartitionsLimitExceeded, "activePartitionExceeded"},
		{5, prefix.CodeActivePartitionsLimitExceeded, "activePartitionExceeded"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("failures %v, want %v", got, want)
	}
	objs := readObjects(t, root, "")
	var keys []string
	for k := range objs {
		keys = append(keys, stripUUID(k))
	}
	slices.Sort(keys)
	if want := []string{"a/2019/10/01/09/s-1-2019-10-01-09-20-18-UUID", "b/2019/10/01/09/s-1-2019-10-01-09-20-18-UUID"}; !slices.Equal(keys, want) {
		t.Errorf("objects %v, want %v", keys, want)
	}
}

func TestDeliverTimeZoneAndExtension(t *testing.T) {
	root := t.TempDir()
	d := newDest(t, Options{Path: root, Options: object.Options{Prefix: "logs/", Compression: "GZIP", CustomTimeZone: "Asia/Tokyo", FileExtension: ".json.gz"}}, "s")
	b := pipeline.Batch{Stream: "s", Records: []pipeline.Record{rec("0", "x", "-", 0)}}
	if err := d.Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	objs := readObjects(t, root, "")
	if len(objs) != 1 {
		t.Fatalf("objects %v", objs)
	}
	for k, v := range objs {
		if got := stripUUID(k); got != "logs/2019/10/01/18/s-1-2019-10-01-18-20-18-UUID.json.gz" || string(v) != "x" {
			t.Errorf("object %q (%q) content %q", k, got, v)
		}
	}
}
