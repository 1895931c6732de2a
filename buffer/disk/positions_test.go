package disk_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/disk/vfs"
	"github.com/sluice-dev/sluice/pipeline"
)

// shardRecs makes n records of shard with sequence numbers from, from+1, ...
func shardRecs(shard string, from, n int) []pipeline.Record {
	recs := make([]pipeline.Record, n)
	for i := range recs {
		recs[i] = pipeline.Record{Data: fmt.Appendf(nil, "%s-%d", shard, from+i),
			Meta: map[string]string{"shardId": shard, "sequenceNumber": fmt.Sprint(from + i), "partitionKey": "k"}}
	}
	return recs
}

// TestPositions: the tracked values survive reopening, the deletion of
// every segment that held them, and a lost or corrupt positions file
// (rebuilt from the records still buffered, counted).
func TestPositions(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	reg := prometheus.NewRegistry()
	m := newMetrics(t, reg)
	open := func(track bool) *disk.Log {
		t.Helper()
		o := disk.Options{Dir: "/d/s", FS: fs, Stream: "s", SegmentBytes: 1 << 10, Metrics: m, Logger: testLogger()}
		if track {
			o.Track = disk.Track{Key: "shardId", Value: "sequenceNumber"}
		}
		l, err := disk.Open(o)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open(true)
	if p := l.Positions(); len(p) != 0 {
		t.Fatalf("new log: positions %v", p)
	}
	if err := l.Append(ctx, append(shardRecs("shard-a", 1, 30), pipeline.Record{Data: []byte("no meta")})); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, append(shardRecs("shard-b", 100, 30), shardRecs("shard-a", 31, 2)...)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"shard-a": "32", "shard-b": "129"}
	if p := l.Positions(); !maps.Equal(p, want) {
		t.Fatalf("positions %v, want %v", p, want)
	}
	// Deliver everything: the segments that held the records are deleted.
	if err := l.Commit(ctx, l.State().Head); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, shardRecs("shard-c", 7, 1)); err != nil {
		t.Fatal(err)
	}
	want["shard-c"] = "7"
	_ = l.Close()
	if n := len(fs.Files()); n > 5 {
		t.Fatalf("segments not reclaimed: %v files", n)
	}
	l = open(true)
	if p := l.Positions(); !maps.Equal(p, want) {
		t.Fatalf("after reopen: positions %v, want %v", p, want)
	}
	_ = l.Close()
	if v := counterValue(t, reg, "sluice_buffer_position_recoveries_total"); v != 0 {
		t.Fatalf("%v position recoveries on clean reopens", v)
	}

	// A corrupt file: what is still buffered (shard-c) comes back; what
	// was deleted with its segments cannot.
	if err := fs.Damage("/d/s/positions", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }); err != nil {
		t.Fatal(err)
	}
	l = open(true)
	if p := l.Positions(); !maps.Equal(p, map[string]string{"shard-c": "7"}) {
		t.Fatalf("after a corrupt positions file: %v", p)
	}
	_ = l.Close()
	if v := counterValue(t, reg, "sluice_buffer_position_recoveries_total"); v != 1 {
		t.Fatalf("%v position recoveries, want 1", v)
	}
	// Rebuilt and saved: the next open is clean.
	l = open(true)
	if p := l.Positions(); !maps.Equal(p, map[string]string{"shard-c": "7"}) {
		t.Fatalf("after the rebuild: %v", p)
	}
	_ = l.Close()
	if v := counterValue(t, reg, "sluice_buffer_position_recoveries_total"); v != 1 {
		t.Fatalf("%v position recoveries, want still 1", v)
	}

	// Without tracking there are none, and no file is kept.
	u, err := disk.Open(disk.Options{Dir: "/d/u", FS: fs, Stream: "u", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.Append(ctx, shardRecs("shard-a", 1, 2)); err != nil {
		t.Fatal(err)
	}
	if p := u.Positions(); p != nil {
		t.Fatalf("untracked log: positions %v", p)
	}
	if _, ok := fs.Files()["/d/u/positions"]; ok {
		t.Fatal("an untracked log wrote a positions file")
	}
}
