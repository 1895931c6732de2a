package object

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// deadLetterContentType is the Content-Type of dead-letter objects.
const deadLetterContentType = "application/x-ndjson"

// WriteDeadLetters writes dls, grouped by output type, as one object of
// newline-delimited Firehose error records per output type, under the
// evaluated error_output_prefix (<error_output_prefix><output-type>/yyyy/MM/dd/HH/
// for a plain one) and named <stream>-1-<time>-<uuid> without extension:
// dead letters are never compressed. Names derive from stream, the output
// type and id, so writing the dead letters of a batch again replaces them.
func (w *Writer) WriteDeadLetters(ctx context.Context, id pipeline.BatchID, stream string, dls []pipeline.DeadLetter) error {
	if err := w.begin("write dead letters"); err != nil {
		return err
	}
	defer w.end()
	if err := ctx.Err(); err != nil {
		return w.errorf("write dead letters: %w", err)
	}
	if err := CheckStreamName(stream); err != nil {
		return w.errorf("write dead letters: %w", err)
	}
	groups, err := groupDeadLetters(dls)
	if err != nil {
		return w.errorf("write dead letters: %w", err)
	}
	ending := w.now()
	for _, g := range groups {
		key, err := w.cfg.spec.DeadLetterKey(stream, g.OutputType, g.Oldest, id)
		if err != nil {
			return w.errorf("write %d dead letters (%s): %w", len(g.Indices), g.OutputType, err)
		}
		size := 0
		for _, i := range g.Indices {
			size += 200 + len(dls[i].Message) + len(dls[i].Record.Data)*4/3
		}
		if err := w.writeDeadLetterObject(ctx, key, size, dls, g, ending); err != nil {
			return w.errorf("write %d dead letters (%s): %w", len(g.Indices), g.OutputType, err)
		}
	}
	return nil
}

func (w *Writer) writeDeadLetterObject(ctx context.Context, key string, size int, dls []pipeline.DeadLetter, g deadLetterGroup, ending time.Time) error {
	obj, err := w.store.Create(ctx, key, Meta{ContentType: deadLetterContentType, SizeHint: size})
	if err != nil {
		return err
	}
	defer obj.Abort()
	out := &tracked{Object: obj}
	if err := writeErrorRecords(out, dls, g.Indices, ending); err != nil {
		if out.err != nil {
			return out.err
		}
		return fmt.Errorf("%s: %w", key, err)
	}
	return obj.Commit()
}
