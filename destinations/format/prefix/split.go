package prefix

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// Error output types and codes of records Split cannot place. Firehose
// documents the output types but not the codes; sources:
//   - partitioning-failed: records whose partition keys are missing go
//     under <ErrorOutputPrefix> with error-output-type "partitioning-failed"
//     (aws/aws-cdk integ test
//     framework-integ/test/aws-kinesisfirehose/test/integ.dynamic-partitioning-with-lambda.ts,
//     run against the real service: a record without key2 lands under
//     error-output/partitioning-failed/).
//   - DynamicPartitioning.MetadataExtractionFailed: the code the real
//     service writes for records whose keys cannot be extracted (observed
//     in public integration tests against Firehose). Sluice uses it for any
//     missing partition key, from a query or from a Lambda.
//   - activePartitionExceeded: "Once the number of active partitions
//     reaches a limit of 500 per Firehose stream, the rest of the records
//     ... are delivered to the specified S3 error bucket prefix
//     (activePartitionExceeded)" (docs: dynamic-partitioning.html,
//     buffering.html).
//   - DynamicPartitioning.ActivePartitionsLimitExceeded: code reported by
//     users of the real service; not in the documentation.
//   - DynamicPartitioning.PrefixEvaluationFailed: Sluice's own code for an
//     evaluated prefix over 512 characters (Firehose sends records whose
//     prefix it cannot evaluate to the error prefix, code undocumented).
const (
	OutputPartitioningFailed               = "partitioning-failed"
	OutputActivePartitionExceeded          = "activePartitionExceeded"
	CodeMetadataExtractionFailed           = "DynamicPartitioning.MetadataExtractionFailed"
	CodeActivePartitionsLimitExceeded      = "DynamicPartitioning.ActivePartitionsLimitExceeded"
	CodePrefixEvaluationFailed             = "DynamicPartitioning.PrefixEvaluationFailed"
	partitionIDSeparator              byte = ';'
)

// DataKind is the kind (see ObjectSeed) of the data objects Split names.
const DataKind = "data"

// ErrActivePartitionsExceeded is wrapped by the errors of records beyond
// the active-partition limit.
var ErrActivePartitionsExceeded = errors.New("active partition limit exceeded")

// Partition is the part of a batch written as one object.
type Partition struct {
	// ID identifies the partition within the batch: "" without partition
	// keys, else the key values, each as <length>:<value>; (collision-free).
	ID string
	// Keys are the partition's key values (nil without partition keys).
	// They are the record's strings, not copies.
	Keys map[string]string
	// Prefix is the evaluated prefix and Key the object key
	// (Prefix + object name).
	Prefix string
	Key    string
	// Records are indices into the batch's Records, in batch order.
	Records []int
	// Oldest is the approximate arrival time of the partition's oldest
	// record: the instant of its timestamp expressions and object name.
	Oldest time.Time
}

// Split groups b's records into partitions by their partition key values
// (the parts of the evaluated prefix that vary per record), preserving
// record order within each partition; partitions are in order of first
// appearance. Without partition keys the whole batch is one partition.
//
// Records fail, as permanent *pipeline.CodedErrors, when they lack a key
// the Prefix uses (partitioning-failed), when they belong to a partition
// beyond the first maxActive distinct ones (activePartitionExceeded;
// maxActive 0 means DefaultMaxActivePartitions), or when their partition's
// prefix evaluates to more than 512 characters (partitioning-failed).
// Failures are in record order. Object keys derive from b.Stream, b.ID and
// the partition, so a redelivered batch maps to the same keys. Split reads
// records but copies no record data.
func (s *Spec) Split(b pipeline.Batch, maxActive int) (parts []Partition, failed []pipeline.RecordError) {
	return s.SplitKind(b, maxActive, DataKind)
}

// SplitKind is Split for objects of another kind than data objects (see
// ObjectSeed): the same partitions, other object names (and random
// strings), e.g. for a backup copy of a batch in the same store.
func (s *Spec) SplitKind(b pipeline.Batch, maxActive int, kind string) (parts []Partition, failed []pipeline.RecordError) {
	if maxActive <= 0 {
		maxActive = DefaultMaxActivePartitions
	}
	if len(b.Records) == 0 {
		return nil, nil
	}
	if len(s.keys) == 0 {
		p := Partition{Records: make([]int, len(b.Records)), Oldest: b.Oldest()}
		for i := range p.Records {
			p.Records[i] = i
		}
		if err := s.finish(&p, b, kind); err != nil {
			return nil, failAll(p.Records, err)
		}
		return []Partition{p}, nil
	}

	index := map[string]int{} // partition ID → index in parts, or -1 beyond the limit
	var buf []byte
	for i := range b.Records {
		r := &b.Records[i]
		buf = buf[:0]
		var missing string
		for _, k := range s.keys {
			v, ok := r.Keys[k]
			if !ok {
				missing = k
				break
			}
			buf = strconv.AppendInt(buf, int64(len(v)), 10)
			buf = append(buf, ':')
			buf = append(buf, v...)
			buf = append(buf, partitionIDSeparator)
		}
		if missing != "" {
			failed = append(failed, pipeline.RecordError{Index: i, Err: &pipeline.CodedError{
				Code: CodeMetadataExtractionFailed, OutputType: OutputPartitioningFailed,
				Err: fmt.Errorf("record %s has no partition key !{%s}: %w", r.ID, missing, ErrMissingKey),
			}})
			continue
		}
		pi, ok := index[string(buf)] // no allocation for the lookup
		if !ok {
			pi = -1
			if len(parts) < maxActive {
				pi = len(parts)
				keys := make(map[string]string, len(s.keys))
				for _, k := range s.keys {
					keys[k] = r.Keys[k]
				}
				parts = append(parts, Partition{ID: string(buf), Keys: keys})
			}
			index[string(buf)] = pi
		}
		if pi < 0 {
			failed = append(failed, pipeline.RecordError{Index: i, Err: &pipeline.CodedError{
				Code: CodeActivePartitionsLimitExceeded, OutputType: OutputActivePartitionExceeded,
				Err: fmt.Errorf("record %s: more than %d distinct partitions in the batch: %w", r.ID, maxActive, ErrActivePartitionsExceeded),
			}})
			continue
		}
		p := &parts[pi]
		p.Records = append(p.Records, i)
		if a := r.Arrived; p.Oldest.IsZero() || a.Before(p.Oldest) {
			p.Oldest = a
		}
	}
	kept := parts[:0]
	for i := range parts {
		if err := s.finish(&parts[i], b, kind); err != nil {
			failed = append(failed, failAll(parts[i].Records, err)...)
			continue
		}
		kept = append(kept, parts[i])
	}
	if len(kept) < len(parts) {
		sortFailures(failed)
	}
	return kept, failed
}

// finish evaluates a partition's prefix and object key.
func (s *Spec) finish(p *Partition, b pipeline.Batch, kind string) error {
	seed := ObjectSeed(b.Stream, kind, b.ID, p.ID)
	prefix, err := s.Key(Values{Time: p.Oldest, Keys: p.Keys, Seed: seed})
	if err != nil {
		return &pipeline.CodedError{Code: CodePrefixEvaluationFailed, OutputType: OutputPartitioningFailed, Err: err}
	}
	p.Prefix = prefix
	p.Key = prefix + s.ObjectName(b.Stream, p.Oldest, ObjectUUID(seed))
	return nil
}

func failAll(idx []int, err error) []pipeline.RecordError {
	out := make([]pipeline.RecordError, len(idx))
	for i, r := range idx {
		out[i] = pipeline.RecordError{Index: r, Err: err}
	}
	return out
}

// sortFailures orders failures by record index.
func sortFailures(f []pipeline.RecordError) {
	slices.SortStableFunc(f, func(a, b pipeline.RecordError) int { return cmp.Compare(a.Index, b.Index) })
}
