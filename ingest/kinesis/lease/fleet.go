package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-dev/sluice/ingest/kinesis"
	"github.com/sluice-dev/sluice/pipeline"
)

// FleetConfig configures a Fleet.
type FleetConfig struct {
	// DSN is the PostgreSQL connection string; Schema and Table name the
	// lease table (created if missing).
	DSN, Schema, Table string
	// Worker is this instance's unique name; Duration the lease duration.
	Worker   string
	Duration time.Duration
	// Stream is the Kinesis stream (name or ARN): the lease rows' key.
	Stream string
	Lister kinesis.ShardLister
	// Start is the starting position of the shards found when the table
	// has no row of the stream yet; shards found later are read from
	// TRIM_HORIZON.
	Start kinesis.Start
	// Discover is the interval between ListShards calls, which create the
	// rows of new shards.
	Discover time.Duration
	Logger   *slog.Logger
}

// Fleet is the kinesis.Scheduler of an instance that shares its stream
// with others: it lists the shards and creates their lease rows, and runs
// a Coordinator whose leases decide which shards this instance reads. A
// shard's reader checkpoints its lease after every durable append.
type Fleet struct {
	cfg        FleetConfig
	pool       *pgxpool.Pool
	log        *slog.Logger
	readEvent  func(kind string, err error)
	leaseEvent func(event string, held int)
}

// NewFleet parses the DSN and prepares the pool; it connects only when
// Run starts (an unreachable database is retried there, and reported as
// not ready, instead of failing the start).
func NewFleet(ctx context.Context, cfg FleetConfig) (*Fleet, error) {
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's error may quote the DSN, password included: say less.
		return nil, errors.New("fleet: invalid dsn")
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Discover <= 0 {
		cfg.Discover = kinesis.DefaultDiscoverInterval
	}
	return &Fleet{cfg: cfg, pool: pool, log: log.With("worker", cfg.Worker),
		readEvent: func(string, error) {}, leaseEvent: func(string, int) {}}, nil
}

// SetEvents sets who is told of the fleet's calls (ListShards outcomes
// and database failures, for readiness) and of its lease changes (with
// the number of leases held after them, for metrics; event "" only
// reports the number, every discovery round).
func (f *Fleet) SetEvents(read func(kind string, err error), lease func(event string, held int)) {
	f.readEvent, f.leaseEvent = read, lease
}

// Close closes the database pool.
func (f *Fleet) Close() { f.pool.Close() }

// Run opens the lease table (retrying while the database is down), then
// discovers shards and runs the coordinator until ctx ends.
func (f *Fleet) Run(ctx context.Context, read func(context.Context, kinesis.Assignment) error) error {
	var table *Table
	for fails := 0; ; fails++ {
		t, err := Open(ctx, f.pool, f.cfg.Schema, f.cfg.Table, f.cfg.Stream)
		if err == nil {
			table = t
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		f.readEvent("Error", fmt.Errorf("fleet: %w", err))
		if err := pipeline.Sleep(ctx, pipeline.Backoff(time.Second, 30*time.Second, fails)); err != nil {
			return nil
		}
	}
	var c *Coordinator
	c, err := NewCoordinator(CoordinatorOptions{Table: table, Owner: f.cfg.Worker, Duration: f.cfg.Duration, Logger: f.log,
		Event: func(kind, shard string) { f.leaseEvent(kind, len(c.Held())) }})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.discover(ctx, table, func() { f.leaseEvent("", len(c.Held())) })
	}()
	err = c.Run(ctx, handler{f: f, c: c, read: read})
	<-done
	return err
}

// discover lists the shards every Discover interval and creates the rows
// of those that have none; each round also calls tick.
func (f *Fleet) discover(ctx context.Context, t *Table, each func()) {
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		tick.Reset(f.cfg.Discover)
		each()
		shards, err := kinesis.ListShards(ctx, f.cfg.Lister, f.cfg.Stream)
		if err != nil {
			if ctx.Err() == nil {
				f.readEvent("Error", err)
			}
			continue
		}
		f.readEvent("OK", nil)
		if err := f.ensure(ctx, t, shards); err != nil && ctx.Err() == nil {
			f.readEvent("Error", err)
		}
	}
}

// ensure creates the rows of shards that have none: with the starting
// position when the stream has no row at all (the fleet's first start),
// else from TRIM_HORIZON (a shard created after the fleet began).
func (f *Fleet) ensure(ctx context.Context, t *Table, shards []kinesis.Shard) error {
	leases, err := t.List(ctx)
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(leases))
	for _, l := range leases {
		have[l.Shard] = true
	}
	rows := map[string][]string{}
	for _, s := range shards {
		if have[s.ID] {
			continue
		}
		var parents []string
		for _, p := range []string{s.Parent, s.AdjacentParent} {
			if p != "" {
				parents = append(parents, p)
			}
		}
		rows[s.ID] = parents
	}
	if len(rows) == 0 {
		return nil
	}
	checkpoint := ""
	if len(leases) == 0 {
		checkpoint = initialCheckpoint(f.cfg.Start, time.Now())
	}
	return t.EnsureAt(ctx, rows, checkpoint)
}

// A row's checkpoint before any record of its shard is taken: "" reads
// from TRIM_HORIZON; atTimestamp followed by a time (RFC 3339) reads
// AT_TIMESTAMP it. A fleet's LATEST is the time of its first start, so
// that whichever instance reads the shard later starts from the same
// place.
const atTimestamp = "AT_TIMESTAMP:"

func initialCheckpoint(s kinesis.Start, now time.Time) string {
	switch s.Position {
	case types.ShardIteratorTypeTrimHorizon:
		return ""
	case types.ShardIteratorTypeAtTimestamp:
		return atTimestamp + s.Timestamp.UTC().Format(time.RFC3339Nano)
	default:
		return atTimestamp + now.UTC().Format(time.RFC3339Nano)
	}
}

// startOf is where a lease's checkpoint says to read from.
func startOf(checkpoint string) (kinesis.Start, error) {
	ts, ok := strings.CutPrefix(checkpoint, atTimestamp)
	switch {
	case checkpoint == "":
		return kinesis.Start{Position: types.ShardIteratorTypeTrimHorizon}, nil
	case ok:
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return kinesis.Start{}, fmt.Errorf("lease checkpoint %q: %w", checkpoint, err)
		}
		return kinesis.Start{Position: types.ShardIteratorTypeAtTimestamp, Timestamp: t}, nil
	default:
		return kinesis.Start{After: checkpoint, Position: types.ShardIteratorTypeTrimHorizon}, nil
	}
}

// handler adapts the coordinator's Start to the source's read.
type handler struct {
	f    *Fleet
	c    *Coordinator
	read func(context.Context, kinesis.Assignment) error
}

func (h handler) Start(ctx context.Context, held Held) error {
	start, err := startOf(held.Checkpoint)
	if err != nil {
		return err
	}
	shard := held.Shard
	return h.read(ctx, kinesis.Assignment{
		Shard:   shard,
		Start:   start,
		Pending: held.Pending,
		Intend: func(ctx context.Context, seq string) error {
			return h.c.Intend(ctx, shard, seq)
		},
		Progress: func(ctx context.Context, seq string) error {
			return h.c.Checkpoint(ctx, shard, seq)
		},
		Finish: func(ctx context.Context, children []types.ChildShard) error {
			rows := map[string][]string{}
			for _, ch := range children {
				if ch.ShardId != nil {
					rows[*ch.ShardId] = ch.ParentShards
				}
			}
			return h.c.Finish(ctx, shard, rows)
		},
	})
}
