package delimiter

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/pipeline"
)

// DefaultDelimiter is appended when the configuration names none.
const DefaultDelimiter = "\n"

// Options configure an append_delimiter processor. The YAML keys are the
// processor block's keys in a stream's configuration.
type Options struct {
	// Delimiter is Firehose's Delimiter parameter of
	// AppendDelimiterToRecord: the bytes appended to every record, as plain
	// text (YAML double-quoted escapes apply, e.g. "\r\n"). Default "\n".
	Delimiter string `yaml:"delimiter"`
}

// DefaultOptions returns the defaults a configuration block is decoded onto.
func DefaultOptions() Options { return Options{Delimiter: DefaultDelimiter} }

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	if o.Delimiter == "" {
		return errors.New(`delimiter: empty; appending nothing does nothing (remove the processor, or use "\n")`)
	}
	return nil
}

// Processor appends a delimiter to every record. It is safe for concurrent
// use.
type Processor struct {
	delim   []byte
	metrics *Metrics
}

var _ pipeline.Processor = (*Processor)(nil)

// New validates opts and registers the metrics on deps.Registry (see
// NewMetrics).
func New(opts Options, deps pipeline.Deps) (*Processor, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("append_delimiter: %w", err)
	}
	m, err := NewMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("append_delimiter: %w", err)
	}
	return &Processor{delim: []byte(opts.Delimiter), metrics: m}, nil
}

// Process returns the batch with the delimiter appended to every record's
// data. The input records and their data are not changed: record data may
// share backing arrays (sub-records of one aggregated record, the buffer's
// read buffers), so appending in place could overwrite a neighbour. The new
// data are copied into one arena allocated per batch, each record's slice
// capped at its end. No record fails.
func (p *Processor) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, []pipeline.RecordError, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.Batch{}, nil, fmt.Errorf("append_delimiter: %w", err)
	}
	total := 0
	for i := range b.Records {
		total += len(b.Records[i].Data) + len(p.delim)
	}
	arena := make([]byte, 0, total)
	out := b
	out.Records = make([]pipeline.Record, len(b.Records))
	for i := range b.Records {
		start := len(arena)
		arena = append(arena, b.Records[i].Data...)
		arena = append(arena, p.delim...)
		out.Records[i] = b.Records[i]
		out.Records[i].Data = arena[start:len(arena):len(arena)]
	}
	out.Bytes = total
	n := float64(len(b.Records))
	p.metrics.in.WithLabelValues(b.Stream).Add(n)
	p.metrics.out.WithLabelValues(b.Stream).Add(n)
	return out, nil, nil
}
