package wasm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/pipeline"
)

// Result is the outcome of one record in RunModule, in Firehose's terms.
type Result struct {
	// RecordID is the record's ID (its 1-based position when the input
	// record had none).
	RecordID string `json:"recordId"`
	// Result is "Ok", "Dropped" or "ProcessingFailed" (any failure:
	// ProcessingFailed status, missing or duplicated recordId, failed
	// call).
	Result string `json:"result"`
	// Data is the transformed data (Ok only).
	Data []byte `json:"data,omitempty"`
	// PartitionKeys are the partition keys the module returned, without
	// KeyPrefix (Ok only).
	PartitionKeys map[string]string `json:"partitionKeys,omitempty"`
	// ErrorCode and ErrorMessage explain a failure, as written in the
	// error output.
	ErrorCode    string `json:"errorCode,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// Result values.
const (
	ResultOk               = "Ok"
	ResultDropped          = "Dropped"
	ResultProcessingFailed = "ProcessingFailed"
)

// RunModule runs the module configured by opts once on recs, as the
// processor would on a batch of stream "test" (same chunking, retries and
// error codes), and returns one Result per input record, in input order.
// It is meant for `sluice transform test`. Records without an ID get their
// 1-based position as ID. It fails only when the module cannot be loaded
// or ctx is done.
func RunModule(ctx context.Context, opts Options, deps pipeline.Deps, recs []pipeline.Record) ([]Result, error) {
	c, err := opts.Compile()
	if err != nil {
		return nil, fmt.Errorf("wasm: %w", err)
	}
	p, err := New(c, deps)
	if err != nil {
		return nil, err
	}
	defer func() { _ = p.Close(context.WithoutCancel(ctx)) }()
	in := make([]pipeline.Record, len(recs))
	copy(in, recs)
	seen := make(map[string]bool, len(in))
	for i := range in {
		if in[i].ID == "" {
			in[i].ID = strconv.Itoa(i + 1)
		}
		if seen[in[i].ID] {
			return nil, fmt.Errorf("wasm: record %d: recordId %q appears more than once in the input", i+1, in[i].ID)
		}
		seen[in[i].ID] = true
	}
	out, errs, err := p.Process(ctx, pipeline.Batch{Stream: "test", Records: in})
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(in))
	for i := range in {
		results[i] = Result{RecordID: in[i].ID, Result: ResultDropped}
	}
	for _, re := range errs {
		r := &results[re.Index]
		r.Result = ResultProcessingFailed
		r.ErrorMessage = re.Err.Error()
		var ce *pipeline.CodedError
		if errors.As(re.Err, &ce) {
			r.ErrorCode, r.ErrorMessage = ce.Code, ce.Err.Error()
		}
	}
	// Ok records come back in input order: match them by walking both.
	j := 0
	for i := range in {
		if j < len(out.Records) && out.Records[j].ID == in[i].ID && results[i].Result == ResultDropped {
			r := &results[i]
			r.Result, r.Data = ResultOk, out.Records[j].Data
			for k, v := range out.Records[j].Keys {
				if name, ok := strings.CutPrefix(k, KeyPrefix); ok {
					if r.PartitionKeys == nil {
						r.PartitionKeys = map[string]string{}
					}
					r.PartitionKeys[name] = v
				}
			}
			j++
		}
	}
	return results, nil
}
