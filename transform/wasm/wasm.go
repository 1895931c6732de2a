package wasm

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// Error codes, error output type and partition key namespace (see the
// package documentation for their sources).
const (
	CodeProcessingFailedStatus = "Lambda.ProcessingFailedStatus"
	CodeMissingRecordID        = "Lambda.MissingRecordId"
	CodeDuplicatedRecordID     = "Lambda.DuplicatedRecordId"
	CodeJSONProcessing         = "Lambda.JsonProcessingException"
	CodeFunctionError          = "Lambda.FunctionError"
	CodeFunctionTimeout        = "Lambda.FunctionTimeout"

	// MsgProcessingFailed is Firehose's errorMessage for a record whose
	// result is ProcessingFailed.
	MsgProcessingFailed = "ProcessingFailed status set for record"

	// KeyPrefix namespaces the partition keys a module returns in
	// pipeline.Record.Keys: key "year" is "partitionKeyFromLambda:year",
	// as written in a prefix expression !{partitionKeyFromLambda:year}.
	KeyPrefix = "partitionKeyFromLambda:"

	// MetaSourceKinesisStreamARN is the pipeline.Record.Meta key whose
	// value (on a call's first record) fills the input header's
	// source_kinesis_stream_arn.
	MetaSourceKinesisStreamARN = pipeline.MetaSourceKinesisStreamARN
)

// Processor runs a WebAssembly module on batches of records, following
// Firehose's Lambda transformation contract (ABI.md). It is safe for
// concurrent use; Close releases it.
type Processor struct {
	e        *engine
	s        settings
	m        *Metrics
	log      *slog.Logger
	pool     chan *instance // nil entries: an instance to create
	idPrefix string
	account  string // for the delivery stream ARN
	seq      atomic.Uint64
	unknown  *lineLimiter // logs of results for unknown recordIds
	failures *lineLimiter // logs of failed calls

	closeOnce sync.Once
	closeErr  error
}

var _ pipeline.Processor = (*Processor)(nil)

// New builds the processor from compiled options (see Options.Compile; it
// does not validate them again): it compiles the module once (through the
// compilation cache in the cache_dir option, default
// <deps.DataDir>/wasm-cache), creates one instance to check the module's
// ABI version and configuration, and registers the metrics on
// deps.Registry (see NewMetrics). Further instances are created on
// demand, up to the instances option. The region shown to the guest
// defaults to deps.Region. Close releases it.
func New(c Compiled, deps pipeline.Deps) (*Processor, error) {
	if c.s.module == "" {
		return nil, errors.New("wasm: options not compiled (use Options.Compile)")
	}
	s := c.s.resolve(deps)
	m, err := NewMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("wasm: %w", err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx := context.Background()
	e, err := newEngine(ctx, s, log)
	if err != nil {
		return nil, fmt.Errorf("wasm: %w", err)
	}
	first, err := e.instantiate(ctx)
	if err != nil {
		_ = e.close(ctx)
		return nil, fmt.Errorf("wasm: %s: %w", s.module, err)
	}
	m.instances.WithLabelValues(e.name).Inc()
	var rnd [6]byte
	_, _ = crand.Read(rnd[:])
	p := &Processor{
		e: e, s: s, m: m, log: log,
		pool:     make(chan *instance, s.instances),
		idPrefix: hex.EncodeToString(rnd[:]) + "-",
		account:  cmp.Or(deps.AccountID, "000000000000"),
		unknown:  newLineLimiter(1, 30*time.Second),
		failures: newLineLimiter(10, 30*time.Second),
	}
	p.pool <- first
	for i := 1; i < s.instances; i++ {
		p.pool <- nil
	}
	return p, nil
}

// ErrorOutputType is the error output type of records this processor
// fails (pipeline.OutputTyper).
func (p *Processor) ErrorOutputType() string { return pipeline.OutputProcessingFailed }

// Close releases the runtime, every instance and the compiled code; calls
// in progress fail. Only the first call closes; later ones return its
// result.
func (p *Processor) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { p.closeErr = p.e.close(ctx) })
	return p.closeErr
}

// Process cuts b into calls of at most batch_records records and
// batch_bytes bytes, runs them on up to instances instances concurrently,
// and returns the Ok records in input order with their new data and
// partition keys. Dropped records are left out. ProcessingFailed, missing
// and duplicated records, and every record of a call that failed
// retries+1 times, are RecordErrors carrying a *pipeline.CodedError. The
// input batch is left intact. Process fails as a whole only when ctx is
// done.
func (p *Processor) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, []pipeline.RecordError, error) {
	if len(b.Records) == 0 {
		return b, nil, nil
	}
	chunks := p.split(b.Records)
	out := make([]pipeline.Record, len(b.Records))
	res := make([]chunkResult, len(chunks))
	run := func(i int) {
		c := chunks[i]
		res[i] = p.runChunk(ctx, b.Stream, b.Records[c.start:c.end], c.start, out[c.start:c.end])
	}
	if workers := min(len(chunks), p.s.instances); workers <= 1 {
		for i := range chunks {
			run(i)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(chunks); i = int(next.Add(1) - 1) {
					run(i)
				}
			})
		}
		wg.Wait()
	}
	var errs []pipeline.RecordError
	n, size := 0, 0
	for i, r := range res {
		if r.err != nil {
			return pipeline.Batch{}, nil, fmt.Errorf("wasm: %w", r.err)
		}
		start := chunks[i].start
		if start != n {
			copy(out[n:], out[start:start+r.ok])
		}
		for j := n; j < n+r.ok; j++ {
			size += len(out[j].Data)
		}
		n += r.ok
		errs = append(errs, r.errs...)
	}
	clear(out[n:])
	return pipeline.Batch{Stream: b.Stream, Records: out[:n], Bytes: size, ID: b.ID}, errs, nil
}

type span struct{ start, end int }

// split cuts recs into calls by batch_records and batch_bytes.
func (p *Processor) split(recs []pipeline.Record) []span {
	var spans []span
	start, bytes := 0, 0
	for i := range recs {
		n := len(recs[i].Data)
		if i > start && (i-start >= p.s.batchRecords || bytes+n > p.s.batchBytes) {
			spans = append(spans, span{start, i})
			start, bytes = i, 0
		}
		bytes += n
	}
	return append(spans, span{start, len(recs)})
}

// chunkResult is the outcome of one call's records: ok records were
// written at the start of the chunk's region of the output.
type chunkResult struct {
	ok   int
	errs []pipeline.RecordError
	err  error // the caller's context is done
}

// runChunk invokes the module on recs, retrying failed calls on fresh
// instances. base is the index of recs[0] in the batch.
func (p *Processor) runChunk(ctx context.Context, stream string, recs []pipeline.Record, base int, out []pipeline.Record) chunkResult {
	var last *callError
	attempts := 0
	for attempts <= p.s.retries {
		attempts++
		inst, err := p.acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return chunkResult{err: ctx.Err()}
			}
			last = asCallError(err)
			p.callFailed(stream, last, attempts)
			continue
		}
		h := callHeader{
			invocationID: p.idPrefix + strconv.FormatUint(p.seq.Add(1), 10),
			streamARN:    "arn:aws:firehose:" + p.s.region + ":" + p.account + ":deliverystream/" + stream,
			region:       p.s.region,
			sourceARN:    recs[0].Meta[MetaSourceKinesisStreamARN],
		}
		start := time.Now()
		callCtx, cancel := context.WithTimeout(ctx, p.s.timeout)
		rs, err := inst.call(callCtx, &h, recs)
		cancel()
		p.m.duration.WithLabelValues(stream, ProcessorName).Observe(time.Since(start).Seconds())
		if err == nil {
			r := p.apply(stream, recs, base, rs, out)
			p.pool <- inst
			p.m.calls.WithLabelValues(stream, ProcessorName, CallSuccess).Inc()
			return r
		}
		p.discard(inst)
		if ctx.Err() != nil {
			return chunkResult{err: ctx.Err()}
		}
		last = asCallError(err)
		p.callFailed(stream, last, attempts)
	}
	errs := make([]pipeline.RecordError, len(recs))
	err := fmt.Errorf("%d attempts failed, the last: %w", attempts, last.err)
	for i := range recs {
		errs[i] = pipeline.RecordError{Index: base + i, Err: &pipeline.CodedError{Code: last.code, OutputType: pipeline.OutputProcessingFailed, Err: err}}
	}
	p.m.records.WithLabelValues(stream, ProcessorName, RecordsFailed).Add(float64(len(recs)))
	return chunkResult{errs: errs}
}

func asCallError(err error) *callError {
	var ce *callError
	if errors.As(err, &ce) {
		return ce
	}
	return &callError{code: CodeFunctionError, err: err}
}

func (p *Processor) callFailed(stream string, ce *callError, attempt int) {
	result := CallFunctionError
	switch ce.code {
	case CodeFunctionTimeout:
		result = CallTimeout
	case CodeJSONProcessing:
		result = CallInvalidResponse
	}
	p.m.calls.WithLabelValues(stream, ProcessorName, result).Inc()
	if ok, suppressed := p.failures.allow(time.Now()); ok {
		err := ce.err
		if ce.detail != nil {
			err = ce.detail
		}
		p.log.Warn("wasm call failed", "stream", stream, "module", p.e.name, "code", ce.code,
			"attempt", attempt, "retries", p.s.retries, "error", err, "suppressed_logs", suppressed)
	}
}

// acquire takes an instance from the pool, creating it if needed.
func (p *Processor) acquire(ctx context.Context) (*instance, error) {
	select {
	case inst := <-p.pool:
		if inst != nil {
			return inst, nil
		}
		inst, err := p.e.instantiate(ctx)
		if err != nil {
			p.pool <- nil
			return nil, err
		}
		p.m.instances.WithLabelValues(p.e.name).Inc()
		return inst, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// discard closes a failed instance; a new one is created on demand.
func (p *Processor) discard(inst *instance) {
	_ = inst.mod.Close(context.Background())
	p.pool <- nil
}

// apply matches the results to recs by recordId and writes the Ok
// records, in input order, at the start of out.
func (p *Processor) apply(stream string, recs []pipeline.Record, base int, rs []outResult, out []pipeline.Record) chunkResult {
	const missing, duplicated = -1, -2
	var assign []int32 // result index per record, when not in order
	inOrder := len(rs) == len(recs)
	for i := 0; inOrder && i < len(rs); i++ {
		inOrder = string(rs[i].id) == recs[i].ID
	}
	if !inOrder {
		idx := make(map[string]int32, len(recs))
		assign = make([]int32, len(recs))
		for i := range recs {
			idx[recs[i].ID] = int32(i)
			assign[i] = missing
		}
		unknown := 0
		for j := range rs {
			i, ok := idx[string(rs[j].id)]
			switch {
			case !ok:
				unknown++
			case assign[i] == missing:
				assign[i] = int32(j)
			default:
				assign[i] = duplicated
			}
		}
		if ok, suppressed := p.unknown.allow(time.Now()); unknown > 0 && ok {
			p.log.Warn("wasm module returned results for unknown recordIds; ignored", "stream", stream,
				"module", p.e.name, "count", unknown, "suppressed_logs", suppressed)
		}
	}
	resultOf := func(i int) int {
		if inOrder {
			return i
		}
		return int(assign[i])
	}
	total := 0
	for i := range recs {
		if j := resultOf(i); j >= 0 && rs[j].result == resultOk && !rs[j].unchanged {
			total += len(rs[j].data)
		}
	}
	buf := make([]byte, total)
	var r chunkResult
	dropped, failed, okBytes := 0, 0, 0
	for i := range recs {
		j := resultOf(i)
		switch {
		case j == missing:
			r.errs = append(r.errs, recordError(base+i, CodeMissingRecordID, "the module returned no result for this recordId"))
			continue
		case j == duplicated:
			r.errs = append(r.errs, recordError(base+i, CodeDuplicatedRecordID, "the module returned more than one result for this recordId"))
			continue
		}
		res := &rs[j]
		switch res.result {
		case resultDropped:
			dropped++
		case resultProcessingFailed:
			msg := MsgProcessingFailed
			if len(res.msg) > 0 {
				msg += ": " + string(res.msg)
			}
			r.errs = append(r.errs, recordError(base+i, CodeProcessingFailedStatus, msg))
		default:
			rec := recs[i]
			if !res.unchanged {
				n := copy(buf, res.data)
				rec.Data, buf = buf[:n:n], buf[n:]
			}
			if res.nkeys > 0 {
				keys := make(map[string]string, len(rec.Keys)+int(res.nkeys))
				for k, v := range rec.Keys {
					keys[k] = v
				}
				eachKey(res.keys, res.nkeys, func(k, v []byte) { keys[KeyPrefix+string(k)] = string(v) })
				rec.Keys = keys
			}
			okBytes += len(rec.Data)
			out[r.ok] = rec
			r.ok++
		}
	}
	failed = len(r.errs)
	lv := func(result string) []string { return []string{stream, ProcessorName, result} }
	p.m.records.WithLabelValues(lv(RecordsOK)...).Add(float64(r.ok))
	if dropped > 0 {
		p.m.records.WithLabelValues(lv(RecordsDropped)...).Add(float64(dropped))
	}
	if failed > 0 {
		p.m.records.WithLabelValues(lv(RecordsFailed)...).Add(float64(failed))
	}
	p.m.bytes.WithLabelValues(stream, ProcessorName).Add(float64(okBytes))
	return r
}

func recordError(index int, code, msg string) pipeline.RecordError {
	return pipeline.RecordError{Index: index, Err: &pipeline.CodedError{Code: code, OutputType: pipeline.OutputProcessingFailed, Err: errors.New(msg)}}
}
