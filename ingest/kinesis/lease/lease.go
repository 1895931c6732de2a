// Package lease shares a Kinesis stream's shards among Sluice instances
// through a table in PostgreSQL, the way the Kinesis Client Library shares
// them through DynamoDB: one row per shard with its owner, a counter that
// every renewal, take and release increments (the fencing token: every
// write is conditional on the counter the writer last saw), the shard's
// checkpoint and its parents.
//
// Expiry is judged by each worker's own monotonic clock, from when it last
// saw a row's counter change, never from timestamps written by other
// machines, so clock skew between workers does not matter (the KCL's
// rule). A worker that fails to renew a lease, or finds its counter moved,
// has lost it and must stop reading that shard at once.
//
// A Coordinator runs one worker's side of this: it renews the leases the
// worker holds, takes others as Plan says (free, expired, or stolen to
// balance), starts and stops the reading of their shards through a
// Handler, and writes checkpoints and shard ends at the counter it holds.
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Lease is one row: a shard of the stream and who holds it.
type Lease struct {
	Shard      string
	Owner      string // "" when free
	Counter    int64
	Checkpoint string // the last sequence number durably taken, "" for none; see Finished
	// Pending is the last sequence number the holder was about to buffer
	// (Intend): after its death, the records after Checkpoint up to
	// Pending may be buffered by it already.
	Pending string
	Parents []string
}

// Finished is the checkpoint of a shard read to its end.
const Finished = "SHARD_END"

// ErrLost means the lease's counter moved (another worker renewed or took
// it, or it was released): the caller no longer holds it.
var ErrLost = errors.New("lease lost")

// Table is the lease rows of one stream in one PostgreSQL table.
type Table struct {
	pool   *pgxpool.Pool
	table  string // sanitized, possibly schema-qualified
	stream string
}

// Open returns the stream's lease table, creating the table if needed.
// table may be schema-qualified ("schema.table").
func Open(ctx context.Context, pool *pgxpool.Pool, schema, table, stream string) (*Table, error) {
	id := pgx.Identifier{table}
	if schema != "" {
		id = pgx.Identifier{schema, table}
	}
	t := &Table{pool: pool, table: id.Sanitize(), stream: stream}
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.table+` (
		stream     text   NOT NULL,
		shard      text   NOT NULL,
		owner      text   NOT NULL DEFAULT '',
		counter    bigint NOT NULL DEFAULT 0,
		checkpoint text   NOT NULL DEFAULT '',
		parents    text[] NOT NULL DEFAULT '{}',
		pending    text   NOT NULL DEFAULT '',
		PRIMARY KEY (stream, shard))`)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		err = nil // a concurrent CREATE TABLE IF NOT EXISTS won the race
	}
	if err == nil {
		// Tables made before the column existed.
		_, err = pool.Exec(ctx, `ALTER TABLE `+t.table+` ADD COLUMN IF NOT EXISTS pending text NOT NULL DEFAULT ''`)
	}
	if err != nil {
		return nil, fmt.Errorf("lease table %s: %w", t.table, err)
	}
	return t, nil
}

// Ensure creates the rows of shards that have none (free, no checkpoint):
// the shards found at start and children found at a parent's end. Rows
// that exist are left as they are.
func (t *Table) Ensure(ctx context.Context, shards map[string][]string) error {
	return t.EnsureAt(ctx, shards, "")
}

// EnsureAt is Ensure with checkpoint as the new rows' checkpoint (a
// fleet's starting position, see Fleet).
func (t *Table) EnsureAt(ctx context.Context, shards map[string][]string, checkpoint string) error {
	b := &pgx.Batch{}
	for shard, parents := range shards {
		if parents == nil {
			parents = []string{}
		}
		b.Queue(`INSERT INTO `+t.table+` (stream, shard, parents, checkpoint) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			t.stream, shard, parents, checkpoint)
	}
	if err := t.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("lease table %s: create rows: %w", t.table, err)
	}
	return nil
}

// List returns every lease of the stream, by shard.
func (t *Table) List(ctx context.Context) ([]Lease, error) {
	rows, err := t.pool.Query(ctx, `SELECT shard, owner, counter, checkpoint, pending, parents FROM `+t.table+` WHERE stream = $1 ORDER BY shard`, t.stream)
	if err != nil {
		return nil, fmt.Errorf("lease table %s: list: %w", t.table, err)
	}
	leases, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Lease, error) {
		var l Lease
		err := r.Scan(&l.Shard, &l.Owner, &l.Counter, &l.Checkpoint, &l.Pending, &l.Parents)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("lease table %s: list: %w", t.table, err)
	}
	return leases, nil
}

// update runs a conditional update of one row, matched on its counter, and
// returns the new counter, or ErrLost when the row's counter had moved.
func (t *Table) update(ctx context.Context, op, set string, l Lease, args ...any) (int64, error) {
	var next int64
	all := append([]any{t.stream, l.Shard, l.Counter}, args...)
	err := t.pool.QueryRow(ctx, `UPDATE `+t.table+` SET `+set+`, counter = counter + 1
		WHERE stream = $1 AND shard = $2 AND counter = $3 RETURNING counter`, all...).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%s shard %s at counter %d: %w", op, l.Shard, l.Counter, ErrLost)
	}
	if err != nil {
		return 0, fmt.Errorf("lease table %s: %s shard %s: %w", t.table, op, l.Shard, err)
	}
	return next, nil
}

// Take makes owner the holder of l (free, expired, or stolen), if its
// counter is still l.Counter, and returns the new counter.
func (t *Table) Take(ctx context.Context, l Lease, owner string) (int64, error) {
	return t.update(ctx, "take", "owner = $4", l, owner)
}

// Renew keeps owner's lease l alive: its counter moves, which the other
// workers see as life.
func (t *Table) Renew(ctx context.Context, l Lease, owner string) (int64, error) {
	return t.update(ctx, "renew", "owner = $4", l, owner)
}

// Checkpoint records seq (or Finished) as l's checkpoint, only while owner
// still holds l at l.Counter: a worker that lost the lease cannot move the
// checkpoint of the one that took it.
func (t *Table) Checkpoint(ctx context.Context, l Lease, owner, seq string) (int64, error) {
	return t.update(ctx, "checkpoint", "owner = $4, checkpoint = $5", l, owner, seq)
}

// Intend records seq as the last sequence number owner is about to
// buffer from l's shard, only while owner holds l at l.Counter.
func (t *Table) Intend(ctx context.Context, l Lease, owner, seq string) (int64, error) {
	return t.update(ctx, "intend", "owner = $4, pending = $5", l, owner, seq)
}

// Release gives l up (at shutdown, or when rebalancing), so another
// worker can take it without waiting for it to expire.
func (t *Table) Release(ctx context.Context, l Lease) (int64, error) {
	return t.update(ctx, "release", "owner = ''", l)
}

// Watch judges expiry: a lease whose counter has not changed for the
// lease duration, by this worker's clock, has expired.
type Watch struct {
	Duration time.Duration
	now      func() time.Time
	seen     map[string]seen
}

type seen struct {
	counter int64
	at      time.Time
}

// NewWatch judges with leases of duration d.
func NewWatch(d time.Duration) *Watch {
	return &Watch{Duration: d, now: time.Now, seen: map[string]seen{}}
}

// Expired notes the counters of leases (a List) and returns those free or
// not renewed for the lease duration since this worker first saw their
// current counter. A lease seen for the first time is not expired: its
// holder gets a full duration from now.
func (w *Watch) Expired(leases []Lease) []Lease {
	now := w.now()
	var out []Lease
	for _, l := range leases {
		s, ok := w.seen[l.Shard]
		if !ok || s.counter != l.Counter {
			s = seen{counter: l.Counter, at: now}
			w.seen[l.Shard] = s
		}
		if l.Owner == "" || now.Sub(s.at) >= w.Duration {
			out = append(out, l)
		}
	}
	return out
}
