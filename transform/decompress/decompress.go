package decompress

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform"
)

// Error codes and error output types of records this processor fails (see
// the package documentation for their sources).
const (
	CodeInvalidGzip             = "Decompression.InvalidGzip"
	CodeSizeLimitExceeded       = "Decompression.SizeLimitExceeded"
	CodeMessageExtractionFailed = "CloudWatchLogs.MessageExtractionFailed"
	OutputDecompressionFailed   = "decompression-failed"
)

// CloudWatch Logs subscription payload message types.
const (
	MessageTypeData    = "DATA_MESSAGE"
	MessageTypeControl = "CONTROL_MESSAGE"
)

// gzip's largest compression ratio is about 1032:1 (deflate's longest
// match, 258 bytes, coded in 2 bits); a size hint beyond is a lie.
const maxDeflateRatio = 1032

// errTooLarge is wrapped by the error of a record that inflates beyond the
// limit.
var errTooLarge = errors.New("decompressed size exceeds the limit")

// Processor decompresses gzip records and optionally extracts CloudWatch
// Logs messages. It is safe for concurrent use.
type Processor struct {
	max     int
	extract bool
	metrics *Metrics
	readers sync.Pool // *inflater
}

var _ pipeline.Processor = (*Processor)(nil)

// New builds the processor from compiled options (see Options.Compile; it
// does not validate them again) and registers the metrics on
// deps.Registry (see NewMetrics).
func New(c Compiled, deps pipeline.Deps) (*Processor, error) {
	if c.max <= 0 {
		return nil, errors.New("decompression: options not compiled (use Options.Compile)")
	}
	m, err := NewMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("decompression: %w", err)
	}
	return &Processor{max: c.max, extract: c.extract, metrics: m}, nil
}

// ErrorOutputType is the error output type of records this processor
// fails (pipeline.OutputTyper); message extraction failures name their own.
func (p *Processor) ErrorOutputType() string { return OutputDecompressionFailed }

// inflater is a reusable gzip reader.
type inflater struct {
	src bytes.Reader
	zr  *gzip.Reader
}

// Process replaces every record by its decompressed data or, with
// message extraction, by one record per log message; see the package
// documentation. The input batch is left intact. Records that fail are
// reported as RecordErrors carrying a *pipeline.CodedError. Process fails
// as a whole only when ctx is done.
func (p *Processor) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, []pipeline.RecordError, error) {
	in, _ := p.readers.Get().(*inflater)
	if in == nil {
		in = &inflater{}
	}
	defer p.readers.Put(in)
	var (
		out     = make([]pipeline.Record, 0, len(b.Records))
		failed  []pipeline.RecordError
		control int
		ids     []string
	)
	for i := range b.Records {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return pipeline.Batch{}, nil, fmt.Errorf("decompression: %w", err)
			}
		}
		rec := &b.Records[i]
		data, err := in.gunzip(rec.Data, p.max)
		if err != nil {
			code := CodeInvalidGzip
			if errors.Is(err, errTooLarge) {
				code = CodeSizeLimitExceeded
			}
			failed = append(failed, recordError(i, code, OutputDecompressionFailed, err))
			continue
		}
		if !p.extract {
			r := *rec
			r.Data = data
			out = append(out, r)
			continue
		}
		msgs, typ, err := extractMessages(data)
		if err != nil {
			failed = append(failed, recordError(i, CodeMessageExtractionFailed, pipeline.OutputProcessingFailed, err))
			continue
		}
		if typ == MessageTypeControl {
			control++
			continue
		}
		ids = transform.SubRecordIDs(rec.ID, len(msgs), ids[:0])
		for j, m := range msgs {
			out = append(out, pipeline.Record{
				ID:      ids[j],
				Data:    m,
				Arrived: rec.Arrived,
				Keys:    maps.Clone(rec.Keys),
				Meta:    maps.Clone(rec.Meta),
			})
		}
	}
	res := b
	res.Records = out
	res.Bytes = 0
	for i := range out {
		res.Bytes += len(out[i].Data)
	}
	p.metrics.in.WithLabelValues(b.Stream).Add(float64(len(b.Records)))
	p.metrics.out.WithLabelValues(b.Stream).Add(float64(len(out)))
	if control > 0 {
		p.metrics.control.WithLabelValues(b.Stream).Add(float64(control))
	}
	return res, failed, nil
}

func recordError(i int, code, output string, err error) pipeline.RecordError {
	return pipeline.RecordError{Index: i, Err: &pipeline.CodedError{Code: code, OutputType: output, Err: err}}
}

// gunzip decompresses one gzip record (concatenated members allowed) into
// a new buffer of at most max bytes.
func (in *inflater) gunzip(data []byte, limit int) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return nil, errors.New("not gzip data (no 1f 8b header)")
	}
	in.src.Reset(data)
	var err error
	if in.zr == nil {
		in.zr, err = gzip.NewReader(&in.src)
	} else {
		err = in.zr.Reset(&in.src)
	}
	if err != nil {
		return nil, fmt.Errorf("gzip header: %w", err)
	}
	out, err := readAll(in.zr, make([]byte, 0, sizeHint(data, limit)), limit)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%w of %d bytes", err, limit)
		}
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return out, nil
}

// sizeHint guesses the decompressed size from the gzip trailer's ISIZE
// (the size modulo 2^32 of the last member), bounded by limit and by
// deflate's largest ratio so that a forged trailer costs little.
func sizeHint(data []byte, limit int) int {
	if len(data) < 18 {
		return 0
	}
	h := int(binary.LittleEndian.Uint32(data[len(data)-4:]))
	return min(h, limit, len(data)*maxDeflateRatio)
}

// readAll reads r to EOF into buf, failing with errTooLarge beyond limit
// bytes. When buf's capacity is exactly right it does not reallocate.
func readAll(r io.Reader, buf []byte, limit int) ([]byte, error) {
	var probe [1]byte
	for {
		if len(buf) == cap(buf) {
			// Full: find out whether anything is left before growing.
			n, err := r.Read(probe[:])
			if n == 1 {
				if len(buf) >= limit {
					return nil, errTooLarge
				}
				buf = append(buf, probe[0])
				if grow := min(max(len(buf), 4096), limit-len(buf)); grow > 0 && len(buf) == cap(buf) {
					buf = slices.Grow(buf, grow)
				}
			}
			if err == io.EOF {
				return buf, nil
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// cwlPayload is the JSON of a CloudWatch Logs subscription record
// (messageType, owner, logGroup, logStream, subscriptionFilters,
// logEvents[{id, timestamp, message}]); only the fields extraction needs.
type cwlPayload struct {
	MessageType *string `json:"messageType"`
	LogEvents   []struct {
		Message *string `json:"message"`
	} `json:"logEvents"`
}

// extractMessages parses a CloudWatch Logs payload and returns its message
// type and, for a DATA_MESSAGE, each log event's message, sharing one
// allocation.
func extractMessages(data []byte) ([][]byte, string, error) {
	var pl cwlPayload
	if err := json.Unmarshal(data, &pl); err != nil {
		return nil, "", fmt.Errorf("not a CloudWatch Logs payload: %w", err)
	}
	switch {
	case pl.MessageType == nil:
		return nil, "", errors.New("not a CloudWatch Logs payload: no messageType")
	case *pl.MessageType == MessageTypeControl:
		return nil, MessageTypeControl, nil
	case *pl.MessageType != MessageTypeData:
		return nil, "", fmt.Errorf("CloudWatch Logs messageType %q is neither %s nor %s", *pl.MessageType, MessageTypeData, MessageTypeControl)
	}
	size := 0
	for i, e := range pl.LogEvents {
		if e.Message == nil {
			return nil, "", fmt.Errorf("CloudWatch Logs log event %d has no message", i)
		}
		size += len(*e.Message)
	}
	arena := make([]byte, 0, size)
	msgs := make([][]byte, len(pl.LogEvents))
	for i, e := range pl.LogEvents {
		start := len(arena)
		arena = append(arena, *e.Message...)
		msgs[i] = arena[start:len(arena):len(arena)]
	}
	return msgs, MessageTypeData, nil
}
