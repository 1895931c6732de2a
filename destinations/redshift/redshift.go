package redshift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-dev/sluice/destinations/internal/pgload"
	"github.com/sluice-dev/sluice/destinations/object/s3store"
	"github.com/sluice-dev/sluice/pipeline"
)

// Error codes and the error output type of refused records.
const (
	// CodeInvalidRecord: the record is not a JSON object in UTF-8; it is
	// not staged.
	CodeInvalidRecord = "Redshift.InvalidRecord"
	// CodeDataLoadFailed: the COPY failed on the data (Redshift's XX000
	// "Load into table … failed. Check 'stl_load_errors' …").
	CodeDataLoadFailed = "Redshift.DataLoadFailed"
	// CodePrefix prefixes the codes of failed loads (Redshift.TableNotFound,
	// Redshift.ColumnMismatch, Redshift.IncorrectCopyOptions,
	// Redshift.AuthenticationFailed, Redshift.ConnectionFailed, ...; see
	// pgload.Code).
	CodePrefix = "Redshift"
	// OutputType is the error output folder of refused records.
	OutputType = "redshift-failed"
	// Kind is the destination type, the metrics' destination label.
	Kind = "redshift"
)

const (
	// abandonLookup bounds Abandon's look at the ledger.
	abandonLookup = 10 * time.Second
)

// Destination loads batches into a Redshift table through S3: it stages
// each batch as one GZIP object and a manifest, then runs COPY … MANIFEST
// in one transaction with the batch's ledger entry.
type Destination struct {
	cfg     Config
	stream  string
	pool    *pgxpool.Pool
	store   *s3store.Store
	ledger  *pgload.Ledger
	metrics *pgload.Stream
	log     *slog.Logger

	setupMu sync.Mutex
	setUp   bool // the ledger exists

	// tableErr is the last table-level error (missing table or column,
	// authentication, a failed COPY...), reported by Ready until a load
	// succeeds.
	tableErr atomic.Pointer[error]

	stop   context.CancelFunc
	done   chan struct{}
	closed atomic.Bool
}

var (
	_ pipeline.Destination = (*Destination)(nil)
	_ pipeline.Abandoner   = (*Destination)(nil)
)

// New builds the destination of stream from a compiled configuration: it
// reads the secret files, builds the connection pool and the S3 client,
// without connecting (a cluster or bucket that is down at start is
// retried by deliveries and reported by Ready).
func New(ctx context.Context, cfg *Config, stream string, deps pipeline.Deps) (*Destination, error) {
	if cfg == nil {
		return nil, errors.New("redshift destination: nil Config (use Compile)")
	}
	if stream == "" {
		return nil, errors.New("redshift destination: empty stream name")
	}
	m, err := pgload.NewMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("redshift destination %s: %w", stream, err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("destination", Kind, "stream", stream, "table", cfg.table.Sanitize())
	store, err := s3store.New(ctx, cfg.store, log)
	if err != nil {
		return nil, fmt.Errorf("redshift destination %s: staging: %w", stream, err)
	}
	pool, err := cfg.conn.Open(ctx, pgload.OpenOptions{SimpleProtocol: true, AppName: "sluice/" + stream})
	if err != nil {
		_ = store.Close(ctx)
		return nil, fmt.Errorf("redshift destination %s: %w", stream, err)
	}
	pctx, stop := context.WithCancel(context.Background())
	d := &Destination{
		cfg:     *cfg,
		stream:  stream,
		pool:    pool,
		store:   store,
		ledger:  pgload.NewLedger(cfg.ledger, pgload.Redshift),
		metrics: m.For(stream, Kind),
		log:     log,
		stop:    stop,
		done:    make(chan struct{}),
	}
	go func() {
		defer close(d.done)
		d.ledger.PruneLoop(pctx, d.pool, d.stream, d.cfg.retention, d.log, d.cfg.scrub)
	}()
	return d, nil
}

// staged is what of a batch is staged: the indices of its loadable
// records, the records refused, the batch's ledger key and object keys.
type staged struct {
	valid    []int
	rejected []pipeline.RecordError
	key      string // ledger key
	keys     keys
}

// plan sorts b's records into loadable and refused, and names the batch.
func (d *Destination) plan(b pipeline.Batch) staged {
	var s staged
	var oldest time.Time
	for i := range b.Records {
		r := &b.Records[i]
		if err := checkRecord(r.Data); err != nil {
			s.rejected = append(s.rejected, pipeline.RecordError{Index: i,
				Err: &pipeline.CodedError{Code: CodeInvalidRecord, OutputType: OutputType, Err: err}})
			continue
		}
		if len(s.valid) == 0 || r.Arrived.Before(oldest) {
			oldest = r.Arrived
		}
		s.valid = append(s.valid, i)
	}
	if len(s.valid) > 0 {
		s.key = pgload.BatchKey(b.ID, b.Records[s.valid[0]].ID)
		s.keys = d.cfg.keys(d.stream, b.ID, oldest)
	}
	return s
}

// Deliver loads b's records (see the package documentation for the
// order of the steps). Records that are not JSON objects are reported in
// a *pipeline.PartialError, permanent (dead-lettered); the others load
// exactly once. Every failure of the load itself is retryable.
func (d *Destination) Deliver(ctx context.Context, b pipeline.Batch) error {
	if d.closed.Load() {
		return fmt.Errorf("redshift destination %s: %w", d.stream, pipeline.ErrClosed)
	}
	if len(b.Records) == 0 {
		return nil
	}
	s := d.plan(b)
	if len(s.valid) == 0 {
		d.metrics.Rejected("mapping", len(s.rejected))
		return &pipeline.PartialError{Failed: s.rejected}
	}
	if err := d.setup(ctx); err != nil {
		return d.failed(ctx, b, s, err)
	}
	// A batch the ledger shows loaded is not staged again.
	loaded, err := d.loaded(ctx, s.key)
	if err != nil {
		return d.failed(ctx, b, s, err)
	}
	if !loaded {
		if err := d.stageData(ctx, s.keys.data, b.Records, s.valid); err != nil {
			return d.stagingFailed(ctx, b, s, "staging the data", err)
		}
		if err := d.putSmall(ctx, s.keys.manifest, d.cfg.ManifestJSON(s.keys.data)); err != nil {
			return d.stagingFailed(ctx, b, s, "writing the manifest", err)
		}
		skipped, rows, err := d.load(ctx, s)
		if err != nil {
			return d.failed(ctx, b, s, err)
		}
		loaded = skipped
		if !skipped && rows != int64(len(s.valid)) {
			// MAXERROR in copy_options lets COPY skip rows; they are in
			// stl_load_errors, not reported here.
			d.log.LogAttrs(ctx, slog.LevelWarn, "COPY loaded fewer rows than staged (see stl_load_errors)",
				slog.String("batch", s.key), slog.Int64("rows", rows), slog.Int("staged", len(s.valid)))
		}
	}
	d.tableErr.Store(nil)
	if loaded {
		d.metrics.LedgerSkip()
		d.log.LogAttrs(ctx, slog.LevelInfo, "batch already loaded (load ledger); skipped", slog.String("batch", s.key))
	} else if len(s.rejected) > 0 {
		d.metrics.Rejected("mapping", len(s.rejected)) // once, with the load
	}
	if len(s.rejected) > 0 {
		return &pipeline.PartialError{Failed: s.rejected}
	}
	return nil
}

// load runs the batch's transaction: BEGIN; claim the batch in the
// ledger (LOCK, look up, insert); COPY; SELECT pg_last_copy_count();
// record the outcome; COMMIT. It reports whether the ledger already had
// the batch (a concurrent or earlier load committed it) and the rows
// loaded.
func (d *Destination) load(ctx context.Context, s staged) (skipped bool, rows int64, err error) {
	target := d.cfg.table.Sanitize()
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("beginning the transaction: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx) // after Commit: a no-op
	}()
	prev, err := d.ledger.Claim(ctx, tx, d.stream, target, s.key)
	if err != nil {
		return false, 0, err
	}
	if prev != nil {
		return true, prev.Rows, nil
	}
	url := d.cfg.URL(s.keys.manifest)
	d.log.LogAttrs(ctx, slog.LevelDebug, "COPY", slog.String("batch", s.key), slog.String("sql", d.cfg.RedactedCopySQL(url)))
	if _, err := tx.Exec(ctx, d.cfg.CopySQL(url)); err != nil {
		return false, 0, &copyError{err: err, sql: d.cfg.RedactedCopySQL(url)}
	}
	if err := tx.QueryRow(ctx, "SELECT pg_last_copy_count()").Scan(&rows); err != nil {
		return false, 0, fmt.Errorf("reading the COPY's row count: %w", err)
	}
	if err := d.ledger.Finish(ctx, tx, d.stream, target, s.key, pgload.Entry{Rows: rows}); err != nil {
		return false, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		// The outcome is unknown when the answer was lost: the batch is
		// retried, and the ledger tells whether it committed.
		return false, 0, fmt.Errorf("committing: %w", err)
	}
	return false, rows, nil
}

// copyError is a failed COPY, with the statement (redacted) for the
// message.
type copyError struct {
	err error
	sql string
}

func (e *copyError) Error() string { return e.err.Error() + " (" + e.sql + ")" }
func (e *copyError) Unwrap() error { return e.err }

// loaded reports whether the ledger shows the batch loaded.
func (d *Destination) loaded(ctx context.Context, key string) (bool, error) {
	e, err := d.ledger.Loaded(ctx, d.pool, d.stream, d.cfg.table.Sanitize(), key)
	return e != nil, err
}

// stagingFailed wraps an S3 error, keeping the store's classification
// (retryable or not, its S3.* code).
func (d *Destination) stagingFailed(ctx context.Context, b pipeline.Batch, s staged, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("redshift destination %s: batch %v: %s: %w", d.stream, b.ID, what, cerr)
	}
	d.metrics.LoadError(pgload.Transient, codeOf(err))
	d.log.LogAttrs(ctx, slog.LevelDebug, "staging failed", slog.String("batch", b.ID.String()), slog.String("error", err.Error()))
	return d.withRejected(s, fmt.Errorf("redshift destination %s: batch %v: %s: %w", d.stream, b.ID, what, err))
}

// failed classifies a failed load for the runner: every failure is
// retried within the stream's retry duration, as Firehose retries every
// Redshift failure; table-level ones (missing table or column, refused
// credentials, a COPY that failed on the data) are also reported by Ready.
func (d *Destination) failed(ctx context.Context, b pipeline.Batch, s staged, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("redshift destination %s: batch %v: %w", d.stream, b.ID, cerr)
	}
	class, pe := pgload.Classify(err)
	code := pgload.Code(CodePrefix, err)
	msg := err.Error()
	if pe != nil {
		if pe.Code == "XX000" && strings.Contains(pe.Message, "stl_load_errors") {
			code = CodeDataLoadFailed
		}
		msg = pgload.Message(pe)
		var ce *copyError
		if errors.As(err, &ce) {
			msg += " (" + ce.sql + ")"
		}
	}
	msg = d.cfg.scrub(msg)
	d.metrics.LoadError(class, code)
	wrapped := fmt.Errorf("redshift destination %s: batch %v: %s", d.stream, b.ID, msg)
	if class == pgload.Table {
		d.tableErr.Store(&wrapped)
		// The ledger may be what is missing (dropped by hand): create it
		// again on the next attempt.
		d.setupMu.Lock()
		d.setUp = false
		d.setupMu.Unlock()
	}
	d.log.LogAttrs(ctx, slog.LevelDebug, "load failed", slog.String("batch", b.ID.String()),
		slog.String("class", class.String()), slog.String("code", code), slog.String("error", msg))
	return d.withRejected(s, &pipeline.RetryableError{Err: &pipeline.CodedError{Code: code, OutputType: pipeline.OutputDeliveryFailed, Err: wrapped}})
}

// withRejected returns err for the batch, or, when records were refused,
// a *pipeline.PartialError with the refused records (permanent) and every
// other record failed with err: the runner retries those alone, as the
// next round of the batch.
func (d *Destination) withRejected(s staged, err error) error {
	if len(s.rejected) == 0 {
		return err
	}
	failed := append([]pipeline.RecordError(nil), s.rejected...)
	for _, i := range s.valid {
		failed = append(failed, pipeline.RecordError{Index: i, Err: err})
	}
	return &pipeline.PartialError{Failed: failed}
}

// codeOf is the Firehose-style code of an error, if it has one.
func codeOf(err error) string {
	var c pipeline.Coder
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return "S3.WriteFailed"
}

// Abandon is called by the runner when it gives up on b: it writes the
// batch's manifest under errors_prefix in the staging bucket (the data
// object is staged again first, so the manifest always lists an object
// holding exactly b's loadable records), so that an operator can load it
// with COPY … MANIFEST. A batch the ledger shows loaded (a COMMIT whose
// answer was lost) gets no manifest. It is idempotent: the keys derive
// from the batch identity.
func (d *Destination) Abandon(ctx context.Context, b pipeline.Batch, cause error) error {
	s := d.plan(b)
	if len(s.valid) == 0 {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, abandonLookup)
	loaded, err := d.loaded(lctx, s.key)
	cancel()
	switch {
	case err == nil && loaded:
		d.log.LogAttrs(ctx, slog.LevelWarn, "batch given up on is in the load ledger: loaded, no error manifest written",
			slog.String("batch", s.key))
		return nil
	case err != nil:
		// The cluster is likely what failed: write the manifest anyway.
		d.log.LogAttrs(ctx, slog.LevelDebug, "abandon: the load ledger cannot be read", slog.String("error", d.cfg.scrub(err.Error())))
	}
	if err := d.stageData(ctx, s.keys.data, b.Records, s.valid); err != nil {
		return fmt.Errorf("redshift destination %s: batch %v given up: staging the data: %w", d.stream, b.ID, err)
	}
	if err := d.putSmall(ctx, s.keys.errors, d.cfg.ManifestJSON(s.keys.data)); err != nil {
		return fmt.Errorf("redshift destination %s: batch %v given up: writing the error manifest: %w", d.stream, b.ID, err)
	}
	reason := ""
	if cause != nil {
		reason = d.cfg.scrub(cause.Error())
	}
	d.log.LogAttrs(ctx, slog.LevelWarn, "batch given up on; its manifest is under the errors prefix for a manual COPY",
		slog.String("batch", s.key), slog.String("manifest", d.cfg.URL(s.keys.errors)), slog.String("cause", reason))
	return nil
}

// setup creates the ledger once (again after a failure).
func (d *Destination) setup(ctx context.Context) error {
	d.setupMu.Lock()
	defer d.setupMu.Unlock()
	if d.setUp {
		return nil
	}
	if err := d.ledger.Ensure(ctx, d.pool); err != nil {
		return err
	}
	d.setUp = true
	return nil
}

// Limits: none of the destination's own; a batch is one object and one
// COPY.
func (d *Destination) Limits() pipeline.Limits { return pipeline.Limits{} }

// Ready pings the cluster, checks the staging bucket (HeadBucket) and
// reports the last table-level error until a load succeeds.
func (d *Destination) Ready(ctx context.Context) error {
	if err := pgload.Ping(ctx, d.pool, "redshift", d.cfg.scrub); err != nil {
		return err
	}
	if err := d.store.Ready(ctx); err != nil {
		return fmt.Errorf("redshift staging bucket: %w", err)
	}
	if e := d.tableErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Close stops the ledger pruning and closes the pool's connections and
// the S3 client's.
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
	return d.store.Close(ctx)
}

// Format prints the destination without secrets.
func (d *Destination) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "redshift destination %s: %v", d.stream, d.cfg)
}
