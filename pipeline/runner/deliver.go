package runner

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// handleBatch takes one batch read from the buffer to committed: mark it in
// flight (unless it is the recovered in-flight batch), process, deliver,
// write dead letters, commit. It returns an error only when ctx is
// cancelled or the buffer is closed; the batch is then left in flight.
func (r *Runner) handleBatch(ctx context.Context, recs []pipeline.Record, id pipeline.BatchID, mark bool) error {
	buf := r.opts.Buffer
	if mark {
		if err := r.retryForever(ctx, "mark batch in flight", func() error { return buf.MarkInflight(ctx, id) }); err != nil {
			return err
		}
	}
	b := pipeline.Batch{Stream: r.opts.Stream, Records: recs, Bytes: payloadBytes(recs), ID: id}
	dls, err := r.processAndDeliver(ctx, b)
	if err != nil {
		return err
	}
	if len(dls) > 0 {
		err := r.retryForever(ctx, "write dead letters", func() error {
			return r.opts.DeadLetters.WriteDeadLetters(ctx, id, r.opts.Stream, dls)
		})
		if err != nil {
			return err
		}
		byCode := map[string]int{}
		for i := range dls {
			byCode[dls[i].Code]++
		}
		for code, n := range byCode {
			r.metrics.deadLettered(code, n)
		}
		r.log.Warn("records dead-lettered", "batch", id.String(), "count", len(dls), "first_code", dls[0].Code, "first_error", dls[0].Message)
	}
	return r.retryForever(ctx, "commit", func() error { return buf.Commit(ctx, id.End) })
}

// processAndDeliver runs the processors and delivers the result. It
// returns the dead letters of the batch, or ctx's error.
func (r *Runner) processAndDeliver(ctx context.Context, b pipeline.Batch) ([]pipeline.DeadLetter, error) {
	start := time.Now() // the retry budget counts from the first attempt
	var dls []pipeline.DeadLetter
	for _, p := range r.opts.Processors {
		out, failed, err := r.process(ctx, p, b, start)
		if err != nil {
			return nil, err
		}
		dls = append(dls, failed...)
		b = out
		if len(b.Records) == 0 {
			return dls, nil
		}
	}
	failed, err := r.deliver(ctx, b, start)
	if err != nil {
		return nil, err
	}
	return append(dls, failed...), nil
}

// process runs one processor, retrying whole-call retryable failures within
// the budget. Records it fails, or the whole batch when it fails
// permanently, become dead letters carrying the processor's input records.
func (r *Runner) process(ctx context.Context, p pipeline.Processor, b pipeline.Batch, start time.Time) (pipeline.Batch, []pipeline.DeadLetter, error) {
	outType := OutputProcessingFailed
	if ot, ok := p.(OutputTyper); ok && ot.ErrorOutputType() != "" {
		outType = ot.ErrorOutputType()
	}
	for attempt := 1; ; attempt++ {
		out, recErrs, err := p.Process(ctx, b)
		if err == nil {
			var dls []pipeline.DeadLetter
			for _, re := range recErrs {
				if re.Index < 0 || re.Index >= len(b.Records) {
					r.logError("processor-index", "processor reported a failure for a record index out of range; ignored",
						re.Err, "index", re.Index, "records", len(b.Records))
					continue
				}
				dls = append(dls, deadLetter(b.Records[re.Index], attempt, re.Err, CodeProcessingFailed, outType))
			}
			out.Stream, out.ID, out.Bytes = b.Stream, b.ID, payloadBytes(out.Records)
			return out, dls, nil
		}
		if ctx.Err() != nil {
			return pipeline.Batch{}, nil, ctx.Err()
		}
		if pipeline.IsRetryable(err) {
			if delay := r.backoff(attempt-1, pipeline.RetryAfter(err)); r.withinBudget(start, delay) {
				r.metrics.retries.Inc()
				r.logError("process", "processing failed; retrying", err, "batch", b.ID.String(), "attempt", attempt, "backoff", delay)
				if err := r.sleep(ctx, delay); err != nil {
					return pipeline.Batch{}, nil, err
				}
				continue
			}
		}
		r.logError("process-final", "processing failed; dead-lettering the batch", err, "batch", b.ID.String(), "attempts", attempt)
		dls := make([]pipeline.DeadLetter, len(b.Records))
		for i := range b.Records {
			dls[i] = deadLetter(b.Records[i], attempt, err, CodeProcessingFailed, outType)
		}
		return pipeline.Batch{Stream: b.Stream, ID: b.ID}, dls, nil
	}
}

// deliver delivers b, retrying within the budget: a retryable error retries
// the batch under its identity, a partial failure retries the failed
// retryable records as a sub-batch (see subBatchID). It returns the dead
// letters: permanent failures and records out of budget.
func (r *Runner) deliver(ctx context.Context, b pipeline.Batch, start time.Time) ([]pipeline.DeadLetter, error) {
	var dls []pipeline.DeadLetter
	pending := b.Records
	round := 0
	for attempt := 1; ; attempt++ {
		sub := pipeline.Batch{Stream: b.Stream, Records: pending, Bytes: payloadBytes(pending), ID: subBatchID(b.ID, round)}
		err := r.deliverOnce(ctx, sub)
		if err == nil {
			return dls, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var (
			retry     []pipeline.Record
			retryErrs []error
			after     = pipeline.RetryAfter(err)
			partial   *pipeline.PartialError
		)
		switch {
		case errors.As(err, &partial):
			failed := map[int]error{}
			for _, fe := range partial.Failed {
				if fe.Index < 0 || fe.Index >= len(pending) {
					r.logError("partial-index", "destination reported a failure for a record index out of range; ignored",
						fe.Err, "index", fe.Index, "records", len(pending))
					continue
				}
				if _, dup := failed[fe.Index]; !dup {
					failed[fe.Index] = fe.Err
				}
			}
			if len(failed) == 0 {
				r.countDelivered(pending)
				return dls, nil
			}
			idx := make([]int, 0, len(failed))
			for i := range failed {
				idx = append(idx, i)
			}
			slices.Sort(idx)
			delivered, deliveredBytes := len(pending)-len(idx), sub.Bytes
			for _, i := range idx {
				deliveredBytes -= len(pending[i].Data)
				fe := failed[i]
				if fe == nil {
					fe = err
				}
				if pipeline.IsRetryable(fe) {
					retry = append(retry, pending[i])
					retryErrs = append(retryErrs, fe)
					after = max(after, pipeline.RetryAfter(fe))
				} else {
					dls = append(dls, deadLetter(pending[i], attempt, fe, CodeDeliveryFailed, OutputDeliveryFailed))
				}
			}
			r.metrics.records.Add(float64(delivered))
			r.metrics.bytes.Add(float64(deliveredBytes))
		case pipeline.IsRetryable(err):
			retry = pending
			retryErrs = make([]error, len(pending))
			for i := range retryErrs {
				retryErrs[i] = err
			}
		default:
			r.logError("deliver-final", "delivery failed permanently; dead-lettering", err, "batch", sub.ID.String(), "records", len(pending), "attempts", attempt)
			for i := range pending {
				dls = append(dls, deadLetter(pending[i], attempt, err, CodeDeliveryFailed, OutputDeliveryFailed))
			}
			return dls, nil
		}
		if len(retry) == 0 {
			return dls, nil
		}
		delay := r.backoff(attempt-1, after)
		if !r.withinBudget(start, delay) {
			r.logError("deliver-final", "delivery retries exhausted; dead-lettering", err, "batch", sub.ID.String(),
				"records", len(retry), "attempts", attempt, "retry_duration", r.opts.RetryDuration)
			for i := range retry {
				dls = append(dls, deadLetter(retry[i], attempt, retryErrs[i], CodeDeliveryFailed, OutputDeliveryFailed))
			}
			return dls, nil
		}
		r.metrics.retries.Inc()
		r.logError("deliver", "delivery failed; retrying", err, "batch", sub.ID.String(), "records", len(retry), "attempt", attempt, "backoff", delay)
		if err := r.sleep(ctx, delay); err != nil {
			return nil, err
		}
		if partial != nil {
			pending = retry
			round++
		}
	}
}

// deliverOnce makes one delivery attempt and records its metrics.
func (r *Runner) deliverOnce(ctx context.Context, b pipeline.Batch) error {
	r.metrics.attempts.Inc()
	t := time.Now()
	err := r.opts.Destination.Deliver(ctx, b)
	r.metrics.duration.Observe(time.Since(t).Seconds())
	if err == nil {
		r.metrics.success.Inc()
		r.countDelivered(b.Records)
	}
	return err
}

func (r *Runner) countDelivered(recs []pipeline.Record) {
	r.metrics.records.Add(float64(len(recs)))
	r.metrics.bytes.Add(float64(payloadBytes(recs)))
}

// withinBudget reports whether an attempt after delay still fits in the
// retry duration counted from start.
func (r *Runner) withinBudget(start time.Time, delay time.Duration) bool {
	if r.opts.RetryDuration < 0 {
		return true
	}
	return time.Since(start)+delay <= r.opts.RetryDuration
}

// subBatchID is the identity of retry round `round` of a partially failed
// batch: [First+round, End), inside the original range, so it equals no
// other batch's identity (see the package documentation).
func subBatchID(id pipeline.BatchID, round int) pipeline.BatchID {
	span := uint64(id.End - id.First)
	if round == 0 || span <= 1 {
		return id
	}
	k := 1 + uint64(round-1)%(span-1)
	return pipeline.BatchID{First: id.First + pipeline.Position(k), End: id.End}
}

func deadLetter(rec pipeline.Record, attempts int, err error, defaultCode, outType string) pipeline.DeadLetter {
	code := defaultCode
	var c Coder
	if errors.As(err, &c) && c.ErrorCode() != "" {
		code = c.ErrorCode()
	}
	var ot OutputTyper
	if errors.As(err, &ot) && ot.ErrorOutputType() != "" {
		outType = ot.ErrorOutputType()
	}
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	return pipeline.DeadLetter{Record: rec, Attempts: attempts, Code: code, Message: msg, OutputType: outType}
}
