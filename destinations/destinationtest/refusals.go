package destinationtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// DeliverRefused delivers one batch of stream holding datas (IDs "a", "b",
// ... and one arrival time) to d, and checks that exactly the records at
// refused come back in a *pipeline.PartialError, each a permanent
// CodedError of output type format-conversion-failed (records a format such
// as Parquet cannot encode). It returns the batch, for the caller to check
// what the destination stored.
func DeliverRefused(t *testing.T, d pipeline.Destination, stream string, datas []string, refused []int) pipeline.Batch {
	t.Helper()
	b := pipeline.Batch{Stream: stream, ID: pipeline.BatchID{First: 0, End: 500}}
	for i, data := range datas {
		b.Records = append(b.Records, pipeline.Record{ID: string(rune('a' + i)), Data: []byte(data), Arrived: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)})
		b.Bytes += len(data)
	}
	err := d.Deliver(context.Background(), b)
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Deliver = %v, want a *pipeline.PartialError", err)
	}
	var idx []int
	for _, f := range pe.Failed {
		idx = append(idx, f.Index)
		var ce *pipeline.CodedError
		if !errors.As(f.Err, &ce) || ce.OutputType != "format-conversion-failed" || pipeline.IsRetryable(f.Err) {
			t.Errorf("record %d: %v, want a permanent CodedError of output type format-conversion-failed", f.Index, f.Err)
		}
	}
	if !slices.Equal(idx, refused) {
		t.Fatalf("failed records %v, want %v", idx, refused)
	}
	return b
}
