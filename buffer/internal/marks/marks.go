// Package marks holds the rules of a buffer's in-flight set, shared by
// buffer/disk and buffer/memory: batches are marked in log order, do not
// overlap, are at most buffer.MaxInflight, and Commit drops those it
// covers.
package marks

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/pipeline"
)

// ErrMarked reports a batch that is in the set already (a no-op for
// MarkInflight).
var ErrMarked = errors.New("already in flight")

// Check reports whether id (a range: Part and Round zero) may be added to
// set, the batches in flight, given the committed and head positions:
// ErrMarked when it is in set already, another error when it is empty,
// outside [committed, head], starts before the end of the last batch of
// set, or would make more than buffer.MaxInflight.
func Check(set []pipeline.BatchID, committed, head pipeline.Position, id pipeline.BatchID) error {
	if id.End <= id.First {
		return errors.New("empty batch")
	}
	if id.First < committed || id.End > head {
		return fmt.Errorf("outside the undelivered range [%d, %d]", committed, head)
	}
	if slices.Contains(set, id) {
		return ErrMarked
	}
	if n := len(set); n > 0 && id.First < set[n-1].End {
		return fmt.Errorf("out of order: it starts before the end of batch %s, already in flight", set[n-1])
	}
	if len(set) >= buffer.MaxInflight {
		return fmt.Errorf("%d batches in flight already, the most a buffer keeps", buffer.MaxInflight)
	}
	return nil
}

// Add returns a new set: set followed by id. set is not modified.
func Add(set []pipeline.BatchID, id pipeline.BatchID) []pipeline.BatchID {
	return append(slices.Clip(set), id)
}

// Commit returns the batches of set that end after upTo (nil when none),
// sharing set's memory: sets are replaced, never modified.
func Commit(set []pipeline.BatchID, upTo pipeline.Position) []pipeline.BatchID {
	i := 0
	for i < len(set) && set[i].End <= upTo {
		i++
	}
	if i == len(set) {
		return nil
	}
	return set[i:]
}
