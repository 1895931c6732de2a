package pgload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Dialect is the SQL a ledger speaks.
type Dialect int

const (
	// Postgres claims a batch with INSERT … ON CONFLICT DO NOTHING: loads
	// of different batches run concurrently; two loads of the same batch
	// wait on the primary key, and the second sees the first's outcome.
	Postgres Dialect = iota
	// Redshift has no ON CONFLICT and does not enforce primary keys: a
	// claim locks the ledger table (LOCK), so loads of one ledger are
	// serialised, as Redshift serialises COPYs into one table anyway.
	Redshift
)

func (d Dialect) String() string {
	if d == Redshift {
		return "redshift"
	}
	return "postgres"
}

// DefaultLedgerTable is the ledger's name in the target table's schema.
const DefaultLedgerTable = "sluice_load_ledger"

// Ledger is the load ledger: one row per batch loaded, keyed by (stream,
// target table, batch key), written in the same transaction as the
// batch's rows. A batch delivered again (after a crash, or after a COMMIT
// whose answer was lost) finds its row and is skipped: the rows load
// exactly once. The row also keeps the batch's rejected rows, so that a
// skipped redelivery reports them again and they are dead-lettered (the
// error output's writes are idempotent) rather than forgotten.
type Ledger struct {
	table   pgx.Identifier
	dialect Dialect
}

// NewLedger returns the ledger in table (schema, name).
func NewLedger(table pgx.Identifier, d Dialect) *Ledger {
	return &Ledger{table: table, dialect: d}
}

// Table is the ledger's qualified name.
func (l *Ledger) Table() pgx.Identifier { return l.table }

// Rejection is a row of a batch that did not load.
type Rejection struct {
	Index    int    `json:"i"`
	Code     string `json:"c"`
	SQLState string `json:"s,omitempty"`
	Message  string `json:"m"`
}

// Entry is what the ledger keeps of a loaded batch.
type Entry struct {
	Rows     int64
	Rejected []Rejection
}

// CreateSQL is the ledger's CREATE TABLE IF NOT EXISTS statement.
func (l *Ledger) CreateSQL() string {
	text, bigint := "text", "bigint"
	if l.dialect == Redshift {
		text = "varchar(65535)"
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	stream varchar(256) NOT NULL,
	target varchar(512) NOT NULL,
	batch varchar(512) NOT NULL,
	rows %s NOT NULL,
	rejected %s,
	loaded_at timestamptz NOT NULL,
	PRIMARY KEY (stream, target, batch))`, l.table.Sanitize(), bigint, text)
}

// Ensure creates the ledger table if it is missing. Two processes racing
// to create it is not an error.
func (l *Ledger) Ensure(ctx context.Context, db interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}) error {
	_, err := db.Exec(ctx, l.CreateSQL())
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07") {
		return nil // created concurrently
	}
	if err != nil {
		return fmt.Errorf("creating the load ledger %s: %w", l.table.Sanitize(), err)
	}
	return nil
}

// Claim records, in tx, that the batch is being loaded. It returns nil
// when the batch is new (load it, then Finish in the same transaction),
// or the entry of the earlier load that committed (skip the load: the
// rows are there).
func (l *Ledger) Claim(ctx context.Context, tx pgx.Tx, stream, target, batch string) (*Entry, error) {
	t := l.table.Sanitize()
	if l.dialect == Redshift {
		if _, err := tx.Exec(ctx, "LOCK "+t); err != nil {
			return nil, fmt.Errorf("locking the load ledger: %w", err)
		}
		prev, err := l.lookup(ctx, tx, stream, target, batch)
		if err != nil || prev != nil {
			return prev, err
		}
		_, err = tx.Exec(ctx, "INSERT INTO "+t+" (stream, target, batch, rows, loaded_at) VALUES ($1, $2, $3, -1, $4)",
			stream, target, batch, time.Now().UTC())
		if err != nil {
			return nil, fmt.Errorf("claiming batch %s in the load ledger: %w", batch, err)
		}
		return nil, nil
	}
	tag, err := tx.Exec(ctx, "INSERT INTO "+t+" (stream, target, batch, rows, loaded_at) VALUES ($1, $2, $3, -1, $4) ON CONFLICT DO NOTHING",
		stream, target, batch, time.Now().UTC())
	if err != nil {
		return nil, fmt.Errorf("claiming batch %s in the load ledger: %w", batch, err)
	}
	if tag.RowsAffected() == 1 {
		return nil, nil
	}
	prev, err := l.lookup(ctx, tx, stream, target, batch)
	if err == nil && prev == nil {
		err = fmt.Errorf("batch %s: the load ledger neither took the claim nor holds the batch", batch)
	}
	return prev, err
}

// Loaded returns the entry of a batch loaded before, or nil: a look-up in
// db (a pool or a transaction) for a destination that wants to know before
// it does the work of a load (Redshift stages objects only for new
// batches). Claim is what decides, in the load's transaction.
func (l *Ledger) Loaded(ctx context.Context, db interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, stream, target, batch string) (*Entry, error) {
	e, err := l.lookup(ctx, db, stream, target, batch)
	if e != nil && e.Rows < 0 {
		return nil, err // claimed by a load not finished: not loaded
	}
	return e, err
}

func (l *Ledger) lookup(ctx context.Context, tx interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, stream, target, batch string) (*Entry, error) {
	var (
		rows     int64
		rejected *string
	)
	err := tx.QueryRow(ctx, "SELECT rows, rejected FROM "+l.table.Sanitize()+" WHERE stream = $1 AND target = $2 AND batch = $3",
		stream, target, batch).Scan(&rows, &rejected)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading batch %s from the load ledger: %w", batch, err)
	}
	e := &Entry{Rows: rows}
	if rejected != nil && *rejected != "" {
		if err := json.Unmarshal([]byte(*rejected), &e.Rejected); err != nil {
			return nil, fmt.Errorf("batch %s in the load ledger: rejected rows: %w", batch, err)
		}
	}
	return e, nil
}

// Finish records in tx the outcome of the batch claimed by Claim.
func (l *Ledger) Finish(ctx context.Context, tx pgx.Tx, stream, target, batch string, e Entry) error {
	var rejected *string
	if len(e.Rejected) > 0 {
		b, err := json.Marshal(e.Rejected)
		if err != nil {
			return fmt.Errorf("batch %s: encoding rejected rows: %w", batch, err)
		}
		s := string(b)
		rejected = &s
	}
	tag, err := tx.Exec(ctx, "UPDATE "+l.table.Sanitize()+" SET rows = $4, rejected = $5, loaded_at = $6 WHERE stream = $1 AND target = $2 AND batch = $3",
		stream, target, batch, e.Rows, rejected, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("recording batch %s in the load ledger: %w", batch, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("recording batch %s in the load ledger: %d rows updated, want 1", batch, tag.RowsAffected())
	}
	return nil
}

// Prune deletes the entries of stream older than age and returns how
// many. A batch is redelivered only until the daemon has recorded its
// delivery, so entries are needed for a short while; they are kept for
// the configured retention.
func (l *Ledger) Prune(ctx context.Context, db interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}, stream string, age time.Duration) (int64, error) {
	tag, err := db.Exec(ctx, "DELETE FROM "+l.table.Sanitize()+" WHERE stream = $1 AND loaded_at < $2",
		stream, time.Now().UTC().Add(-age))
	if err != nil {
		return 0, fmt.Errorf("pruning the load ledger: %w", err)
	}
	return tag.RowsAffected(), nil
}

// BatchKey is a batch's key in the ledger: the batch identity (range,
// part, round) and the first record's ID. Record IDs carry the buffer's
// log identity, so a buffer that starts again from position zero (a
// memory buffer after a restart, a deleted data directory) never reuses
// the key of an earlier load.
func BatchKey(id fmt.Stringer, firstRecordID string) string {
	return id.String() + "/" + firstRecordID
}

// PruneEvery is how often PruneLoop deletes old entries.
const PruneEvery = time.Hour

// PruneLoop deletes stream's entries older than retention every
// PruneEvery until ctx ends, logging failures (through scrub, which
// removes secrets from a message; nil leaves it as is).
func (l *Ledger) PruneLoop(ctx context.Context, db interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}, stream string, retention time.Duration, log *slog.Logger, scrub func(string) string) {
	t := time.NewTicker(PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := l.Prune(pctx, db, stream, retention)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			msg := err.Error()
			if scrub != nil {
				msg = scrub(msg)
			}
			log.LogAttrs(ctx, slog.LevelWarn, "pruning the load ledger failed", slog.String("error", msg))
		case n > 0:
			log.LogAttrs(ctx, slog.LevelDebug, "pruned the load ledger", slog.Int64("entries", n))
		}
	}
}
