package kinesis

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Local is the Scheduler of a source that reads a stream on its own: it
// lists the shards every Discover interval (and at once when a shard
// ends), and reads every shard that is readable (Readable: parents
// first), one goroutine each. What it knows of the shards besides their
// sequence numbers is in Dir/shards.json (see shardsFile).
type Local struct {
	Lister ShardLister
	// Stream is the Kinesis stream's name or ARN, as configured.
	Stream string
	// Dir holds shards.json (e.g. <data_dir>/source/<stream>).
	Dir string
	// Start is the configured starting position, for the shards found at
	// the first start.
	Start Start
	// Discover is the interval between ListShards calls (default
	// DefaultDiscoverInterval).
	Discover time.Duration
	// Event is told of ListShards outcomes ("OK" or "Error"), for
	// readiness (Source.Event).
	Event  func(kind string, err error)
	Logger *slog.Logger
	now    func() time.Time
}

// ended is a reader's return.
type ended struct {
	shard    string
	finished bool
	err      error
}

// Run schedules until ctx ends, then waits for every reader.
func (l *Local) Run(ctx context.Context, read func(context.Context, Assignment) error) error {
	log := l.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	event := l.Event
	if event == nil {
		event = func(string, error) {}
	}
	now := l.now
	if now == nil {
		now = time.Now
	}
	every := l.Discover
	if every <= 0 {
		every = DefaultDiscoverInterval
	}
	state, err := loadShards(l.Dir)
	first := state == nil && err == nil
	if err != nil {
		// Written atomically, so this is damage: read the shards without a
		// buffered position from their start (duplicates, never loss).
		log.Error("kinesis source: shard state unreadable; shards with nothing buffered are read from TRIM_HORIZON", "err", err)
	}
	if state == nil {
		state = &shardsFile{Version: 1, Started: now(), Shards: map[string]shardState{}}
	}
	latest := map[string]bool{} // found at the first start with LATEST: read from LATEST now
	running := map[string]bool{}
	done := make(chan ended)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	start := func(id string) {
		st := state.Shards[id]
		a := Assignment{Shard: id, Start: st.start()}
		if latest[id] {
			a.Start = Start{Position: types.ShardIteratorTypeLatest}
		}
		finished := false
		a.Finish = func(context.Context, []types.ChildShard) error {
			finished = true // the children are found by listing the shards again
			return nil
		}
		running[id] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := read(rctx, a)
			select {
			case done <- ended{shard: id, finished: finished && err == nil, err: err}:
			case <-rctx.Done():
			}
		}()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-done:
			delete(running, e.shard)
			if e.finished {
				st := state.Shards[e.shard]
				st.Finished = true
				state.Shards[e.shard] = st
				if err := state.save(l.Dir); err != nil {
					// Not saved: the shard is read to its end again after a
					// restart (it has nothing left), so this only costs calls.
					log.Warn("kinesis source: saving shard state", "err", err)
				}
			} else if e.err != nil && ctx.Err() == nil {
				log.Error("kinesis source: shard reader stopped; restarting it at the next discovery", "shard", e.shard, "err", e.err)
				continue
			}
			// Its children may be readable now: list again at once.
			timer.Reset(0)
			continue
		case <-timer.C:
		}
		timer.Reset(every)
		shards, err := ListShards(ctx, l.Lister, l.Stream)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			event("Error", err)
			continue
		}
		event("OK", nil)
		changed := first
		for _, sh := range shards {
			if _, ok := state.Shards[sh.ID]; ok {
				continue
			}
			st := shardState{Start: types.ShardIteratorTypeTrimHorizon}
			if first {
				st = initialState(l.Start, state.Started)
				latest[sh.ID] = l.Start.Position == types.ShardIteratorTypeLatest || l.Start.Position == ""
			}
			state.Shards[sh.ID] = st
			changed = true
		}
		if changed {
			if err := state.save(l.Dir); err != nil {
				// Nothing new is read until it is saved: a shard read
				// without its start on disk could be read from the wrong
				// place after a restart.
				log.Error("kinesis source: saving shard state; retrying at the next discovery", "err", err)
				event("Error", err)
				continue
			}
			first = false
		}
		finished := map[string]bool{}
		for id, st := range state.Shards {
			finished[id] = st.Finished
		}
		for _, sh := range Readable(shards, finished) {
			if !running[sh.ID] {
				start(sh.ID)
			}
		}
	}
}

// initialState is the recorded start of a shard found at the first start:
// LATEST is kept as the time of that start (see shardsFile).
func initialState(s Start, started time.Time) shardState {
	switch s.Position {
	case types.ShardIteratorTypeTrimHorizon:
		return shardState{Start: s.Position}
	case types.ShardIteratorTypeAtTimestamp:
		return shardState{Start: s.Position, Timestamp: s.Timestamp}
	default:
		return shardState{Start: types.ShardIteratorTypeAtTimestamp, Timestamp: started}
	}
}
