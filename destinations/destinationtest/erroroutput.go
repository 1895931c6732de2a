package destinationtest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

func (s *suite) newErrorOutput(t *testing.T, stream string) pipeline.ErrorOutput {
	t.Helper()
	eo := s.h.ErrorOutput.New(t, stream)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eo.Close(ctx)
	})
	return eo
}

func deadLetters(first int, arrived time.Time) []pipeline.DeadLetter {
	return []pipeline.DeadLetter{
		{Record: pipeline.Record{Data: fmt.Appendf(nil, "record %d", first), Arrived: arrived}, Attempts: 3, Code: "X.DeliveryFailed", Message: "refused", OutputType: pipeline.OutputDeliveryFailed},
		{Record: pipeline.Record{Data: []byte{0, 0xff, '\n', '"'}, Arrived: arrived.Add(time.Second)}, Attempts: 1, Code: "Lambda.ProcessingFailedStatus", Message: "bad <json>", OutputType: pipeline.OutputProcessingFailed},
		{Record: pipeline.Record{Data: []byte{}, Arrived: arrived.Add(2 * time.Second)}, Attempts: 2, Code: "X.Default", Message: "no output type"},
		{Record: pipeline.Record{Data: fmt.Appendf(nil, "record %d", first+3), Arrived: arrived.Add(3 * time.Second)}, Attempts: 5, Code: "X.DeliveryFailed", Message: "again", OutputType: pipeline.OutputDeliveryFailed},
	}
}

// normal is a dead letter as read back: arrival to the millisecond in UTC,
// the default output type filled in.
func normal(dl pipeline.DeadLetter) pipeline.DeadLetter {
	out := pipeline.DeadLetter{
		Record:   pipeline.Record{Data: dl.Record.Data, Arrived: time.UnixMilli(dl.Record.Arrived.UnixMilli()).UTC()},
		Attempts: dl.Attempts, Code: dl.Code, Message: dl.Message, OutputType: dl.OutputType,
	}
	if out.OutputType == "" {
		out.OutputType = pipeline.OutputDeliveryFailed
	}
	if out.Record.Data == nil {
		out.Record.Data = []byte{}
	}
	return out
}

func compareDL(a, b pipeline.DeadLetter) int {
	return cmp.Or(cmp.Compare(a.OutputType, b.OutputType), bytes.Compare(a.Record.Data, b.Record.Data),
		a.Record.Arrived.Compare(b.Record.Arrived), cmp.Compare(a.Code, b.Code), cmp.Compare(a.Message, b.Message),
		cmp.Compare(a.Attempts, b.Attempts))
}

func (s *suite) checkDeadLetters(t *testing.T, stream string, want []pipeline.DeadLetter) {
	t.Helper()
	got := s.h.ErrorOutput.ReadDeadLetters(t, stream)
	for i := range got {
		got[i] = normal(got[i])
	}
	w := make([]pipeline.DeadLetter, len(want))
	for i := range want {
		w[i] = normal(want[i])
	}
	slices.SortFunc(got, compareDL)
	slices.SortFunc(w, compareDL)
	if len(got) != len(w) {
		t.Fatalf("%d dead letters stored, want %d:\n got %v\nwant %v", len(got), len(w), got, w)
	}
	for i := range got {
		if compareDL(got[i], w[i]) != 0 {
			t.Fatalf("dead letter %d (sorted):\n got %+v\nwant %+v", i, got[i], w[i])
		}
	}
}

// deadLetters writes dead letters of several output types, again for the
// same batch (no duplicates), then for another batch (kept beside).
func (s *suite) deadLetters(t *testing.T) {
	const stream = "conf-dead-letters"
	eo := s.newErrorOutput(t, stream)
	ctx := context.Background()
	id1 := pipeline.BatchID{First: 0, End: 100}
	dl1 := deadLetters(0, t0)
	for range 2 {
		if err := eo.WriteDeadLetters(ctx, id1, stream, dl1); err != nil {
			t.Fatalf("WriteDeadLetters: %v", err)
		}
		s.checkDeadLetters(t, stream, dl1)
	}
	// A new instance (a restart) writing the same batch's dead letters.
	if err := s.newErrorOutput(t, stream).WriteDeadLetters(ctx, id1, stream, dl1); err != nil {
		t.Fatalf("WriteDeadLetters after a restart: %v", err)
	}
	s.checkDeadLetters(t, stream, dl1)
	// Another batch, and a part of the first one: kept beside.
	id2 := pipeline.BatchID{First: 100, End: 200}
	dl2 := deadLetters(10, t0.Add(time.Hour))
	part := pipeline.BatchID{First: 0, End: 100, Part: 1, Round: 2}
	dl3 := deadLetters(20, t0)
	if err := eo.WriteDeadLetters(ctx, id2, stream, dl2); err != nil {
		t.Fatal(err)
	}
	if err := eo.WriteDeadLetters(ctx, part, stream, dl3); err != nil {
		t.Fatal(err)
	}
	s.checkDeadLetters(t, stream, slices.Concat(dl1, dl2, dl3))
	if err := eo.WriteDeadLetters(ctx, id1, stream, nil); err != nil {
		t.Errorf("WriteDeadLetters of none: %v", err)
	}
	if err := eo.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// backup stores copies of batches: read back, idempotent per batch.
func (s *suite) backup(t *testing.T) {
	const stream = "conf-backup"
	eo := s.newErrorOutput(t, stream)
	ctx := context.Background()
	b1 := NewBatch(stream, 0, t0, []byte("one"), []byte("two"))
	b2 := NewBatch(stream, b1.ID.End, t0, []byte("three"))
	for range 2 {
		for _, b := range []pipeline.Batch{b1, b2} {
			if err := eo.Backup(ctx, b); err != nil {
				t.Fatalf("Backup: %v", err)
			}
		}
	}
	want := append(s.h.Expect(b1), s.h.Expect(b2)...)
	if diff := diffUnits(s.h.ErrorOutput.ReadBackups(t, stream), want); diff != "" {
		t.Fatalf("backups differ from the batches: %s", diff)
	}
}

func (s *suite) errorOutputClose(t *testing.T) {
	const stream = "conf-eo-close"
	eo := s.h.ErrorOutput.New(t, stream)
	if err := eo.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := eo.WriteDeadLetters(context.Background(), pipeline.BatchID{End: 1}, stream, deadLetters(0, t0)); err == nil {
		t.Error("WriteDeadLetters after Close succeeded")
	}
	if err := eo.Backup(context.Background(), NewBatch(stream, 0, t0, []byte("x"))); err == nil {
		t.Error("Backup after Close succeeded")
	}
	s.checkDeadLetters(t, stream, nil)
}
