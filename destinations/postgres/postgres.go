package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-dev/sluice/destinations/internal/pgload"
	"github.com/sluice-dev/sluice/pipeline"
)

// Error codes written into dead letters (after Firehose's Redshift codes)
// and the error output type of rejected rows.
const (
	// CodeDataLoadFailed: the database refused the row (SQLSTATE class 22
	// or 23, or 54000); the message has the SQLSTATE and the server's text.
	CodeDataLoadFailed = "Postgres.DataLoadFailed"
	// CodeInvalidRecord: the record could not be mapped to a row (not
	// JSON, a value of the wrong type); the database never saw it.
	CodeInvalidRecord = "Postgres.InvalidRecord"
	// CodePrefix prefixes the codes of failed loads (Postgres.TableNotFound,
	// Postgres.ConnectionFailed, ...; see pgload.Code).
	CodePrefix = "Postgres"
	// OutputType is the error output folder of rejected rows.
	OutputType = "postgres-failed"
	// Kind is the destination type, the metrics' destination label.
	Kind = "postgres"
)

// Destination loads batches into a Postgres table.
type Destination struct {
	cfg     Config
	stream  string
	pool    *pgxpool.Pool
	ledger  *pgload.Ledger
	metrics *pgload.Stream
	log     *slog.Logger

	setupMu sync.Mutex
	setUp   bool // the ledger (and the table, with create_table) exist

	// tableErr is the last table-level error (missing table or column,
	// authentication...), reported by Ready until a load succeeds.
	tableErr atomic.Pointer[error]

	stop   context.CancelFunc
	done   chan struct{}
	closed atomic.Bool
}

var _ pipeline.Destination = (*Destination)(nil)

// New builds the destination of stream from a compiled configuration: it
// reads the secret files and makes the connection pool, without
// connecting (a database that is down at start is retried by deliveries
// and reported by Ready).
func New(ctx context.Context, cfg *Config, stream string, deps pipeline.Deps) (*Destination, error) {
	if cfg == nil {
		return nil, errors.New("postgres destination: nil Config (use Compile)")
	}
	if stream == "" {
		return nil, errors.New("postgres destination: empty stream name")
	}
	m, err := pgload.NewMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("postgres destination %s: %w", stream, err)
	}
	pool, err := cfg.conn.Open(ctx, pgload.OpenOptions{AppName: "sluice/" + stream})
	if err != nil {
		return nil, fmt.Errorf("postgres destination %s: %w", stream, err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pctx, stop := context.WithCancel(context.Background())
	d := &Destination{
		cfg:     *cfg,
		stream:  stream,
		pool:    pool,
		ledger:  pgload.NewLedger(cfg.ledger, pgload.Postgres),
		metrics: m.For(stream, Kind),
		log:     log.With("destination", Kind, "stream", stream, "table", cfg.table.Sanitize()),
		stop:    stop,
		done:    make(chan struct{}),
	}
	go func() {
		defer close(d.done)
		d.ledger.PruneLoop(pctx, d.pool, d.stream, d.cfg.retention, d.log, nil)
	}()
	return d, nil
}

// Deliver loads b's records in one transaction with the batch's ledger
// entry. A batch found in the ledger was loaded before and is skipped.
// Rows the database refuses are isolated and reported in a
// *pipeline.PartialError (permanent: they are dead-lettered); the other
// rows load exactly once.
func (d *Destination) Deliver(ctx context.Context, b pipeline.Batch) error {
	if d.closed.Load() {
		return fmt.Errorf("postgres destination %s: %w", d.stream, pipeline.ErrClosed)
	}
	if len(b.Records) == 0 {
		return nil
	}
	if err := d.setup(ctx); err != nil {
		return d.failed(ctx, b, err)
	}
	rows, rejected := d.rows(b.Records)
	key := pgload.BatchKey(b.ID, b.Records[0].ID)
	target := d.cfg.table.Sanitize()
	res, err := d.load(ctx, key, target, rows, rejected)
	if err != nil {
		return d.failed(ctx, b, err)
	}
	d.tableErr.Store(nil)
	if res.skipped {
		d.metrics.LedgerSkip()
		d.log.LogAttrs(ctx, slog.LevelInfo, "batch already loaded (load ledger); skipped",
			slog.String("batch", key), slog.Int64("rows", res.entry.Rows))
		return partial(res.entry.Rejected)
	}
	all := res.entry.Rejected
	for _, r := range all {
		class := "mapping"
		if r.SQLState != "" {
			class = r.SQLState[:2]
		}
		d.metrics.Rejected(class, 1)
	}
	return partial(all)
}

// row is one record's values, with its index in the batch.
type row struct {
	index  int
	values []any
}

// rows maps records to rows; records that cannot be mapped are rejected.
func (d *Destination) rows(recs []pipeline.Record) ([]row, []pgload.Rejection) {
	rows := make([]row, 0, len(recs))
	var rejected []pgload.Rejection
	n := len(d.cfg.columns)
	values := make([]any, 0, n*len(recs))
	for i := range recs {
		start := len(values)
		v, err := d.cfg.mapping.Row(recs[i].Data, values)
		if err != nil {
			values = values[:start]
			rejected = append(rejected, pgload.Rejection{Index: i, Code: CodeInvalidRecord, Message: err.Error()})
			continue
		}
		values = v
		if d.cfg.recordID != "" {
			values = append(values, recs[i].ID)
		}
		if d.cfg.arrival != "" {
			values = append(values, recs[i].Arrived)
		}
		rows = append(rows, row{index: i, values: values[start:len(values):len(values)]})
	}
	return rows, rejected
}

// partial reports rejected rows as permanent failures.
func partial(rejected []pgload.Rejection) error {
	if len(rejected) == 0 {
		return nil
	}
	pe := &pipeline.PartialError{Failed: make([]pipeline.RecordError, len(rejected))}
	for i, r := range rejected {
		pe.Failed[i] = pipeline.RecordError{Index: r.Index,
			Err: &pipeline.CodedError{Code: r.Code, OutputType: OutputType, Err: errors.New(r.Message)}}
	}
	return pe
}

// failed classifies a failed load for the runner: every failure of a
// whole load is retried (within the stream's retry duration); a
// table-level one is also reported by Ready.
func (d *Destination) failed(ctx context.Context, b pipeline.Batch, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("postgres destination %s: batch %v: %w", d.stream, b.ID, cerr)
	}
	class, pe := pgload.Classify(err)
	code := pgload.Code(CodePrefix, err)
	d.metrics.LoadError(class, code)
	msg := err.Error()
	if pe != nil {
		msg = pgload.Message(pe)
	}
	wrapped := fmt.Errorf("postgres destination %s: batch %v: %s", d.stream, b.ID, msg)
	if class == pgload.Table {
		d.tableErr.Store(&wrapped)
	}
	d.log.LogAttrs(ctx, slog.LevelDebug, "load failed", slog.String("batch", b.ID.String()),
		slog.String("class", class.String()), slog.String("code", code), slog.String("error", msg))
	return &pipeline.RetryableError{Err: &pipeline.CodedError{Code: code, OutputType: pipeline.OutputDeliveryFailed, Err: wrapped}}
}

// setup creates the ledger and, with create_table, the schema and table,
// once (again after a failure).
func (d *Destination) setup(ctx context.Context) error {
	d.setupMu.Lock()
	defer d.setupMu.Unlock()
	if d.setUp {
		return nil
	}
	if d.cfg.createTable {
		for _, stmt := range d.createStatements() {
			if _, err := d.pool.Exec(ctx, stmt); err != nil {
				var pe *pgconn.PgError
				if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07" || pe.Code == "42P06") {
					continue // created concurrently
				}
				return fmt.Errorf("creating %s: %w", d.cfg.table.Sanitize(), err)
			}
		}
	}
	if err := d.ledger.Ensure(ctx, d.pool); err != nil {
		return err
	}
	d.setUp = true
	return nil
}

// createStatements create the target's schema and table from the mapping
// (create_table).
func (d *Destination) createStatements() []string {
	defs := d.cfg.mapping.ColumnDDL()
	if d.cfg.recordID != "" {
		defs = append(defs, pgx.Identifier{d.cfg.recordID}.Sanitize()+" text NOT NULL UNIQUE")
	}
	if d.cfg.arrival != "" {
		defs = append(defs, pgx.Identifier{d.cfg.arrival}.Sanitize()+" timestamptz NOT NULL")
	}
	if d.cfg.upsert {
		defs = append(defs, "UNIQUE ("+quoteList(d.cfg.keys)+")")
	}
	stmts := []string{"CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{d.cfg.table[0]}.Sanitize()}
	if d.cfg.ledger[0] != d.cfg.table[0] {
		stmts = append(stmts, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{d.cfg.ledger[0]}.Sanitize())
	}
	return append(stmts, "CREATE TABLE IF NOT EXISTS "+d.cfg.table.Sanitize()+" (\n\t"+strings.Join(defs, ",\n\t")+")")
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// Limits: none of the destination's own; a batch is one transaction.
func (d *Destination) Limits() pipeline.Limits { return pipeline.Limits{} }

// Ready pings the database and reports the last table-level error (a
// missing table or column, refused credentials) until a load succeeds.
func (d *Destination) Ready(ctx context.Context) error {
	if err := pgload.Ping(ctx, d.pool, "postgres", nil); err != nil {
		return err
	}
	if e := d.tableErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Close stops the ledger pruning and closes the pool's connections.
func (d *Destination) Close(ctx context.Context) error {
	if d.closed.Swap(true) {
		return nil
	}
	d.stop()
	select {
	case <-d.done:
	case <-ctx.Done():
	}
	d.pool.Close()
	return nil
}

// Format prints the destination without secrets.
func (d *Destination) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "postgres destination %s: %v", d.stream, d.cfg)
}
