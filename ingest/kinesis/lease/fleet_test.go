package lease

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/ingest/kinesis"
)

// TestFleetRowsStart: the rows made at the fleet's first start carry the
// starting position (LATEST as the time of that start), so whichever
// worker reads a shard later starts from the same place; rows of shards
// found later read from TRIM_HORIZON; a checkpoint reads after itself.
func TestFleetRowsStart(t *testing.T) {
	dsn, schema := testpeers.PostgresSchema(t, "fleet")
	tab := tableOn(t, dsn, schema)
	ctx := context.Background()
	f := &Fleet{cfg: FleetConfig{Start: kinesis.Start{Position: types.ShardIteratorTypeLatest}}}
	before := time.Now()
	if err := f.ensure(ctx, tab, []kinesis.Shard{{ID: "s0"}, {ID: "s1"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.ensure(ctx, tab, []kinesis.Shard{{ID: "s0"}, {ID: "s1"}, {ID: "s2", Parent: "s0"}, {ID: "s3", Parent: "s0", AdjacentParent: "s1"}}); err != nil {
		t.Fatal(err)
	}
	leases, err := tab.List(ctx)
	if err != nil || len(leases) != 4 {
		t.Fatalf("leases %+v, %v", leases, err)
	}
	for _, l := range leases {
		st, err := startOf(l.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		switch l.Shard {
		case "s0", "s1":
			if st.Position != types.ShardIteratorTypeAtTimestamp || st.Timestamp.Before(before.Add(-time.Millisecond)) || time.Since(st.Timestamp) > time.Minute {
				t.Errorf("%s: first-start row reads from %+v (checkpoint %q)", l.Shard, st, l.Checkpoint)
			}
		default:
			if st.Position != types.ShardIteratorTypeTrimHorizon || st.After != "" || l.Checkpoint != "" {
				t.Errorf("%s: a later shard reads from %+v (checkpoint %q)", l.Shard, st, l.Checkpoint)
			}
		}
	}
	if leases[3].Shard != "s3" || len(leases[3].Parents) != 2 {
		t.Errorf("the merged child's parents: %+v", leases[3])
	}
	st, err := startOf("49680795932818905440505945902458602285080068177931534386")
	if err != nil || st.After != "49680795932818905440505945902458602285080068177931534386" {
		t.Fatalf("a checkpoint: %+v %v", st, err)
	}
	if _, err := startOf(atTimestamp + "yesterday"); err == nil {
		t.Fatal("a bad timestamp checkpoint was accepted")
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if st, _ := startOf(initialCheckpoint(kinesis.Start{Position: types.ShardIteratorTypeAtTimestamp, Timestamp: at}, time.Now())); !st.Timestamp.Equal(at) {
		t.Fatalf("AT_TIMESTAMP round trip: %+v", st)
	}
	if c := initialCheckpoint(kinesis.Start{Position: types.ShardIteratorTypeTrimHorizon}, time.Now()); c != "" {
		t.Fatalf("TRIM_HORIZON as %q", c)
	}
}
