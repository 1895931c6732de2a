package object

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/pipeline"
)

// Kinds of objects, part of the seed their names derive from: a backup
// copy of a batch never takes the name of the batch's data object, even
// in the same store under the same prefix.
const (
	kindData   = prefix.DataKind
	kindBackup = "backup"
)

// Location says where a Writer's store writes, for descriptions, errors
// and logs.
type Location struct {
	// Kind names the destination in errors and logs ("file", "s3") and
	// prefixes the codes of the writer's own errors ("File.EncodingFailed").
	Kind string
	// Code is the error code prefix ("File", "S3").
	Code string
	// BucketARN is Firehose's BucketARN of the store
	// ("arn:aws:s3:::<bucket>").
	BucketARN string
}

// Writer writes a stream's batches, backups and dead letters as objects of
// a Store. It is a pipeline.Destination and a pipeline.ErrorOutput, safe
// for concurrent use.
type Writer struct {
	cfg     *Config
	store   Store
	stream  string
	loc     Location
	log     *slog.Logger
	metrics *prefix.Metrics
	now     func() time.Time

	mu     sync.Mutex
	closed bool
	calls  int           // calls in progress
	idle   chan struct{} // closed when calls drops to 0 after Close
}

var (
	_ pipeline.Destination = (*Writer)(nil)
	_ pipeline.ErrorOutput = (*Writer)(nil)
)

// NewWriter returns a writer of stream's objects to store. It does no I/O;
// the store is closed by the writer's Close.
func NewWriter(cfg *Config, store Store, stream string, loc Location, deps pipeline.Deps) (*Writer, error) {
	if err := CheckStreamName(stream); err != nil {
		return nil, fmt.Errorf("%s destination: %w", loc.Kind, err)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{
		cfg:     cfg,
		store:   store,
		stream:  stream,
		loc:     loc,
		log:     logger.With("stream", stream, "destination", loc.Kind),
		metrics: prefix.NewMetrics(deps.Registry),
		now:     time.Now,
	}, nil
}

// begin registers a call in progress; it fails after Close.
func (w *Writer) begin(op string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.errorf("%s: %w", op, pipeline.ErrClosed)
	}
	w.calls++
	return nil
}

func (w *Writer) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls--
	if w.calls == 0 && w.idle != nil {
		close(w.idle)
		w.idle = nil
	}
}

func (w *Writer) errorf(format string, args ...any) error {
	return fmt.Errorf("%s destination %s: "+format, append([]any{w.loc.Kind, w.stream}, args...)...)
}

// Deliver stores b: one object per partition of its records (one object
// without partition keys); an empty batch stores nothing. Records that
// cannot be placed (a missing partition key, beyond
// max_active_partitions, a partition prefix the store cannot hold) or that
// the format refuses are returned in a *pipeline.PartialError while the
// others are stored, as are the records of a partition whose write failed
// permanently while others were written. A retryable failure or a
// cancelled ctx fails the whole batch (the partitions already written are
// rewritten under the same names by the retry). Deliver is idempotent for
// a given b.ID.
func (w *Writer) Deliver(ctx context.Context, b pipeline.Batch) error {
	if err := w.begin("deliver"); err != nil {
		return err
	}
	defer w.end()
	if b.Stream != "" && b.Stream != w.stream {
		return w.errorf("batch of stream %q delivered to the wrong destination", b.Stream)
	}
	b.Stream = w.stream
	return w.write(ctx, b, kindData, "deliver")
}

// Backup stores a copy of b's records (Firehose's S3 backup, mode
// AllData) the way Deliver stores them, under the same prefix, with names
// derived from the kind "backup": they never collide with the data
// objects Deliver writes for the same batch, nor with another stream's
// (names start with the stream). b.Stream names the stream (the writer's
// when empty). It returns what Deliver would.
func (w *Writer) Backup(ctx context.Context, b pipeline.Batch) error {
	if err := w.begin("backup"); err != nil {
		return err
	}
	defer w.end()
	if b.Stream == "" {
		b.Stream = w.stream
	}
	if err := CheckStreamName(b.Stream); err != nil {
		return w.errorf("backup: %w", err)
	}
	return w.write(ctx, b, kindBackup, "backup")
}

func (w *Writer) write(ctx context.Context, b pipeline.Batch, kind, op string) error {
	if err := ctx.Err(); err != nil {
		return w.errorf("%s: %w", op, err)
	}
	if len(b.Records) == 0 {
		return nil
	}
	parts, failed := w.cfg.spec.SplitKind(b, w.cfg.maxActive, kind)
	if kind == kindData {
		w.metrics.Observe(b.Stream, parts, failed)
	}
	if check := w.cfg.rule.Check; check != nil {
		kept := parts[:0]
		for _, p := range parts {
			if err := check(p.Prefix); err != nil {
				failed = appendFailures(failed, p.Records, &pipeline.CodedError{
					Code: w.cfg.rule.Code, OutputType: prefix.OutputPartitioningFailed,
					Err: fmt.Errorf("partition prefix %q: %w", p.Prefix, err),
				})
				continue
			}
			kept = append(kept, p)
		}
		parts = kept
	}
	refused, err := w.writePartitions(ctx, b, parts, len(failed) > 0)
	if err != nil {
		return err
	}
	failed = append(failed, refused...)
	if len(failed) > 0 {
		slices.SortStableFunc(failed, func(a, b pipeline.RecordError) int { return cmp.Compare(a.Index, b.Index) })
		return &pipeline.PartialError{Failed: failed}
	}
	return nil
}

// result is the outcome of one partition's object.
type result struct {
	refused []pipeline.RecordError // records the format refused
	err     error                  // the object failed
}

// writePartitions writes one object per partition, max_concurrent_objects
// at a time. A retryable error or ctx's end cancels the others and is
// returned. A permanent error fails its partition's records (returned
// with the records the format refused), unless it is the only outcome:
// when every partition failed permanently and nothing else failed, the
// first partition's error is returned as the batch's.
func (w *Writer) writePartitions(ctx context.Context, b pipeline.Batch, parts []prefix.Partition, othersFailed bool) ([]pipeline.RecordError, error) {
	results := make([]result, len(parts))
	if len(parts) == 1 || w.cfg.objects <= 1 {
		for i := range parts {
			results[i].refused, results[i].err = w.writePartition(ctx, b, &parts[i])
			if err := results[i].err; err != nil && (pipeline.IsRetryable(err) || ctx.Err() != nil) {
				return nil, w.batchError(ctx, err)
			}
		}
	} else if err := w.writeConcurrently(ctx, b, parts, results); err != nil {
		return nil, err
	}
	var refused []pipeline.RecordError
	var first error
	failedParts := 0
	for i, r := range results {
		if r.err != nil {
			failedParts++
			if first == nil {
				first = r.err
			}
			refused = appendFailures(refused, parts[i].Records, r.err)
			continue
		}
		refused = append(refused, r.refused...)
	}
	if failedParts > 0 && failedParts == len(parts) && !othersFailed {
		return nil, first
	}
	return refused, nil
}

func (w *Writer) writeConcurrently(ctx context.Context, b pipeline.Batch, parts []prefix.Partition, results []result) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		fatal error // the first retryable error, which cancelled the others
		wg    sync.WaitGroup
	)
	slots := make(chan struct{}, w.cfg.objects)
	for i := range parts {
		select {
		case slots <- struct{}{}:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			refused, err := w.writePartition(pctx, b, &parts[i])
			results[i] = result{refused, err}
			if err != nil && pipeline.IsRetryable(err) {
				mu.Lock()
				if fatal == nil {
					fatal = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if fatal != nil {
		return fatal
	}
	if err := ctx.Err(); err != nil {
		return w.errorf("deliver: %w", err)
	}
	return nil
}

// batchError is the error of a batch failed as a whole by err.
func (w *Writer) batchError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return w.errorf("deliver: %w (%w)", cerr, err)
	}
	return err
}

// writePartition encodes p's records into one object. It returns the
// records the format refused; an error fails the whole object.
func (w *Writer) writePartition(ctx context.Context, b pipeline.Batch, p *prefix.Partition) (refused []pipeline.RecordError, err error) {
	size := len(p.Records)
	for _, i := range p.Records {
		size += len(b.Records[i].Data)
	}
	meta := Meta{ContentType: w.cfg.format.ContentType(), ContentEncoding: w.cfg.format.ContentEncoding(), SizeHint: size}
	obj, err := w.store.Create(ctx, p.Key, meta)
	if err != nil {
		return nil, w.errorf("%w", err)
	}
	defer obj.Abort() // does nothing once committed
	out := &tracked{Object: obj}
	ow, err := w.cfg.format.NewWriter(out)
	if err != nil {
		return nil, w.encodeError(out, p.Key, err)
	}
	stored := 0
	for n, i := range p.Records {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				return nil, w.errorf("write %s: %w", p.Key, err)
			}
		}
		if err := ow.Write(&b.Records[i]); err != nil {
			var ce *pipeline.CodedError
			if errors.As(err, &ce) && out.err == nil {
				refused = append(refused, pipeline.RecordError{Index: i, Err: err})
				continue
			}
			return nil, w.encodeError(out, p.Key, err)
		}
		stored++
	}
	if err := ow.Close(); err != nil {
		return nil, w.encodeError(out, p.Key, err)
	}
	if stored == 0 {
		return refused, nil // every record refused: no object
	}
	if err := obj.Commit(); err != nil {
		return nil, w.errorf("%w", err)
	}
	return refused, nil
}

// tracked remembers the first error of the object's Write, which is the
// store's (already classified) whatever the format wraps it in.
type tracked struct {
	Object
	err error
}

func (t *tracked) Write(p []byte) (int, error) {
	n, err := t.Object.Write(p)
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

// encodeError reports a failure while encoding: the store's own error if
// writing failed, else the format's (permanent: the same records fail the
// same way again).
func (w *Writer) encodeError(out *tracked, key string, err error) error {
	if out.err != nil {
		return w.errorf("%w", out.err)
	}
	return &pipeline.CodedError{
		Code: w.loc.Code + ".EncodingFailed",
		Err:  w.errorf("encode %s: %w", key, err),
	}
}

func appendFailures(failed []pipeline.RecordError, idx []int, err error) []pipeline.RecordError {
	for _, i := range idx {
		failed = append(failed, pipeline.RecordError{Index: i, Err: err})
	}
	return failed
}

// ObjectKeys returns the keys Deliver stores b under, one per partition
// (for a destination that loads what it staged, such as a COPY from a
// manifest, and for tests).
func (w *Writer) ObjectKeys(b pipeline.Batch) []string {
	b.Stream = w.stream
	parts, _ := w.cfg.spec.SplitKind(b, w.cfg.maxActive, kindData)
	keys := make([]string, len(parts))
	for i, p := range parts {
		keys[i] = p.Key
	}
	return keys
}

// Limits are none: a batch of any size becomes objects of any size.
func (w *Writer) Limits() pipeline.Limits { return pipeline.Limits{} }

// Ready is the store's readiness.
func (w *Writer) Ready(ctx context.Context) error {
	if err := w.store.Ready(ctx); err != nil {
		return w.errorf("not ready: %w", err)
	}
	return nil
}

// Close stops the writer: later calls fail with pipeline.ErrClosed, calls
// in progress are waited for until ctx is done, then the store is closed.
// It is idempotent.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	var idle chan struct{}
	if w.calls > 0 {
		if w.idle == nil {
			w.idle = make(chan struct{})
		}
		idle = w.idle
	}
	w.mu.Unlock()
	var err error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			err = w.errorf("close: deliveries still in progress: %w", ctx.Err())
		}
	}
	return errors.Join(err, w.store.Close(ctx))
}
