package s3

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/pipeline"
)

// deadLetterMeta is the metadata of dead-letter objects: uncompressed
// newline-delimited JSON, with the destination's encryption and storage
// class.
func (d *Destination) deadLetterMeta() objectMeta {
	m := d.meta
	m.contentType = "application/x-ndjson"
	m.contentEncoding = ""
	return m
}

// WriteDeadLetters writes dls, grouped by output type, as one object of
// newline-delimited Firehose error-record JSON per output type, in the
// destination's bucket under the error output prefix (see
// DeadLetterKey). Keys derive from the stream, the output type and id, so
// writing the dead letters of a batch again replaces them.
func (d *Destination) WriteDeadLetters(ctx context.Context, id pipeline.BatchID, stream string, dls []pipeline.DeadLetter) error {
	if err := d.begin("write dead letters"); err != nil {
		return err
	}
	defer d.inflight.Done()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 destination %s: write dead letters: %w", d.stream, err)
	}
	if !streamNameRE.MatchString(stream) {
		return fmt.Errorf("s3 destination %s: write dead letters: invalid stream name %q", d.stream, stream)
	}
	groups, err := format.GroupDeadLetters(dls)
	if err != nil {
		return fmt.Errorf("s3 destination %s: write dead letters: %w", d.stream, err)
	}
	ending := d.now()
	meta := d.deadLetterMeta()
	for _, g := range groups {
		size := 0
		for _, i := range g.Indices {
			size += 200 + len(dls[i].Message) + len(dls[i].Record.Data)*4/3
		}
		key, err := d.DeadLetterKey(stream, g.OutputType, g.Oldest, id)
		if err != nil {
			return fmt.Errorf("s3 destination %s: write %d dead letters (%s): %w", d.stream, len(g.Indices), g.OutputType, err)
		}
		if err := d.writeDeadLetterObject(ctx, key, meta, size, dls, g.Indices, ending); err != nil {
			return err
		}
	}
	return nil
}

// DeadLetterKey is the key of the dead letters of type outputType of
// batch id whose oldest record arrived at oldest: the evaluated
// error_output_prefix (<error_output_prefix><output-type>/yyyy/MM/dd/HH/
// when plain) and <stream>-1-<time>-<uuid>, without extension (dead
// letters are uncompressed JSON lines).
func (d *Destination) DeadLetterKey(stream, outputType string, oldest time.Time, id pipeline.BatchID) (string, error) {
	return d.spec.DeadLetterKey(stream, outputType, oldest, id)
}

func (d *Destination) writeDeadLetterObject(ctx context.Context, key string, meta objectMeta, size int, dls []pipeline.DeadLetter, idx []int, ending time.Time) (err error) {
	up := d.newUpload(ctx, key, meta, size)
	defer up.release()
	defer func() {
		if err != nil {
			up.abort()
		}
	}()
	if err := format.WriteErrorRecords(up, dls, idx, ending); err != nil {
		if uerr := up.err(); uerr != nil {
			return uerr
		}
		return fmt.Errorf("s3 destination %s: dead letters s3://%s/%s: %w", d.stream, d.bucket, key, err)
	}
	return up.finish()
}
