package file

import (
	"context"
	"fmt"
	"io"

	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/pipeline"
)

// WriteDeadLetters writes dls, grouped by output type, as one
// newline-delimited JSON object per output type under the evaluated
// error_output_prefix (<error_output_prefix><output-type>/yyyy/MM/dd/HH/
// for a plain one). Object names derive
// from stream, output type and id, so writing the dead letters of a batch
// again replaces them. Dead-letter objects are never compressed.
func (d *Destination) WriteDeadLetters(ctx context.Context, id pipeline.BatchID, stream string, dls []pipeline.DeadLetter) error {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return fmt.Errorf("file destination %s: write dead letters: %w", d.stream, pipeline.ErrClosed)
	}
	if !streamNameRE.MatchString(stream) {
		return fmt.Errorf("file destination %s: write dead letters: invalid stream name %q", d.stream, stream)
	}
	groups, err := format.GroupDeadLetters(dls)
	if err != nil {
		return fmt.Errorf("file destination %s: write dead letters: %w", d.stream, err)
	}
	ending := d.now()
	for _, g := range groups {
		key, err := d.spec.DeadLetterKey(stream, g.OutputType, g.Oldest, id)
		if err != nil {
			return fmt.Errorf("file destination %s: write %d dead letters (%s): %w", d.stream, len(g.Indices), g.OutputType, err)
		}
		err = d.writeObject(ctx, key, uncompressed, func(w io.Writer) error {
			return format.WriteErrorRecords(w, dls, g.Indices, ending)
		})
		if err != nil {
			return fmt.Errorf("file destination %s: write %d dead letters (%s): %w", d.stream, len(g.Indices), g.OutputType, err)
		}
	}
	return nil
}
