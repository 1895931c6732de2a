package deaggregate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform"
)

// Error codes and error output type of records this processor fails (see
// the package documentation).
const (
	CodeInvalidJSON       = "RecordDeAggregation.InvalidJSON"
	CodeTooManySubRecords = "RecordDeAggregation.TooManySubRecords"
)

// Keys of pipeline.Record.Meta set on the sub-records of KPL aggregated
// records.
const (
	MetaPartitionKey      = pipeline.MetaPartitionKey
	MetaExplicitHashKey   = pipeline.MetaExplicitHashKey
	MetaSubSequenceNumber = pipeline.MetaSubSequenceNumber
)

// Processor splits records into sub-records. It is safe for concurrent
// use.
type Processor struct {
	s       Compiled
	metrics *Metrics
}

var _ pipeline.Processor = (*Processor)(nil)

// New builds the processor from compiled options (see Options.Compile; it
// does not validate them again) and registers the metrics on
// deps.Registry (see NewMetrics).
func New(c Compiled, deps pipeline.Deps) (*Processor, error) {
	if c.typ == "" {
		return nil, errors.New("record_deaggregation: options not compiled (use Options.Compile)")
	}
	m, err := NewMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("record_deaggregation: %w", err)
	}
	return &Processor{s: c, metrics: m}, nil
}

// ErrorOutputType is the error output type of records this processor
// fails (pipeline.OutputTyper).
func (p *Processor) ErrorOutputType() string { return pipeline.OutputProcessingFailed }

// Process replaces every record by its sub-records, in order; see the
// package documentation for the rules of each type. Sub-record data are
// sub-slices of the input records' data (nothing is copied) and the input
// batch is left intact. Records that cannot be split are reported as
// RecordErrors carrying a *pipeline.CodedError. Process fails as a whole
// only when ctx is done.
func (p *Processor) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, []pipeline.RecordError, error) {
	var (
		out     = builder{in: b.Records}
		failed  []pipeline.RecordError
		pieces  [][]byte
		subs    []kplRecord
		ids     []string
		reasons [3]int // no_magic, bad_md5, invalid_protobuf
		err     error
	)
	for i := range b.Records {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return pipeline.Batch{}, nil, fmt.Errorf("record_deaggregation: %w", err)
			}
		}
		rec := &b.Records[i]
		if p.s.typ == TypeKPL {
			body, reason := kplBody(rec.Data)
			if reason == "" {
				subs, err = decodeKPL(body, p.s.max, subs[:0])
				if err != nil && !errors.Is(err, errTooMany) {
					reason = reasonProtobuf
				}
			}
			if reason != "" {
				reasons[reasonIndex(reason)]++
				out.keep(i)
				continue
			}
			if err != nil {
				out.drop(i)
				failed = append(failed, recordError(i, CodeTooManySubRecords, err))
				continue
			}
			out.drop(i)
			ids = transform.SubRecordIDs(rec.ID, len(subs), ids[:0])
			for j := range subs {
				out.add(kplSubRecord(rec, ids[j], j, &subs[j]))
			}
			continue
		}
		if p.s.typ == TypeJSON {
			pieces, err = splitJSON(rec.Data, p.s.max, pieces[:0])
		} else {
			pieces, err = splitDelimited(rec.Data, p.s.delimiter, p.s.max, pieces[:0])
		}
		if err != nil {
			code := CodeInvalidJSON
			if errors.Is(err, errTooMany) {
				code = CodeTooManySubRecords
			}
			out.drop(i)
			failed = append(failed, recordError(i, code, err))
			continue
		}
		if len(pieces) == 1 {
			if len(pieces[0]) == len(rec.Data) {
				out.keep(i)
				continue
			}
			r := *rec
			r.Data = pieces[0]
			out.drop(i)
			out.add(r)
			continue
		}
		out.drop(i)
		ids = transform.SubRecordIDs(rec.ID, len(pieces), ids[:0])
		for j, d := range pieces {
			out.add(subRecord(rec, ids[j], d))
		}
	}
	res := b
	res.Records = out.records()
	res.Bytes = 0
	for i := range res.Records {
		res.Bytes += len(res.Records[i].Data)
	}
	p.metrics.in.WithLabelValues(b.Stream).Add(float64(len(b.Records)))
	p.metrics.out.WithLabelValues(b.Stream).Add(float64(len(res.Records)))
	for k, n := range reasons {
		if n > 0 {
			p.metrics.passthrough.WithLabelValues(b.Stream, reasonNames[k]).Add(float64(n))
		}
	}
	return res, failed, nil
}

// reasonNames are the passthrough reasons, indexed by reasonIndex.
var reasonNames = [...]string{reasonNoMagic, reasonBadMD5, reasonProtobuf}

func reasonIndex(reason string) int {
	switch reason {
	case reasonNoMagic:
		return 0
	case reasonBadMD5:
		return 1
	}
	return 2
}

func recordError(i int, code string, err error) pipeline.RecordError {
	return pipeline.RecordError{Index: i, Err: &pipeline.CodedError{
		Code:       code,
		OutputType: pipeline.OutputProcessingFailed,
		Err:        err,
	}}
}

// subRecord is a sub-record of rec with ID id and data d. Keys and Meta
// are copied so that later processors may change each sub-record's maps.
func subRecord(rec *pipeline.Record, id string, d []byte) pipeline.Record {
	return pipeline.Record{
		ID:      id,
		Data:    d,
		Arrived: rec.Arrived,
		Keys:    maps.Clone(rec.Keys),
		Meta:    maps.Clone(rec.Meta),
	}
}

// kplSubRecord is user record j of the aggregated record rec: its Meta is
// rec's with the user record's partition key, explicit hash key (removed
// when the user record has none) and index.
func kplSubRecord(rec *pipeline.Record, id string, j int, k *kplRecord) pipeline.Record {
	meta := make(map[string]string, len(rec.Meta)+3)
	maps.Copy(meta, rec.Meta)
	meta[MetaPartitionKey] = k.pk
	if k.hasEHK {
		meta[MetaExplicitHashKey] = k.ehk
	} else {
		delete(meta, MetaExplicitHashKey)
	}
	meta[MetaSubSequenceNumber] = strconv.Itoa(j)
	return pipeline.Record{
		ID:      id,
		Data:    k.data,
		Arrived: rec.Arrived,
		Keys:    maps.Clone(rec.Keys),
		Meta:    meta,
	}
}

// builder assembles the output records, copying the input slice only once
// a record is dropped or replaced: a batch in which no record changes is
// returned as it came.
type builder struct {
	in      []pipeline.Record
	out     []pipeline.Record
	changed bool
}

// keep keeps input record i.
func (b *builder) keep(i int) {
	if b.changed {
		b.out = append(b.out, b.in[i])
	}
}

// drop leaves out input record i (it is replaced or failed).
func (b *builder) drop(i int) {
	if !b.changed {
		b.changed = true
		b.out = make([]pipeline.Record, i, len(b.in)+len(b.in)/2+8)
		copy(b.out, b.in[:i])
	}
}

// add appends a new record; drop must have been called before.
func (b *builder) add(r pipeline.Record) { b.out = append(b.out, r) }

func (b *builder) records() []pipeline.Record {
	if !b.changed {
		return b.in
	}
	return b.out
}

// SubRecordType is the configured type (TypeKPL, TypeJSON or
// TypeDelimited): KPL de-aggregation runs before decompression, JSON and
// DELIMITED after it (see package transform).
func (p *Processor) SubRecordType() string { return p.s.typ }
