package lease

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

func openTable(t *testing.T) *Table {
	t.Helper()
	dsn, schema := testpeers.PostgresSchema(t, "lease")
	tab := tableOn(t, dsn, schema)
	// Opening again (another worker) finds the table.
	tableOn(t, dsn, schema)
	return tab
}

// TestFencing: every write is conditional on the counter its writer saw,
// so a worker whose lease was taken can neither renew it nor move its
// checkpoint.
func TestFencing(t *testing.T) {
	tab := openTable(t)
	ctx := context.Background()
	if err := tab.Ensure(ctx, map[string][]string{"shard-0": nil, "shard-1": {"shard-0"}}); err != nil {
		t.Fatal(err)
	}
	ls, err := tab.List(ctx)
	if err != nil || len(ls) != 2 || ls[0].Owner != "" || ls[1].Parents[0] != "shard-0" {
		t.Fatalf("leases %+v, %v", ls, err)
	}
	a := ls[0]
	if a.Counter, err = tab.Take(ctx, a, "worker-a"); err != nil {
		t.Fatal(err)
	}
	if a.Counter, err = tab.Checkpoint(ctx, a, "worker-a", "100"); err != nil {
		t.Fatal(err)
	}
	// worker-b takes it (say worker-a looked dead): worker-a's writes fail.
	ls, _ = tab.List(ctx)
	b := ls[0]
	if b.Counter, err = tab.Take(ctx, b, "worker-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Renew(ctx, a, "worker-a"); !errors.Is(err, ErrLost) {
		t.Fatalf("renew of a taken lease: %v, want ErrLost", err)
	}
	if _, err := tab.Checkpoint(ctx, a, "worker-a", "200"); !errors.Is(err, ErrLost) {
		t.Fatalf("checkpoint of a taken lease: %v, want ErrLost", err)
	}
	// Ensure leaves existing rows alone.
	if err := tab.Ensure(ctx, map[string][]string{"shard-0": nil}); err != nil {
		t.Fatal(err)
	}
	ls, _ = tab.List(ctx)
	if ls[0].Owner != "worker-b" || ls[0].Checkpoint != "100" || ls[0].Counter != b.Counter {
		t.Fatalf("after the take: %+v", ls[0])
	}
	if _, err := tab.Release(ctx, ls[0]); err != nil {
		t.Fatal(err)
	}
	ls, _ = tab.List(ctx)
	if ls[0].Owner != "" || ls[0].Checkpoint != "100" {
		t.Fatalf("after the release: %+v", ls[0])
	}
}

// TestWatch: expiry by this worker's clock from the last counter change.
func TestWatch(t *testing.T) {
	now := time.Unix(1000, 0)
	w := NewWatch(10 * time.Second)
	w.now = func() time.Time { return now }
	held := []Lease{{Shard: "s0", Owner: "a", Counter: 5}, {Shard: "s1", Owner: "", Counter: 2}}
	if got := w.Expired(held); len(got) != 1 || got[0].Shard != "s1" {
		t.Fatalf("first look: %+v (only the free lease)", got)
	}
	now = now.Add(9 * time.Second)
	if got := w.Expired(held); len(got) != 1 {
		t.Fatalf("9 s later: %+v", got)
	}
	held[0].Counter = 6 // renewed
	now = now.Add(9 * time.Second)
	if got := w.Expired(held); len(got) != 1 {
		t.Fatalf("renewed 9 s ago: %+v", got)
	}
	now = now.Add(10 * time.Second)
	if got := w.Expired(held); len(got) != 2 {
		t.Fatalf("10 s without renewal: %+v", got)
	}
}

// TestPlanBalances: workers joining one after another over 8 shards end
// with 4+4, then 3+3+2; a dead worker's leases go to the others.
func TestPlanBalances(t *testing.T) {
	leases := make([]Lease, 8)
	for i := range leases {
		leases[i] = Lease{Shard: fmt.Sprintf("shard-%d", i)}
	}
	dead := map[string]bool{}
	round := func(workers ...string) {
		for range 10 { // until stable
			for _, w := range workers {
				var expired []Lease
				for _, l := range leases {
					if l.Owner == "" || dead[l.Owner] {
						expired = append(expired, l)
					}
				}
				for _, l := range Plan(leases, expired, w) {
					for i := range leases {
						if leases[i].Shard == l.Shard {
							leases[i].Owner = w
							leases[i].Counter++
						}
					}
				}
			}
		}
	}
	count := func() map[string]int {
		c := map[string]int{}
		for _, l := range leases {
			c[l.Owner]++
		}
		return c
	}
	round("a")
	if c := count(); c["a"] != 8 {
		t.Fatalf("one worker: %v", c)
	}
	round("a", "b")
	if c := count(); c["a"] != 4 || c["b"] != 4 {
		t.Fatalf("two workers: %v", c)
	}
	round("a", "b", "c")
	if c := count(); c["a"]+c["b"]+c["c"] != 8 || c["a"] < 2 || c["a"] > 3 || c["b"] < 2 || c["b"] > 3 || c["c"] < 2 || c["c"] > 3 {
		t.Fatalf("three workers: %v", c)
	}
	dead["b"] = true
	round("a", "c")
	if c := count(); c["a"] != 4 || c["c"] != 4 {
		t.Fatalf("after b died: %v", c)
	}
}

// TestPlanLineage: finished shards are not planned, nor children of
// unfinished parents; children of finished parents are.
func TestPlanLineage(t *testing.T) {
	leases := []Lease{
		{Shard: "p", Checkpoint: Finished},
		{Shard: "q", Owner: "x", Counter: 3},
		{Shard: "c1", Parents: []string{"p"}},
		{Shard: "c2", Parents: []string{"p", "q"}},
	}
	got := Plan(leases, leases[2:3], "me")
	if len(got) != 1 || got[0].Shard != "c1" {
		t.Fatalf("planned %+v, want c1 alone", got)
	}
}
