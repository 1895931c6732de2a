// Package runner is the per-stream delivery engine. A Runner reads batches
// from its stream's buffer, runs the stream's processors, delivers to the
// destination with a retry budget and exponential backoff, dead-letters
// what fails permanently or runs out of budget, and commits the batch in
// the buffer.
//
// # Batching
//
// A batch is cut, as in Firehose, when the payload bytes buffered since the
// committed cursor reach Options.SizeBytes or when the oldest undelivered
// record has waited Options.Interval, whichever comes first. The runner
// waits on the buffer's Notify channel and a timer; it never polls. The
// size is measured on record payloads: the log's byte count (frames
// included) is a cheap upper bound, and once it reaches the hint a Read
// measures the payload exactly; when that falls short, the next Read waits
// until the log has grown by the missing payload scaled by the observed
// payload/log ratio.
//
// # Effectively-once delivery
//
// Before delivering, the runner records the batch identity [first, next)
// in the buffer (MarkInflight). After a crash or a hard stop, Run rebuilds
// exactly that batch first and delivers it under the same identity, so a
// destination that derives its names from pipeline.BatchID overwrites
// instead of duplicating.
//
// When a destination reports a partial failure, only the failed records
// that are retryable are delivered again, as a sub-batch whose identity is
// derived from the original one: [First+round, End) for retry round 1, 2,
// and so on. It lies inside the original range, so it never equals the
// identity of any other batch (batches partition the log, and a real batch
// ending at End starts at First), nor of another round of the same batch.
// A destination naming objects by identity therefore never overwrites the
// records that did succeed with the retried subset. If the process crashes
// during those retries the whole original batch is redelivered under its
// own identity: the records retried in a sub-batch may then be stored
// twice (at-least-once), but none is lost. (If a batch spans fewer log
// bytes than retry rounds, the rounds wrap around and reuse identities.)
//
// # Dead letters and commit
//
// Records that fail permanently, or whose retries exhaust
// Options.RetryDuration, become pipeline.DeadLetters, written with one
// WriteDeadLetters call per batch under the original batch identity (so a
// redelivery after a crash replaces them). If writing dead letters fails,
// the runner retries forever with backoff and does not commit: a record
// leaves the buffer only once it is delivered or durably dead-lettered.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// DeadLetters stores records that cannot be processed or delivered
	// (required).
	DeadLetters pipeline.DeadLetterWriter
	// Processors run in order on every batch before delivery.
	Processors []pipeline.Processor
	// SizeBytes is the buffering size hint, in payload bytes; also the
	// maximum payload of a batch (a single larger record is delivered
	// alone). Zero means DefaultSizeBytes.
	SizeBytes int
	// Interval is the buffering interval: a batch is delivered at the
	// latest Interval after its oldest record arrived. Zero means deliver
	// as soon as records are available (Firehose "zero buffering"); the
	// caller applies DefaultInterval when none is configured.
	Interval time.Duration
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

// Coder is implemented by errors that carry a Firehose-style error code
// (e.g. "S3.AccessDenied"); the code is written into dead letters.
type Coder interface {
	ErrorCode() string
}

// OutputTyper is implemented by processors, and by errors (see
// pipeline.CodedError), whose failed records go to a specific error output
// type. An error's own type wins over its processor's; the defaults are
// "processing-failed" for processors and "delivery-failed" for delivery.
type OutputTyper interface {
	ErrorOutputType() string
}

// Error output types and default error codes written into dead letters.
const (
	OutputDeliveryFailed   = "delivery-failed"
	OutputProcessingFailed = "processing-failed"
	CodeDeliveryFailed     = "Delivery.Failed"
	CodeProcessingFailed   = "Processing.Failed"
)

var errEmptyRead = errors.New("empty read")

// Runner delivers one stream. Create it with New and call Run once.
type Runner struct {
	opts    Options
	log     *slog.Logger
	metrics *streamMetrics
	limiter *logLimiter

	drainOnce sync.Once
	drainCh   chan struct{}
	running   atomic.Bool
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
	if opts.DeadLetters == nil {
		errs = append(errs, errors.New("dead-letter writer is required"))
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
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("runner for stream %q: %w", opts.Stream, err)
	}
	if opts.SizeBytes == 0 {
		opts.SizeBytes = DefaultSizeBytes
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
		log:     logger.With("stream", opts.Stream, "destination", opts.DestinationName),
		metrics: opts.Metrics.forStream(opts.Stream, opts.DestinationName),
		limiter: newLogLimiter(opts.LogEvery),
		drainCh: make(chan struct{}),
	}, nil
}

// Drain asks Run to deliver everything buffered when it notices the
// request, ignoring the interval, and then to return nil. It does not wait;
// wait for Run to return. Stop the stream's sources first. Drain is
// idempotent and may be called before Run.
func (r *Runner) Drain() {
	r.drainOnce.Do(func() { close(r.drainCh) })
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
// stop: a delivery in progress is abandoned and its batch, still marked
// in flight in the buffer, is redelivered identically by the next Run.
// Run returns another error only when the buffer is closed under it or a
// runner for the same stream is already running with the same Metrics.
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

	r.log.Info("runner started", "size_bytes", r.opts.SizeBytes, "interval", r.opts.Interval, "retry_duration", r.opts.RetryDuration)
	err := r.run(ctx)
	switch {
	case err == nil:
		r.log.Info("runner drained and stopped")
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		r.log.Info("runner stopped", "reason", err)
	default:
		r.log.Error("runner failed", "err", err)
	}
	return err
}

func (r *Runner) run(ctx context.Context) error {
	if err := r.recoverInflight(ctx); err != nil {
		return err
	}
	return r.loop(ctx)
}

// recoverInflight rebuilds and delivers the batch a previous run marked in
// flight and did not commit.
func (r *Runner) recoverInflight(ctx context.Context) error {
	st := r.opts.Buffer.State()
	id := st.Inflight
	if id.End == 0 || id.End <= st.Committed {
		return nil
	}
	if id.First != st.Committed {
		r.log.Warn("in-flight batch does not start at the committed cursor; redelivering from the cursor",
			"inflight", id.String(), "committed", uint64(st.Committed))
		id.First = st.Committed
	}
	var recs []pipeline.Record
	var next pipeline.Position
	err := r.retryForever(ctx, "read in-flight batch", func() error {
		var err error
		recs, next, err = r.opts.Buffer.Read(ctx, id.First, 0, 0, id.End)
		return err
	})
	if err != nil {
		return err
	}
	if next != id.End {
		// The log no longer holds the whole batch (a torn tail was
		// truncated at recovery). Deliver what is left under the identity
		// of what is left.
		r.log.Warn("in-flight batch only partly present in the buffer", "inflight", id.String(), "next", uint64(next))
		if next == id.First {
			return nil
		}
		id.End = next
	}
	r.log.Info("redelivering the in-flight batch of the previous run", "batch", id.String(), "records", len(recs))
	return r.handleBatch(ctx, recs, id, id != st.Inflight)
}

// loop waits for a batch to be due, delivers it, and repeats.
func (r *Runner) loop(ctx context.Context) error {
	var (
		probeAt    pipeline.Position // no size probe before Head reaches it
		probeFrom  pipeline.Position // cursor probeAt was computed for
		drainAt    pipeline.Position
		draining   bool
		seenAt     pipeline.Position // fallback arrival tracking when State.Oldest is zero
		seenTime   time.Time
		timer      = time.NewTimer(time.Hour)
		size       = r.opts.SizeBytes
		interval   = r.opts.Interval
		buf        = r.opts.Buffer
		notify     = buf.Notify()
		readErrors = 0
	)
	timer.Stop()
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		st := buf.State()
		cursor := st.Committed
		if !draining && r.draining() {
			draining, drainAt = true, st.Head
			r.log.Info("draining", "backlog_bytes", st.Bytes, "until", uint64(drainAt))
		}
		if draining && cursor >= drainAt {
			return nil
		}
		if probeFrom != cursor {
			probeFrom, probeAt = cursor, cursor+pipeline.Position(size)
		}
		var wait time.Duration = -1
		if st.Head > cursor {
			oldest := st.Oldest
			if oldest.IsZero() {
				if seenTime.IsZero() || seenAt != cursor {
					seenAt, seenTime = cursor, time.Now()
				}
				oldest = seenTime
			}
			dueAt := oldest.Add(interval)
			due := draining || interval == 0 || !time.Now().Before(dueAt)
			var (
				recs []pipeline.Record
				next pipeline.Position
				err  error
			)
			if due || st.Head >= probeAt {
				recs, next, err = buf.Read(ctx, cursor, size, 0, 0)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if errors.Is(err, pipeline.ErrClosed) {
						return fmt.Errorf("read buffer: %w", err)
					}
					r.logError("read", "reading the buffer failed", err)
					if err := r.sleep(ctx, r.backoff(readErrors, 0)); err != nil {
						return err
					}
					readErrors++
					continue
				}
				readErrors = 0
				if !due {
					payload := payloadBytes(recs)
					if next < st.Head || payload >= size {
						due = true // the size hint is reached
					} else {
						probeAt = estimateProbe(cursor, next, payload, size)
					}
				}
			}
			if due {
				if len(recs) == 0 || next <= cursor {
					// State and Read disagree; should not happen. Back off
					// rather than spin.
					r.logError("read", "buffer returned no records below its head", errEmptyRead,
						"committed", uint64(cursor), "head", uint64(st.Head))
					if err := r.sleep(ctx, r.backoff(readErrors, 0)); err != nil {
						return err
					}
					readErrors++
					continue
				}
				if err := r.handleBatch(ctx, recs, pipeline.BatchID{First: cursor, End: next}, true); err != nil {
					return err
				}
				continue
			}
			wait = max(time.Until(dueAt), time.Millisecond)
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-notify:
		case <-timer.C:
		case <-r.drainWake(draining):
		}
		timer.Stop()
	}
}

// drainWake returns the drain channel until draining has started, then nil
// (a closed channel would make the wait spin).
func (r *Runner) drainWake(draining bool) <-chan struct{} {
	if draining {
		return nil
	}
	return r.drainCh
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
	ceil := r.opts.BackoffBase
	for i := 0; i < n && ceil < r.opts.BackoffMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, r.opts.BackoffMax)
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	return max(d, after)
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryForever runs op until it succeeds, ctx is cancelled or the buffer is
// closed, backing off between attempts. It is used where giving up would
// lose acknowledged records (buffer cursors, dead letters).
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
		r.logError(what, what+" failed; retrying", err, "attempt", n+1)
		if err := r.sleep(ctx, r.backoff(n, pipeline.RetryAfter(err))); err != nil {
			return err
		}
	}
}

func (r *Runner) logError(key, msg string, err error, args ...any) {
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
