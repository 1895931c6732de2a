package testpeers

import (
	"path/filepath"
	"testing"
)

// Kinesalite is a running kinesalite 3.3.3: an independent implementation
// of the Kinesis Data Streams API (JSON 1.1, Kinesis_20131202.*) in Node,
// in memory. It accepts any SigV4 credentials and region. CreateStream,
// ListShards, GetShardIterator, GetRecords, SplitShard and MergeShards work,
// with ParentShardId/AdjacentParentShardId on the children; stream changes
// take 10 ms. A test can stop it and start it again on the same port (an
// unreachable endpoint), but its streams do not survive: it keeps them in
// memory.
type Kinesalite struct {
	// Endpoint is its address, http://127.0.0.1:PORT.
	Endpoint string
	restartable
}

// StartKinesalite runs kinesalite on a free loopback port and stops it
// when the test ends.
func StartKinesalite(t testing.TB) *Kinesalite {
	t.Helper()
	need(t, filepath.Join(Dir(), "node_modules", "kinesalite", "index.js"))
	addr := freeAddr(t)
	_, port := splitPort(addr)
	k := &Kinesalite{Endpoint: "http://" + addr}
	// Any request answers (a GET is refused with 400): that is readiness.
	k.p = process{name: "kinesalite", argv: []string{"node", filepath.Join(Dir(), "kinesalite.cjs"), port},
		probe: httpProbe(k.Endpoint+"/", false), ready: "kinesalite listening on", t: t}
	t.Cleanup(k.Stop)
	k.Start()
	t.Cleanup(func() { k.p.report() }) // runs before Stop
	return k
}
