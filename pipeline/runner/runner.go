// Package runner is the per-stream delivery engine. A Runner reads batches
// from its stream's buffer, runs the stream's processors, splits the result
// to the destination's limits, delivers with a retry budget and exponential
// backoff, dead-letters what fails permanently or runs out of budget into
// the stream's error output, and commits in the buffer.
//
// # Batching
//
// A batch is cut, as in Firehose, when the payload bytes buffered after the
// last batch taken reach Options.SizeBytes or when the oldest of those
// records has waited Options.Interval, whichever comes first. The runner
// waits on the buffer's Notify channel, a timer and the completions of
// batches in flight; it never polls. The size is measured on record
// payloads: the log's byte count (frames included) is a cheap upper bound,
// and once it reaches the hint the records are read and their payload
// measured exactly; when that falls short, the records read are kept and
// the next Read (of only what follows them) waits until the log has grown
// by the missing payload scaled by the observed payload/log ratio. Every
// record is read from the buffer once.
//
// # Pipelining
//
// Up to Options.MaxInFlight batches are delivered at once, each in its own
// goroutine: consecutive ranges of the log, each marked in flight in the
// buffer (MarkInflight) before its delivery starts. Batches may finish in
// any order; the buffer is committed only up to the end of the lowest batch
// not yet finished, so a crash can only cause redeliveries, never a gap.
// With MaxInFlight 1 batches are delivered strictly in order. Memory held
// is bounded by MaxInFlight batches of at most SizeBytes (plus what
// processors make of them).
//
// # Effectively-once delivery
//
// Every batch's identity [first, next) is recorded in the buffer before it
// is delivered. After a crash or a hard stop, Run rebuilds exactly the
// batches still marked in flight and delivers them again under the same
// identities, so a destination that derives its names from
// pipeline.BatchID overwrites or skips instead of duplicating.
//
// When a batch exceeds the destination's Limits after processing, it is
// delivered as parts 1, 2, ... (BatchID.Part), one after the other, split
// deterministically so that a rebuilt batch gets the same parts. When a
// destination reports a partial failure, only the failed records that are
// retryable are delivered again, as retry round 1, 2, ... of the same
// identity (BatchID.Round): a destination naming objects by identity
// therefore never overwrites the records that did succeed with the retried
// subset. If the process crashes during those retries, the whole batch is
// redelivered under its own identity: the records retried in a round may
// then be stored twice (at-least-once), but none is lost.
//
// # Dead letters, backup and commit
//
// Records that fail permanently, or whose retries exhaust
// Options.RetryDuration, become pipeline.DeadLetters, written to the
// stream's error output with one WriteDeadLetters call per batch under the
// batch identity (so a redelivery after a crash replaces them). With
// Options.BackupAll (Firehose's S3BackupMode AllData) every processed batch
// is also written to the error output's Backup. If writing dead letters or
// the backup fails, the runner retries forever with backoff (counted in
// sluice_runner_stalled_retries_total) and the batch does not finish: a
// record leaves the buffer only once it is delivered or durably
// dead-lettered.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/pipeline"
)

// Defaults of Options.
const (
	// DefaultSizeBytes is Firehose's default buffering size hint (5 MiB).
	DefaultSizeBytes = 5 << 20
	// DefaultInterval is Firehose's default buffering interval. The
	// runner does not apply it: Interval 0 means "zero buffering", so
	// callers (the configuration) fill it in.
	DefaultInterval = 300 * time.Second
	// DefaultBackoffBase and DefaultBackoffMax bound the exponential
	// backoff between attempts (Firehose retries HTTP endpoints from 1 s).
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = 60 * time.Second
	// DefaultLogEvery is the minimum interval between two logs of the same
	// repeated error.
	DefaultLogEvery = 30 * time.Second
)

// Options configure a Runner.
type Options struct {
	// Stream is the delivery stream's name (required).
	Stream string
	// Buffer is the stream's buffer (required). The runner is its only
	// reader.
	Buffer buffer.Buffer
	// Destination receives the batches (required).
	Destination pipeline.Destination
	// DestinationName labels logs and metrics, e.g. "file" (required).
	DestinationName string
	// ErrorOutput stores records that cannot be processed or delivered
	// and, with BackupAll, a copy of every batch (required).
	ErrorOutput pipeline.ErrorOutput
	// BackupAll writes every processed batch to ErrorOutput.Backup as well
	// (Firehose's S3BackupMode AllData).
	BackupAll bool
	// Processors run in order on every batch before delivery.
	Processors []pipeline.Processor
	// SizeBytes is the buffering size hint, in payload bytes; also the
	// maximum payload of a batch read from the buffer (a single larger
	// record is delivered alone). Zero means DefaultSizeBytes.
	SizeBytes int
	// Interval is the buffering interval: a batch is delivered at the
	// latest Interval after its oldest record arrived. Zero means deliver
	// as soon as records are available (Firehose "zero buffering"); the
	// caller applies DefaultInterval when none is configured.
	Interval time.Duration
	// MaxInFlight is the most batches delivered at once (at most
	// buffer.MaxInflight). Zero means 1: strictly in order.
	MaxInFlight int
	// RetryDuration is the retry budget of a batch, counted from its first
	// delivery attempt. Zero means no retry; negative means retry forever
	// (Firehose's behaviour for plain S3 write errors).
	RetryDuration time.Duration
	// BackoffBase and BackoffMax bound the backoff between attempts (full
	// jitter: a random delay in [0, min(BackoffMax, BackoffBase*2^n)]).
	// Zero means DefaultBackoffBase / DefaultBackoffMax.
	BackoffBase, BackoffMax time.Duration
	// LogEvery rate-limits repeated error logs. Zero means DefaultLogEvery.
	LogEvery time.Duration
	// Logger receives the runner's logs (nil: discarded).
	Logger *slog.Logger
	// Metrics are shared by the process's runners (required; see
	// NewMetrics).
	Metrics *Metrics
}

var errEmptyRead = errors.New("empty read")

// Runner delivers one stream. Create it with New and call Run once.
type Runner struct {
	opts    Options
	limits  pipeline.Limits
	log     *slog.Logger
	metrics *streamMetrics
	limiter *logLimiter

	drainOnce sync.Once
	drainCh   chan struct{}
	stopOnce  sync.Once
	stopCh    chan struct{}
	running   atomic.Bool
	lastErr   atomic.Pointer[Status]
}

// Status is what a runner last went through, for the status page.
type Status struct {
	LastError   string    // the last error logged (delivery, processing, buffer), "" if none
	LastErrorAt time.Time // when
}

// Status returns the last error the runner met.
func (r *Runner) Status() Status {
	if s := r.lastErr.Load(); s != nil {
		return *s
	}
	return Status{}
}

// New checks opts and returns a Runner.
func New(opts Options) (*Runner, error) {
	var errs []error
	if opts.Stream == "" {
		errs = append(errs, errors.New("stream name is required"))
	}
	if opts.Buffer == nil {
		errs = append(errs, errors.New("buffer is required"))
	}
	if opts.Destination == nil {
		errs = append(errs, errors.New("destination is required"))
	}
	if opts.DestinationName == "" {
		errs = append(errs, errors.New("destination name is required"))
	}
	if opts.ErrorOutput == nil {
		errs = append(errs, errors.New("error output is required"))
	}
	if opts.Metrics == nil {
		errs = append(errs, errors.New("metrics are required (runner.NewMetrics)"))
	}
	for i, p := range opts.Processors {
		if p == nil {
			errs = append(errs, fmt.Errorf("processor %d is nil", i))
		}
	}
	if opts.SizeBytes < 0 {
		errs = append(errs, fmt.Errorf("size hint %d is negative", opts.SizeBytes))
	}
	if opts.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %v is negative", opts.Interval))
	}
	if opts.MaxInFlight < 0 || opts.MaxInFlight > buffer.MaxInflight {
		errs = append(errs, fmt.Errorf("max in flight %d is not between 1 and %d", opts.MaxInFlight, buffer.MaxInflight))
	}
	var limits pipeline.Limits
	if opts.Destination != nil {
		limits = opts.Destination.Limits()
		if limits.MaxRecords < 0 || limits.MaxBytes < 0 {
			errs = append(errs, fmt.Errorf("destination limits %+v are negative", limits))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("runner for stream %q: %w", opts.Stream, err)
	}
	if opts.SizeBytes == 0 {
		opts.SizeBytes = DefaultSizeBytes
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = 1
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	if opts.BackoffMax < opts.BackoffBase {
		opts.BackoffMax = opts.BackoffBase
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = DefaultLogEvery
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{
		opts:    opts,
		limits:  limits,
		log:     logger.With("stream", opts.Stream, "destination", opts.DestinationName),
		metrics: opts.Metrics.forStream(opts.Stream, opts.DestinationName),
		limiter: newLogLimiter(opts.LogEvery),
		drainCh: make(chan struct{}),
		stopCh:  make(chan struct{}),
	}, nil
}

// Drain asks Run to deliver everything buffered when it notices the
// request, ignoring the interval, and then to return nil. It does not wait;
// wait for Run to return. Stop the stream's sources first. Drain is
// idempotent and may be called before Run.
func (r *Runner) Drain() {
	r.drainOnce.Do(func() { close(r.drainCh) })
}

// Stop asks Run to finish the batches it has in flight, start no other,
// and return nil: what is buffered after them stays buffered for the next
// runner of the stream (a configuration reload hands the buffer over this
// way). It does not wait; wait for Run to return, or cancel Run's context
// to abandon the deliveries (their batches are redelivered identically).
// Stop is idempotent, may be called before Run and wins over Drain.
func (r *Runner) Stop() {
	r.stopOnce.Do(func() { close(r.stopCh) })
}

func (r *Runner) stopping() bool {
	select {
	case <-r.stopCh:
		return true
	default:
		return false
	}
}

func (r *Runner) draining() bool {
	select {
	case <-r.drainCh:
		return true
	default:
		return false
	}
}

// Run delivers the stream until Drain completes (it then returns nil) or
// ctx is cancelled (it returns ctx's error). Cancelling ctx is the hard
// stop: deliveries in progress are abandoned and their batches, still
// marked in flight in the buffer, are redelivered identically by the next
// Run. Run returns only after every delivery goroutine it started has
// ended. It returns another error only when the buffer is closed under it
// or a runner for the same stream is already running with the same
// Metrics.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("runner for stream %q: Run called twice", r.opts.Stream)
	}
	defer r.running.Store(false)
	g := r.opts.Metrics.gauges
	if err := g.add(r.opts.Stream, gaugeSource{dest: r.opts.DestinationName, buf: r.opts.Buffer}); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	defer g.remove(r.opts.Stream)

	r.log.Info("runner started", "size_bytes", r.opts.SizeBytes, "interval", r.opts.Interval,
		"retry_duration", r.opts.RetryDuration, "max_in_flight", r.opts.MaxInFlight,
		"max_records", r.limits.MaxRecords, "max_bytes", r.limits.MaxBytes)
	f := newFlights(r, ctx)
	err := f.run()
	switch {
	case err == nil && r.stopping():
		r.log.Info("runner stopped; the buffer is handed over")
	case err == nil:
		r.log.Info("runner drained and stopped")
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		r.log.Info("runner stopped", "reason", err)
	default:
		r.log.Error("runner failed", "err", err)
	}
	return err
}

// estimateProbe returns the Head position from which the next size probe
// may find SizeBytes of payload: the log must grow by at least the missing
// payload, scaled by the payload/log ratio seen so far.
func estimateProbe(cursor, next pipeline.Position, payload, size int) pipeline.Position {
	missing := size - payload
	grow := missing
	if logBytes := int(next - cursor); payload > 0 && logBytes > payload {
		grow = int(float64(missing) * float64(logBytes) / float64(payload))
	}
	return next + pipeline.Position(max(grow, 1))
}

func payloadBytes(recs []pipeline.Record) int {
	n := 0
	for i := range recs {
		n += len(recs[i].Data)
	}
	return n
}

// backoff returns the delay before retry n (0-based): full jitter over an
// exponential ceiling, and at least after (a server's Retry-After).
func (r *Runner) backoff(n int, after time.Duration) time.Duration {
	return max(pipeline.Backoff(r.opts.BackoffBase, r.opts.BackoffMax, n), after)
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error { return pipeline.Sleep(ctx, d) }

// retryForever runs op until it succeeds, ctx is cancelled or the buffer is
// closed, backing off between attempts. It is used where giving up would
// lose acknowledged records (buffer cursors, dead letters, the backup);
// every retry is counted by operation, so a stream stalled on a broken
// error output shows in the metrics, not only in the logs.
func (r *Runner) retryForever(ctx context.Context, what string, op func() error) error {
	for n := 0; ; n++ {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, pipeline.ErrClosed) {
			return fmt.Errorf("%s: %w", what, err)
		}
		r.metrics.stalled(what)
		r.logError(what, what+" failed; retrying", err, "attempt", n+1)
		if err := r.sleep(ctx, r.backoff(n, pipeline.RetryAfter(err))); err != nil {
			return err
		}
	}
}

func (r *Runner) logError(key, msg string, err error, args ...any) {
	r.lastErr.Store(&Status{LastError: msg + ": " + err.Error(), LastErrorAt: time.Now()})
	ok, suppressed := r.limiter.allow(key, time.Now())
	if !ok {
		return
	}
	args = append(args, "err", err)
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	r.log.Error(msg, args...)
}
