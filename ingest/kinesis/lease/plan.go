package lease

import (
	"sort"

	"github.com/sluice-dev/sluice/ingest/kinesis"
)

// Plan returns the leases owner should try to take now, the Kinesis
// Client Library's way: each worker aims at target = ceil(leases to
// read ÷ workers), the workers being the owners of unexpired leases plus
// itself. It takes expired (or free) leases first; with none, it steals
// one lease from the most loaded worker when that one holds more than the
// target, or holds the target while owner lacks more than one. A finished
// shard is not read again, and a shard is not read before its listed
// parents are finished, so neither is planned.
//
// leases is a List; expired is Watch.Expired of it.
func Plan(leases, expired []Lease, owner string) []Lease {
	isExpired := map[string]bool{}
	for _, l := range expired {
		isExpired[l.Shard] = true
	}
	// The resharding rule is kinesis.Readable's, over the lease rows.
	shards := make([]kinesis.Shard, len(leases))
	finished := map[string]bool{}
	for i, l := range leases {
		shards[i] = kinesis.Shard{ID: l.Shard}
		if len(l.Parents) > 0 {
			shards[i].Parent = l.Parents[0]
		}
		if len(l.Parents) > 1 {
			shards[i].AdjacentParent = l.Parents[1]
		}
		finished[l.Shard] = l.Checkpoint == Finished
	}
	ok := map[string]bool{}
	for _, s := range kinesis.Readable(shards, finished) {
		ok[s.ID] = true
	}
	readable := func(l Lease) bool { return ok[l.Shard] }
	load := map[string][]Lease{owner: nil}
	n := 0
	for _, l := range leases {
		if !readable(l) {
			continue
		}
		n++
		if l.Owner != "" && !isExpired[l.Shard] {
			load[l.Owner] = append(load[l.Owner], l)
		}
	}
	if n == 0 {
		return nil
	}
	target := (n + len(load) - 1) / len(load)
	need := target - len(load[owner])
	if need <= 0 {
		return nil
	}
	var take []Lease
	for _, l := range leases {
		if len(take) == need {
			return take
		}
		if readable(l) && (l.Owner == "" || isExpired[l.Shard]) && l.Owner != owner {
			take = append(take, l)
		}
	}
	if len(take) > 0 {
		return take
	}
	// Steal one from the most loaded worker (ties by name, for a stable
	// choice).
	workers := make([]string, 0, len(load))
	for w := range load {
		if w != owner {
			workers = append(workers, w)
		}
	}
	sort.Slice(workers, func(i, j int) bool {
		a, b := len(load[workers[i]]), len(load[workers[j]])
		return a > b || a == b && workers[i] < workers[j]
	})
	if len(workers) == 0 {
		return nil
	}
	most := load[workers[0]]
	if len(most) > target || len(most) == target && need > 1 {
		return []Lease{most[len(most)-1]}
	}
	return nil
}
