package destinationtest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

func errorCode(err error) string {
	var c pipeline.Coder
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return ""
}

func (s *suite) ready(t *testing.T) {
	d := s.newDest(t, "conf-ready")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Ready(ctx); err != nil {
		t.Fatalf("Ready of a working destination: %v", err)
	}
}

// partial delivers a batch some records of which the destination refuses:
// exactly those come back, permanently failed and coded, the others are
// stored, and a redelivery does the same without duplicating anything.
func (s *suite) partial(t *testing.T) {
	const stream = "conf-partial"
	d := s.h.Partial.New(t, stream)
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	b, refused, want := s.h.Partial.Batch(stream)
	for range 2 {
		err := d.Deliver(context.Background(), b)
		var pe *pipeline.PartialError
		if !errors.As(err, &pe) {
			t.Fatalf("Deliver = %v, want a *pipeline.PartialError", err)
		}
		var got []int
		for _, f := range pe.Failed {
			got = append(got, f.Index)
			if pipeline.IsRetryable(f.Err) || errorCode(f.Err) == "" {
				t.Errorf("record %d: %v (code %q), want a permanent error with a code", f.Index, f.Err, errorCode(f.Err))
			}
		}
		if !slices.Equal(got, refused) {
			t.Fatalf("refused records %v, want %v", got, refused)
		}
		s.checkStored(t, stream, want)
	}
}

// failure breaks a working destination's store for real and checks the
// classification of the next delivery and readiness.
func (s *suite) failure(t *testing.T, f Failure) {
	stream := "conf-failure"
	d, brk := f.New(t, stream)
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	var once sync.Once
	broken := func() { once.Do(brk) }
	defer broken() // also when the test fails early
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Ready(ctx); err != nil {
		t.Fatalf("Ready before the failure: %v", err)
	}
	broken()
	err := d.Deliver(ctx, NewBatch(stream, 0, t0, []byte("after the failure")))
	switch {
	case err == nil:
		t.Fatal("Deliver to a broken store succeeded")
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("Deliver = %v, want the store's failure, not the context's", err)
	}
	var pe *pipeline.PartialError
	if errors.As(err, &pe) {
		t.Fatalf("Deliver = %v, want the batch to fail as a whole", err)
	}
	if pipeline.IsRetryable(err) != f.Retryable || errorCode(err) != f.Code {
		t.Errorf("Deliver = %v: retryable %v code %q, want retryable %v code %q", err, pipeline.IsRetryable(err), errorCode(err), f.Retryable, f.Code)
	}
	if err := d.Ready(ctx); err == nil {
		t.Error("Ready reports a broken store ready")
	}
}
