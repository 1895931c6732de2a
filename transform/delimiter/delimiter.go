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

// Compiled is options that passed Compile, in the form the processor
// uses.
type Compiled struct {
	delim []byte
}

// Compile validates the options (every problem at once, each a
// *pipeline.OptionError at its key) and returns them compiled for New.
func (o Options) Compile() (Compiled, error) {
	if o.Delimiter == "" {
		return Compiled{}, pipeline.OptionErrorf("delimiter", `empty; appending nothing does nothing (remove the processor, or use "\n")`)
	}
	return Compiled{delim: []byte(o.Delimiter)}, nil
}

// Validate reports every problem with the options at once (Compile
// without its result).
func (o Options) Validate() error {
	_, err := o.Compile()
	return err
}

// Processor appends a delimiter to every record. It is safe for concurrent
// use.
type Processor struct {
	delim   []byte
	metrics *Metrics
}

var _ pipeline.Processor = (*Processor)(nil)

// New builds the processor from compiled options (see Options.Compile; it
// does not validate them again) and registers the metrics on
// deps.Registry (see NewMetrics).
func New(c Compiled, deps pipeline.Deps) (*Processor, error) {
	if len(c.delim) == 0 {
		return nil, errors.New("append_delimiter: options not compiled (use Options.Compile)")
	}
	m, err := NewMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("append_delimiter: %w", err)
	}
	return &Processor{delim: c.delim, metrics: m}, nil
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
