package jq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// Error code and error output type of records whose partition keys cannot
// be extracted (see the package documentation for their sources).
const (
	CodeMetadataExtractionFailed   = "DynamicPartitioning.MetadataExtractionFailed"
	OutputMetadataExtractionFailed = "metadata-extraction-failed"
	msgNonJSON                     = "Non JSON record provided"
)

// Processor extracts partition keys from JSON records with a jq query. It
// is safe for concurrent use.
type Processor struct {
	c       Compiled
	metrics *Metrics
}

var _ pipeline.Processor = (*Processor)(nil)

// New builds the processor from compiled options (see Options.Compile,
// which compiled the query once; New does not validate again) and
// registers the metrics on deps.Registry (see NewMetrics).
func New(c Compiled, deps pipeline.Deps) (*Processor, error) {
	if c.code == nil {
		return nil, errors.New("metadata_extraction: options not compiled (use Options.Compile)")
	}
	m, err := NewMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("metadata_extraction: %w", err)
	}
	return &Processor{c: c, metrics: m}, nil
}

// Keys returns the partition key names the query extracts (see
// Compiled.Keys).
func (p *Processor) Keys() []string { return p.c.Keys() }

// ErrorOutputType is the error output type of records this processor
// fails (pipeline.OutputTyper).
func (p *Processor) ErrorOutputType() string { return OutputMetadataExtractionFailed }

// Process sets KeyPrefix+name in the Keys of every record whose partition
// keys can be extracted and returns those records, in order, without
// copying their data. Every other record is reported as a RecordError
// carrying a *pipeline.CodedError (CodeMetadataExtractionFailed,
// OutputMetadataExtractionFailed); its Keys are left unchanged. Process
// fails as a whole only when ctx is done.
func (p *Processor) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, []pipeline.RecordError, error) {
	start := time.Now()
	defer func() {
		p.metrics.duration.WithLabelValues(b.Stream).Observe(time.Since(start).Seconds())
	}()
	bud := newBudget(ctx, p.c.timeout)
	defer bud.stop()
	vals := make([]string, len(p.c.keys))
	var failed []pipeline.RecordError
	for i := range b.Records {
		if err := ctx.Err(); err != nil {
			return pipeline.Batch{}, nil, fmt.Errorf("metadata_extraction: %w", err)
		}
		err := p.extract(bud, b.Records[i].Data, vals)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return pipeline.Batch{}, nil, fmt.Errorf("metadata_extraction: %w", cerr)
			}
			failed = append(failed, pipeline.RecordError{Index: i, Err: &pipeline.CodedError{
				Code:       CodeMetadataExtractionFailed,
				OutputType: OutputMetadataExtractionFailed,
				Err:        err,
			}})
			continue
		}
		rec := &b.Records[i]
		if rec.Keys == nil {
			rec.Keys = make(map[string]string, len(p.c.keys))
		}
		for k, v := range vals {
			rec.Keys[p.c.keys[k].key] = v
		}
	}
	if len(failed) == 0 {
		return b, nil, nil
	}
	// The runner dead-letters failed records from the input batch by
	// index, so the output is a new slice and the input stays intact.
	out := b
	out.Records = make([]pipeline.Record, 0, len(b.Records)-len(failed))
	next := 0
	for _, f := range failed {
		out.Records = append(out.Records, b.Records[next:f.Index]...)
		next = f.Index + 1
	}
	out.Records = append(out.Records, b.Records[next:]...)
	out.Bytes = 0
	for i := range out.Records {
		out.Bytes += len(out.Records[i].Data)
	}
	return out, failed, nil
}

// extract parses data, runs the query and renders every partition key
// value into vals (in p.c.keys order).
func (p *Processor) extract(bud *budget, data []byte, vals []string) error {
	doc, err := decode(data, p.c.fields)
	if err != nil {
		return err
	}
	ctx := bud.start()
	iter := p.c.code.RunWithContext(ctx, doc)
	v, ok := iter.Next()
	if !ok {
		return errors.New("the query produced no result")
	}
	if err, isErr := v.(error); isErr {
		if errors.Is(err, context.Canceled) && bud.expired() {
			return fmt.Errorf("the query ran longer than %v", bud.d)
		}
		return fmt.Errorf("query failed: %w", err)
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return fmt.Errorf("the query produced %s, not an object", typeName(v))
	}
	if extra, more := iter.Next(); more {
		if err, isErr := extra.(error); isErr {
			return fmt.Errorf("query failed: %w", err)
		}
		return errors.New("the query produced more than one result")
	}
	for i, k := range p.c.keys {
		s, err := render(obj[k.name])
		if err != nil {
			return fmt.Errorf("partition key %q: %w", k.name, err)
		}
		vals[i] = s
	}
	return nil
}

// render returns a partition key value: strings as they are, numbers as jq
// prints them (integers without a fraction or exponent), booleans as true
// or false. null (a missing field), arrays and objects are errors.
func render(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		return formatFloat(v), nil
	case *big.Int:
		return v.String(), nil
	case json.Number:
		return v.String(), nil
	case nil:
		return "", errors.New("the value is null (is the field missing from the record?)")
	default:
		return "", fmt.Errorf("the value is %s, not a string, number or boolean", typeName(v))
	}
}

// formatFloat prints f as jq does: shortest representation, no exponent
// for magnitudes in [1e-6, 1e21), infinities clamped to ±MaxFloat64 and
// NaN as null.
func formatFloat(f float64) string {
	if math.IsNaN(f) {
		return "null"
	}
	f = min(max(f, -math.MaxFloat64), math.MaxFloat64)
	format := byte('f')
	if x := math.Abs(f); x != 0 && (x < 1e-6 || x >= 1e21) {
		format = 'e'
	}
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7, e+21 stays (as jq prints it)
		if n := len(s); n >= 4 && s[n-4] == 'e' && s[n-3] == '-' && s[n-2] == '0' {
			s[n-2] = s[n-1]
			s = s[:n-1]
		}
	}
	return string(s)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// nonJSONError is a record that is not one JSON value. Its message starts
// with Firehose's own ("Non JSON record provided").
type nonJSONError struct{ err error }

func (e nonJSONError) Error() string { return msgNonJSON + " (" + e.err.Error() + ")" }
func (e nonJSONError) Unwrap() error { return e.err }

// budget bounds the evaluation of each record with one context and one
// timer per batch: start re-arms the timer, and only when it has already
// fired (the previous record used up its budget, or the timer fired between
// two records) does it make a new context. Zero d means no bound.
type budget struct {
	parent context.Context
	d      time.Duration
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer
}

func newBudget(parent context.Context, d time.Duration) *budget {
	return &budget{parent: parent, d: d}
}

// start returns the context for the next record.
func (b *budget) start() context.Context {
	if b.d <= 0 {
		return b.parent
	}
	if b.timer != nil && b.timer.Reset(b.d) {
		return b.ctx
	}
	b.stop()
	b.ctx, b.cancel = context.WithCancel(b.parent)
	b.timer = time.AfterFunc(b.d, b.cancel)
	return b.ctx
}

// expired reports whether the current record's context was cancelled by
// the timer rather than by the parent.
func (b *budget) expired() bool {
	return b.d > 0 && b.ctx != nil && b.ctx.Err() != nil && b.parent.Err() == nil
}

func (b *budget) stop() {
	if b.timer != nil {
		b.timer.Stop()
		b.cancel()
	}
}
