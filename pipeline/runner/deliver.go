package runner

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// handleBatch takes one batch read from the buffer to finished: process,
// split to the destination's limits, deliver, write dead letters and (with
// BackupAll) the backup. The caller marked it in flight and commits it. It
// returns an error only when ctx is cancelled or the buffer or error output
// is closed; the batch then stays in flight.
func (r *Runner) handleBatch(ctx context.Context, recs []pipeline.Record, id pipeline.BatchID) error {
	b := pipeline.Batch{Stream: r.opts.Stream, Records: recs, Bytes: payloadBytes(recs), ID: id}
	dls, delivered, err := r.processAndDeliver(ctx, b)
	if err != nil {
		return err
	}
	if r.opts.BackupAll && len(delivered.Records) > 0 {
		if err := r.backup(ctx, delivered); err != nil {
			return err
		}
	}
	if len(dls) > 0 {
		err := r.retryForever(ctx, "write dead letters", func() error {
			return r.opts.ErrorOutput.WriteDeadLetters(ctx, id, r.opts.Stream, dls)
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
	return nil
}

// backup writes the copy of a processed batch (backup mode AllData),
// retrying retryable failures forever, like dead letters. Records the
// backup refuses for good (a record its format cannot encode) were
// delivered already: they are logged and counted, not retried forever.
func (r *Runner) backup(ctx context.Context, b pipeline.Batch) error {
	var refused error
	err := r.retryForever(ctx, "write backup", func() error {
		err := r.opts.ErrorOutput.Backup(ctx, b)
		if err == nil || pipeline.IsRetryable(err) || ctx.Err() != nil {
			return err
		}
		var partial *pipeline.PartialError
		if errors.As(err, &partial) {
			for _, fe := range partial.Failed {
				if pipeline.IsRetryable(fe.Err) {
					return err // the whole copy again: Backup is idempotent
				}
			}
			r.metrics.backupRefused(len(partial.Failed))
		} else {
			r.metrics.backupRefused(len(b.Records))
		}
		refused = err
		return nil
	})
	if refused != nil {
		r.logError("backup-refused", "the backup refused records that were delivered; they are not in the backup", refused, "batch", b.ID.String())
	}
	return err
}

// processAndDeliver runs the processors and delivers the result, part by
// part when it exceeds the destination's limits. It returns the dead
// letters of the batch and the processed batch (what the backup keeps), or
// ctx's error.
func (r *Runner) processAndDeliver(ctx context.Context, b pipeline.Batch) ([]pipeline.DeadLetter, pipeline.Batch, error) {
	start := time.Now() // the retry budget counts from the first attempt
	var dls []pipeline.DeadLetter
	for _, p := range r.opts.Processors {
		out, failed, err := r.process(ctx, p, b, start)
		if err != nil {
			return nil, pipeline.Batch{}, err
		}
		dls = append(dls, failed...)
		b = out
		if len(b.Records) == 0 {
			return dls, b, nil
		}
	}
	parts := splitToLimits(b.Records, r.limits)
	for i, recs := range parts {
		part := pipeline.Batch{Stream: b.Stream, Records: recs, Bytes: payloadBytes(recs), ID: b.ID}
		if len(parts) > 1 {
			part.ID.Part = uint32(i + 1)
		}
		failed, err := r.deliver(ctx, part, start)
		if err != nil {
			return nil, pipeline.Batch{}, err
		}
		dls = append(dls, failed...)
	}
	return dls, b, nil
}

// splitToLimits cuts recs into consecutive parts of at most
// limits.MaxRecords records and limits.MaxBytes payload bytes (a larger
// record alone). The cut depends only on the records, so a batch rebuilt
// after a crash gets the same parts.
func splitToLimits(recs []pipeline.Record, limits pipeline.Limits) [][]pipeline.Record {
	if (limits.MaxRecords <= 0 || len(recs) <= limits.MaxRecords) && (limits.MaxBytes <= 0 || payloadBytes(recs) <= limits.MaxBytes) {
		return [][]pipeline.Record{recs}
	}
	var parts [][]pipeline.Record
	start, bytes := 0, 0
	for i := range recs {
		n := len(recs[i].Data)
		full := limits.MaxRecords > 0 && i-start >= limits.MaxRecords ||
			limits.MaxBytes > 0 && i > start && bytes+n > limits.MaxBytes
		if full {
			parts = append(parts, recs[start:i:i])
			start, bytes = i, 0
		}
		bytes += n
	}
	return append(parts, recs[start:])
}

// process runs one processor, retrying whole-call retryable failures within
// the budget. Records it fails, or the whole batch when it fails
// permanently, become dead letters carrying the processor's input records.
func (r *Runner) process(ctx context.Context, p pipeline.Processor, b pipeline.Batch, start time.Time) (pipeline.Batch, []pipeline.DeadLetter, error) {
	outType := pipeline.OutputProcessingFailed
	if ot, ok := p.(pipeline.OutputTyper); ok && ot.ErrorOutputType() != "" {
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
				dls = append(dls, deadLetter(b.Records[re.Index], attempt, re.Err, pipeline.CodeProcessingFailed, outType))
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
			dls[i] = deadLetter(b.Records[i], attempt, err, pipeline.CodeProcessingFailed, outType)
		}
		return pipeline.Batch{Stream: b.Stream, ID: b.ID}, dls, nil
	}
}

// deliver delivers b, retrying within the budget: a retryable error retries
// the batch under its identity, a partial failure retries the failed
// retryable records as the next round of it (BatchID.Round). It returns the
// dead letters: permanent failures and records out of budget.
func (r *Runner) deliver(ctx context.Context, b pipeline.Batch, start time.Time) ([]pipeline.DeadLetter, error) {
	var dls []pipeline.DeadLetter
	pending := b.Records
	var round uint32
	for attempt := 1; ; attempt++ {
		sub := pipeline.Batch{Stream: b.Stream, Records: pending, Bytes: payloadBytes(pending), ID: b.ID}
		sub.ID.Round = round
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
					dls = append(dls, deadLetter(pending[i], attempt, fe, pipeline.CodeDeliveryFailed, pipeline.OutputDeliveryFailed))
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
			r.abandon(ctx, sub, err)
			for i := range pending {
				dls = append(dls, deadLetter(pending[i], attempt, err, pipeline.CodeDeliveryFailed, pipeline.OutputDeliveryFailed))
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
			given := sub
			if partial != nil {
				given.Records, given.Bytes = retry, payloadBytes(retry)
			}
			r.abandon(ctx, given, err)
			for i := range retry {
				dls = append(dls, deadLetter(retry[i], attempt, retryErrs[i], pipeline.CodeDeliveryFailed, pipeline.OutputDeliveryFailed))
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

// abandon tells a destination that keeps something of its own for
// undelivered batches (pipeline.Abandoner) that b is given up on.
func (r *Runner) abandon(ctx context.Context, b pipeline.Batch, cause error) {
	a, ok := r.opts.Destination.(pipeline.Abandoner)
	if !ok {
		return
	}
	if err := a.Abandon(ctx, b, cause); err != nil {
		r.logError("abandon", "recording the abandoned batch at the destination failed; its records are dead-lettered all the same",
			err, "batch", b.ID.String(), "records", len(b.Records))
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

func deadLetter(rec pipeline.Record, attempts int, err error, defaultCode, outType string) pipeline.DeadLetter {
	code := defaultCode
	var c pipeline.Coder
	if errors.As(err, &c) && c.ErrorCode() != "" {
		code = c.ErrorCode()
	}
	var ot pipeline.OutputTyper
	if errors.As(err, &ot) && ot.ErrorOutputType() != "" {
		outType = ot.ErrorOutputType()
	}
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	var fields map[string]string
	var f pipeline.DeadLetterFielder
	if errors.As(err, &f) {
		fields = f.DeadLetterFields()
	}
	return pipeline.DeadLetter{Record: rec, Attempts: attempts, Code: code, Message: msg, OutputType: outType, Fields: fields}
}
