// Package destinationtest is a conformance suite for pipeline.Destination
// and pipeline.ErrorOutput implementations. A destination's tests call Run
// with a Harness that creates the destination and reads back what it
// stored. Besides delivery (read-back, idempotent redelivery, cancellation,
// concurrency, close) it checks partial failures, the classification of
// real store failures as retryable or permanent, readiness, and the error
// output side (dead letters and backups, idempotent and readable back).
package destinationtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// Harness adapts a destination to the suite.
type Harness struct {
	// New returns a fresh destination for stream with nothing stored yet.
	// The suite closes it.
	New func(t *testing.T, stream string) pipeline.Destination
	// Read returns everything the destination stores for stream, one entry
	// per stored unit (object, document, row...), decoded to the bytes the
	// destination was asked to store (e.g. decompressed). Order does not
	// matter.
	Read func(t *testing.T, stream string) [][]byte
	// Expect returns the units that delivering b must store. When nil, a
	// batch is expected to be stored as one unit holding the concatenation
	// of its records' data (Firehose's object layout).
	Expect func(b pipeline.Batch) [][]byte
	// Partial, when set, checks that the records a destination refuses
	// come back in a *pipeline.PartialError while the others are stored.
	Partial *Partial
	// Failures are real failures of the destination's store, each checked
	// for its classification (see Failure).
	Failures []Failure
	// ErrorOutput, when set, checks the destination's error output side.
	ErrorOutput *ErrorOutput
}

// Partial is a destination that refuses some records of a batch.
type Partial struct {
	// New returns a fresh destination for stream; Harness.Read reads what
	// it stores.
	New func(t *testing.T, stream string) pipeline.Destination
	// Batch returns a batch of stream, the indices of the records the
	// destination must refuse (permanently, with an error code), and the
	// units storing the others.
	Batch func(stream string) (b pipeline.Batch, refused []int, want [][]byte)
}

// Failure is a real failure of a destination's store: a directory replaced
// by a file, a server stopped, a bucket deleted.
type Failure struct {
	Name string
	// New returns a fresh, working destination for stream and brk, which
	// breaks its store. The suite calls brk once, before its test returns.
	New func(t *testing.T, stream string) (d pipeline.Destination, brk func())
	// Retryable and Code are the classification Deliver must report once
	// the store is broken (pipeline.IsRetryable, the error's ErrorCode).
	Retryable bool
	Code      string
}

// ErrorOutput adapts a pipeline.ErrorOutput to the suite.
type ErrorOutput struct {
	// New returns a fresh error output of stream with nothing stored yet.
	// The suite closes it.
	New func(t *testing.T, stream string) pipeline.ErrorOutput
	// ReadDeadLetters returns the dead letters stored for stream, decoded:
	// Record.Data, Record.Arrived (to the millisecond), Attempts, Code,
	// Message and OutputType. Order does not matter.
	ReadDeadLetters func(t *testing.T, stream string) []pipeline.DeadLetter
	// ReadBackups returns the units the backups of stream's batches
	// stored, like Harness.Read.
	ReadBackups func(t *testing.T, stream string) [][]byte
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.Read == nil {
		t.Fatal("destinationtest: Harness.New and Harness.Read are required")
	}
	if h.Expect == nil {
		h.Expect = concatenated
	}
	s := &suite{h: h}
	t.Run("DeliverReadBack", s.deliverReadBack)
	t.Run("RedeliverIsIdempotent", s.redeliver)
	t.Run("DistinctBatchesAreKept", s.distinctBatches)
	t.Run("EmptyRecords", s.emptyRecords)
	t.Run("LargeBatch", s.largeBatch)
	t.Run("CancelledContext", s.cancelled)
	t.Run("CancelDuringDelivery", s.cancelDuring)
	t.Run("ConcurrentDeliveries", s.concurrent)
	t.Run("Close", s.close)
	t.Run("Ready", s.ready)
	if h.Partial != nil {
		t.Run("PartialFailure", s.partial)
	}
	for _, f := range h.Failures {
		t.Run("Failure/"+f.Name, func(t *testing.T) { s.failure(t, f) })
	}
	if h.ErrorOutput != nil {
		t.Run("ErrorOutput/DeadLetters", s.deadLetters)
		t.Run("ErrorOutput/Backup", s.backup)
		t.Run("ErrorOutput/Close", s.errorOutputClose)
	}
}

type suite struct{ h Harness }

func concatenated(b pipeline.Batch) [][]byte {
	var buf bytes.Buffer
	for _, r := range b.Records {
		buf.Write(r.Data)
	}
	return [][]byte{buf.Bytes()}
}

// NewBatch builds a batch of stream holding datas, with identity
// [first, first+sum of sizes+16 per record) and arrival times one
// millisecond apart starting at arrived.
func NewBatch(stream string, first pipeline.Position, arrived time.Time, datas ...[]byte) pipeline.Batch {
	b := pipeline.Batch{Stream: stream, ID: pipeline.BatchID{First: first}}
	pos := first
	for i, d := range datas {
		b.Records = append(b.Records, pipeline.Record{
			ID:      fmt.Sprintf("%s-%d", stream, pos),
			Data:    d,
			Arrived: arrived.Add(time.Duration(i) * time.Millisecond),
		})
		b.Bytes += len(d)
		pos += pipeline.Position(len(d) + 16)
	}
	b.ID.End = pos
	return b
}

func (s *suite) newDest(t *testing.T, stream string) pipeline.Destination {
	t.Helper()
	d := s.h.New(t, stream)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return d
}

func (s *suite) deliver(t *testing.T, d pipeline.Destination, b pipeline.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Deliver(ctx, b); err != nil {
		t.Fatalf("Deliver(batch %v, %d records): %v", b.ID, len(b.Records), err)
	}
}

// checkStored compares the stored units with want, as multisets.
func (s *suite) checkStored(t *testing.T, stream string, want [][]byte) {
	t.Helper()
	got := s.h.Read(t, stream)
	if diff := diffUnits(got, want); diff != "" {
		t.Fatalf("stored units differ from the expected ones: %s", diff)
	}
}

func diffUnits(got, want [][]byte) string {
	g := slices.Clone(got)
	w := slices.Clone(want)
	slices.SortFunc(g, bytes.Compare)
	slices.SortFunc(w, bytes.Compare)
	if len(g) != len(w) {
		return fmt.Sprintf("got %d units (sizes %v), want %d (sizes %v)", len(g), sizes(g), len(w), sizes(w))
	}
	for i := range g {
		if !bytes.Equal(g[i], w[i]) {
			return fmt.Sprintf("unit %d (sorted): got %d bytes %s, want %d bytes %s", i, len(g[i]), preview(g[i]), len(w[i]), preview(w[i]))
		}
	}
	return ""
}

func sizes(units [][]byte) []int {
	out := make([]int, len(units))
	for i, u := range units {
		out[i] = len(u)
	}
	return out
}

func preview(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q...", b[:64])
	}
	return fmt.Sprintf("%q", b)
}

var t0 = time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC)

func (s *suite) deliverReadBack(t *testing.T) {
	const stream = "conf-readback"
	d := s.newDest(t, stream)
	b := NewBatch(stream, 4096, t0,
		[]byte(`{"a":1}`), []byte("plain text\n"), []byte{0, 1, 2, 0xff, 0xfe, '\n', '\r'},
		bytes.Repeat([]byte("x"), 70000), []byte("last"))
	s.deliver(t, d, b)
	s.checkStored(t, stream, s.h.Expect(b))
}

func (s *suite) redeliver(t *testing.T) {
	const stream = "conf-redeliver"
	d := s.newDest(t, stream)
	b := NewBatch(stream, 0, t0, []byte("one"), []byte("two"), []byte("three"))
	s.deliver(t, d, b)
	s.deliver(t, d, b)
	s.checkStored(t, stream, s.h.Expect(b))
	// A new destination instance (a restart) redelivering the same batch
	// must not duplicate it either.
	d2 := s.newDest(t, stream)
	s.deliver(t, d2, b)
	s.checkStored(t, stream, s.h.Expect(b))
}

func (s *suite) distinctBatches(t *testing.T) {
	const stream = "conf-distinct"
	d := s.newDest(t, stream)
	// Same records, same arrival times, different identities: two units.
	b1 := NewBatch(stream, 0, t0, []byte("same"), []byte("data"))
	b2 := NewBatch(stream, b1.ID.End, t0, []byte("same"), []byte("data"))
	s.deliver(t, d, b1)
	s.deliver(t, d, b2)
	s.checkStored(t, stream, append(s.h.Expect(b1), s.h.Expect(b2)...))
}

func (s *suite) emptyRecords(t *testing.T) {
	const stream = "conf-empty"
	d := s.newDest(t, stream)
	mixed := NewBatch(stream, 0, t0, []byte{}, []byte("a"), nil, []byte("b"), []byte{})
	allEmpty := NewBatch(stream, mixed.ID.End, t0.Add(time.Hour), []byte{}, nil)
	s.deliver(t, d, mixed)
	s.deliver(t, d, allEmpty)
	s.checkStored(t, stream, append(s.h.Expect(mixed), s.h.Expect(allEmpty)...))
}

func (s *suite) largeBatch(t *testing.T) {
	const stream = "conf-large"
	d := s.newDest(t, stream)
	datas := make([][]byte, 5000)
	for i := range datas {
		datas[i] = fmt.Appendf(nil, "record %06d %s", i, bytes.Repeat([]byte{byte('a' + i%26)}, i%300))
	}
	b := NewBatch(stream, 1<<40, t0, datas...)
	s.deliver(t, d, b)
	s.checkStored(t, stream, s.h.Expect(b))
}

func (s *suite) cancelled(t *testing.T) {
	const stream = "conf-cancelled"
	d := s.newDest(t, stream)
	b := NewBatch(stream, 0, t0, []byte("never"), []byte("stored"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Deliver(ctx, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver with a cancelled context = %v, want an error wrapping context.Canceled", err)
	}
	s.checkStored(t, stream, nil)
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := d.Deliver(ctx, b); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deliver with an expired deadline = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	s.checkStored(t, stream, nil)
	// The destination still works afterwards.
	s.deliver(t, d, b)
	s.checkStored(t, stream, s.h.Expect(b))
}

// cancelDuring cancels while a large batch is being delivered: either the
// delivery completes, or it fails with the context's error and nothing
// partial is visible.
func (s *suite) cancelDuring(t *testing.T) {
	const stream = "conf-cancel-during"
	d := s.newDest(t, stream)
	datas := make([][]byte, 20000)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 64)
	for i := range datas {
		datas[i] = chunk
	}
	b := NewBatch(stream, 0, t0, datas...)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Deliver(ctx, b) }()
	cancel() // wherever the delivery is by then

	select {
	case err := <-errc:
		switch {
		case err == nil:
			s.checkStored(t, stream, s.h.Expect(b))
		case errors.Is(err, context.Canceled):
			s.checkStored(t, stream, nil)
		default:
			t.Fatalf("Deliver cancelled midway = %v, want nil or an error wrapping context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Deliver did not return within 30s of its context being cancelled")
	}
}

func (s *suite) concurrent(t *testing.T) {
	const stream = "conf-concurrent"
	d := s.newDest(t, stream)
	const n = 8
	batches := make([]pipeline.Batch, n)
	var want [][]byte
	var pos pipeline.Position
	for i := range batches {
		batches[i] = NewBatch(stream, pos, t0.Add(time.Duration(i)*time.Minute),
			fmt.Appendf(nil, "batch %d record 0;", i), fmt.Appendf(nil, "batch %d record 1;", i))
		pos = batches[i].ID.End
		want = append(want, s.h.Expect(batches[i])...)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range batches {
		wg.Go(func() { errs[i] = d.Deliver(context.Background(), batches[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Deliver: %v", err)
	}
	s.checkStored(t, stream, want)
}

func (s *suite) close(t *testing.T) {
	const stream = "conf-close"
	d := s.h.New(t, stream)
	b := NewBatch(stream, 0, t0, []byte("before close"))
	s.deliver(t, d, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	after := NewBatch(stream, b.ID.End, t0, []byte("after close"))
	if err := d.Deliver(ctx, after); err == nil {
		t.Fatal("Deliver after Close succeeded, want an error")
	}
	s.checkStored(t, stream, s.h.Expect(b))
}
