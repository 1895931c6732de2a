package assemble

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/destinations/file"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/filestore"
	"github.com/sluice-dev/sluice/destinations/object/s3store"
	"github.com/sluice-dev/sluice/destinations/s3"
)

// Read access to a stream's dead letters, for `sluice dlq` (commands see
// the object layer through these names only).
type (
	// DeadLetters reads one stream's dead letters from its error output.
	DeadLetters = object.DeadLetters
	// DeadLetterObject is one object of dead letters.
	DeadLetterObject = object.DeadLetterObject
	// DeadLetterRecord is one error record, its data decoded.
	DeadLetterRecord = object.DeadLetterRecord
)

// ErrNotDeadLetters is wrapped by DeadLetters.Each for an object that
// holds no error records.
var ErrNotDeadLetters = object.ErrNotDeadLetters

// OpenDeadLetters checks cfg as the daemon would and opens, for reading
// only, the error output of stream: its error_output block, or its file
// or s3 destination (whose dead letters go under its own
// error_output_prefix). A relative path is resolved against cfg.DataDir.
// Nothing is created, written or removed; an S3 store's client is built
// without I/O (the first List reaches the bucket). Close the result.
func OpenDeadLetters(ctx context.Context, cfg *config.Config, stream string) (*DeadLetters, error) {
	p, err := checkPlan(cfg)
	if err != nil {
		return nil, err
	}
	var sp *streamPlan
	for i := range p.streams {
		if p.streams[i].cfg.Name == stream {
			sp = &p.streams[i]
		}
	}
	if sp == nil {
		return nil, fmt.Errorf("no stream %q in %s", stream, cfg.File)
	}
	s := sp.cfg
	comp, kind := s.Destination, s.Destination.Type
	if sp.out != nil {
		_, rest, errs := splitMode(s.ErrorOutput)
		if len(errs) > 0 {
			return nil, errs
		}
		comp, kind = rest, s.ErrorOutput.Type
	} else if !sp.dest.errorOutput {
		return nil, fmt.Errorf("stream %s has no error output", stream)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %q: %w", cfg.DataDir, err)
	}
	// The checked value keeps the compiled object options to itself: the
	// block is decoded again, as check did (it cannot fail differently).
	switch kind {
	case "file":
		opts := file.DefaultOptions()
		if err := comp.Decode(&opts); err != nil {
			return nil, fmt.Errorf("stream %s: error output: %w", stream, err)
		}
		fc, err := file.Compile(opts)
		if err != nil {
			return nil, fmt.Errorf("stream %s: error output: %w", stream, err)
		}
		oc, err := object.Compile(opts.Options, filestore.Rule)
		if err != nil {
			return nil, fmt.Errorf("stream %s: error output: %w", stream, err)
		}
		rd, err := filestore.NewReader(fc.Where(dataDir))
		if err != nil {
			return nil, fmt.Errorf("stream %s: error output: %w", stream, err)
		}
		rd.Decrypt(sp.keys) // objects written encrypted are read with the configured keys
		return object.NewDeadLetters(oc, rd, stream, rd.Root())
	case "s3":
		opts := s3.DefaultOptions()
		if err := comp.Decode(&opts); err != nil {
			return nil, fmt.Errorf("stream %s: error output: %w", stream, err)
		}
		oc, err := object.Compile(opts.Options, s3store.Rule)
		if err != nil {
			return nil, fmt.Errorf("stream %s: error output: %w", stream, err)
		}
		st, err := s3store.New(ctx, opts.Config, nil)
		if err != nil {
			return nil, fmt.Errorf("stream %s: error output: %w", stream, err)
		}
		d, err := object.NewDeadLetters(oc, st, stream, "s3://"+opts.Bucket)
		if err != nil {
			_ = st.Close(ctx)
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("stream %s: error output type %q cannot be read", stream, kind)
}
