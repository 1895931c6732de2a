package postgres

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/destinations/internal/pgload"
)

// A load is one transaction:
//
//	BEGIN
//	SET CONSTRAINTS ALL IMMEDIATE      -- deferred constraints fail at their row, not at COMMIT
//	INSERT INTO ledger … ON CONFLICT DO NOTHING   -- claim the batch, or find it loaded
//	SAVEPOINT; COPY rows; RELEASE      -- insert mode
//	(upsert: COPY into a temporary stage, then INSERT … SELECT DISTINCT ON (keys) … ON CONFLICT (keys) DO UPDATE)
//	UPDATE ledger SET rows, rejected
//	COMMIT
//
// A load whose rows include bad ones (SQLSTATE class 22 or 23) rolls back
// to the savepoint and loads the rows again in parts, each in its own
// savepoint, until every bad row is alone: the good rows commit once, with
// the ledger entry, and the bad ones are reported. When the server says
// which COPY line failed, the parts are the rows before it, the row, and
// the rows after it; otherwise halves (bisection).

// stageTable is the temporary table of an upsert, dropped at commit.
const (
	stageTable  = "sluice_stage"
	stageOrdCol = "_sluice_ord"
)

// loadResult is the outcome of a load.
type loadResult struct {
	skipped bool // the ledger had the batch: nothing was loaded now
	entry   pgload.Entry
}

// load runs one batch's transaction. refused are the records refused
// before the load (not mappable): the ledger keeps them with the rows the
// server refuses.
func (d *Destination) load(ctx context.Context, key, target string, rows []row, refused []pgload.Rejection) (loadResult, error) {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return loadResult{}, fmt.Errorf("beginning the transaction: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx) // after Commit: a no-op
	}()
	if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL IMMEDIATE"); err != nil {
		return loadResult{}, fmt.Errorf("setting constraints immediate: %w", err)
	}
	prev, err := d.ledger.Claim(ctx, tx, d.stream, target, key)
	if err != nil {
		return loadResult{}, err
	}
	if prev != nil {
		return loadResult{skipped: true, entry: *prev}, nil
	}
	l := loader{d: d, tx: tx}
	if d.cfg.upsert {
		if err := l.createStage(ctx); err != nil {
			return loadResult{}, err
		}
	}
	rejected, n, err := l.isolate(ctx, rows, true)
	if err != nil {
		return loadResult{}, err
	}
	all := append(slices.Clone(refused), rejected...)
	slices.SortFunc(all, func(a, b pgload.Rejection) int { return a.Index - b.Index })
	entry := pgload.Entry{Rows: n, Rejected: all}
	if err := d.ledger.Finish(ctx, tx, d.stream, target, key, entry); err != nil {
		return loadResult{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		// The outcome is unknown when the answer was lost: the batch is
		// retried, and the ledger tells whether it committed.
		return loadResult{}, fmt.Errorf("committing: %w", err)
	}
	return loadResult{entry: entry}, nil
}

// loader loads the rows of one transaction.
type loader struct {
	d  *Destination
	tx pgx.Tx
}

// isolate loads rows in a savepoint; when the server refuses a row it
// rolls back to the savepoint and loads the rows again in parts. It
// returns the rows refused and the number of rows loaded; any error that
// is not about particular rows fails the whole load.
func (l *loader) isolate(ctx context.Context, rows []row, first bool) ([]pgload.Rejection, int64, error) {
	if len(rows) == 0 {
		return nil, 0, nil
	}
	if !first {
		l.d.metrics.IsolationLoad()
	}
	sp, err := l.tx.Begin(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("savepoint: %w", err)
	}
	lerr := l.loadChunk(ctx, sp, rows)
	if lerr == nil {
		if err := sp.Commit(ctx); err != nil {
			return nil, 0, fmt.Errorf("releasing the savepoint: %w", err)
		}
		return nil, int64(len(rows)), nil
	}
	class, pe := pgload.Classify(lerr)
	if class != pgload.Rows || ctx.Err() != nil {
		_ = sp.Rollback(ctx)
		return nil, 0, lerr
	}
	if err := sp.Rollback(ctx); err != nil {
		return nil, 0, fmt.Errorf("%w (then rolling back to the savepoint: %v)", lerr, err)
	}
	if len(rows) == 1 {
		return []pgload.Rejection{{Index: rows[0].index, Code: CodeDataLoadFailed, SQLState: pe.Code, Message: pgload.Message(pe)}}, 0, nil
	}
	var (
		rejected []pgload.Rejection
		loaded   int64
	)
	for _, part := range split(rows, copyLine(pe.Where)) {
		r, n, err := l.isolate(ctx, part, false)
		if err != nil {
			return nil, 0, err
		}
		rejected = append(rejected, r...)
		loaded += n
	}
	return rejected, loaded, nil
}

// copyLineRE finds the row a COPY error is about in the error's context
// ("COPY events, line 3, column n: ...").
var copyLineRE = regexp.MustCompile(`COPY [^,]+, line (\d+)`)

// copyLine is the 1-based COPY line of an error's context, or 0.
func copyLine(where string) int {
	m := copyLineRE.FindStringSubmatch(where)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0
	}
	return n
}

// split divides rows to isolate a bad one: around line (1-based) when the
// server named it, else in halves.
func split(rows []row, line int) [][]row {
	if line >= 1 && line <= len(rows) {
		parts := [][]row{rows[:line-1], rows[line-1 : line], rows[line:]}
		out := parts[:0]
		for _, p := range parts {
			if len(p) > 0 {
				out = append(out, p)
			}
		}
		return out
	}
	h := len(rows) / 2
	return [][]row{rows[:h], rows[h:]}
}

// loadChunk loads rows in tx (a savepoint).
func (l *loader) loadChunk(ctx context.Context, tx pgx.Tx, rows []row) error {
	cfg := &l.d.cfg
	if !cfg.upsert {
		n, err := tx.CopyFrom(ctx, cfg.table, cfg.columns, &rowSource{rows: rows})
		if err != nil {
			return err
		}
		if n != int64(len(rows)) {
			return fmt.Errorf("COPY loaded %d rows of %d", n, len(rows))
		}
		return nil
	}
	cols := append(append([]string(nil), cfg.columns...), stageOrdCol)
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{stageTable}, cols, &rowSource{rows: rows, ord: true}); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, l.upsertSQL()); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "TRUNCATE "+pgx.Identifier{stageTable}.Sanitize())
	return err
}

// createStage creates the upsert's stage: a temporary table like the
// target's (its defaults and NOT NULLs) plus the records' order.
func (l *loader) createStage(ctx context.Context) error {
	stage := pgx.Identifier{stageTable}.Sanitize()
	if _, err := l.tx.Exec(ctx, "CREATE TEMPORARY TABLE "+stage+" (LIKE "+l.d.cfg.table.Sanitize()+" INCLUDING DEFAULTS) ON COMMIT DROP"); err != nil {
		return fmt.Errorf("creating the upsert stage: %w", err)
	}
	if _, err := l.tx.Exec(ctx, "ALTER TABLE "+stage+" ADD COLUMN "+pgx.Identifier{stageOrdCol}.Sanitize()+" bigint NOT NULL"); err != nil {
		return fmt.Errorf("creating the upsert stage: %w", err)
	}
	return nil
}

// upsertSQL moves the stage into the target: one row per key, the last
// record's (duplicates of a key inside a batch would otherwise make ON
// CONFLICT DO UPDATE fail with "cannot affect row a second time").
func (l *loader) upsertSQL() string {
	cfg := &l.d.cfg
	cols, keys := quoteList(cfg.columns), quoteList(cfg.keys)
	var set []string
	for _, c := range cfg.columns {
		if !containsName(cfg.keys, c) {
			q := pgx.Identifier{c}.Sanitize()
			set = append(set, q+" = EXCLUDED."+q)
		}
	}
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	return "INSERT INTO " + cfg.table.Sanitize() + " (" + cols + ") SELECT DISTINCT ON (" + keys + ") " + cols +
		" FROM " + pgx.Identifier{stageTable}.Sanitize() + " ORDER BY " + keys + ", " + pgx.Identifier{stageOrdCol}.Sanitize() +
		" DESC ON CONFLICT (" + keys + ") " + action
}

// rowSource is a pgx.CopyFromSource over rows; with ord, each row ends
// with its index in the batch (the upsert's order).
type rowSource struct {
	rows []row
	i    int
	ord  bool
	buf  []any
}

func (s *rowSource) Next() bool {
	s.i++
	return s.i <= len(s.rows)
}

func (s *rowSource) Values() ([]any, error) {
	r := s.rows[s.i-1]
	if !s.ord {
		return r.values, nil
	}
	s.buf = append(append(s.buf[:0], r.values...), int64(r.index))
	return s.buf, nil
}

func (s *rowSource) Err() error { return nil }
