package httpendpoint

import (
	"bytes"
	"encoding/base64"
	"io"
	"strconv"
	"sync"

	"github.com/klauspost/compress/gzip"

	"github.com/sluice-dev/sluice/pipeline"
)

// Request limits of the specification.
const (
	// MaxRecords is the most records in one request.
	MaxRecords = 10000
	// MaxBodyBytes is the most bytes of a request body before
	// compression.
	MaxBodyBytes = 64 << 20
	// MaxBytes is the most record bytes (sum of len(Data)) per request
	// such that any request of at most MaxRecords records stays within
	// MaxBodyBytes: base64 turns n bytes into 4⌈n/3⌉ ≤ (4n+8)/3
	// characters, each record adds {"data":""}, and a comma (12 bytes),
	// and the envelope {"requestId":"<36>","timestamp":<≤20 digits>,
	// "records":[ ... ]} adds bodyEnvelope (98 bytes). Solving
	// bodyEnvelope + 12·R + (4·S + 8·R)/3 ≤ MaxBodyBytes for R = MaxRecords
	// gives S = 50,221,574 bytes (47.9 MiB).
	MaxBytes = ((MaxBodyBytes-bodyEnvelope-perRecord*MaxRecords)*3 - 8*MaxRecords) / 4
	// MaxResponseBytes is the most of a response body read (Firehose: an
	// endpoint's answer is at most 1 MiB).
	MaxResponseBytes = 1 << 20
)

const (
	bodyEnvelope = len(`{"requestId":"`) + 36 + len(`","timestamp":`) + 20 + len(`,"records":[`) + len(`]}`)
	perRecord    = len(`{"data":""},`)
	// flushAt is the size of the chunks fed to the gzip writer.
	flushAt = 256 << 10
)

// bodySize is the exact length of the uncompressed body for records and a
// timestamp of tsDigits characters.
func bodySize(recs []pipeline.Record, tsDigits int) int {
	n := bodyEnvelope - 20 + tsDigits - 1 // the last record has no comma
	for i := range recs {
		n += perRecord + base64.StdEncoding.EncodedLen(len(recs[i].Data))
	}
	if len(recs) == 0 {
		n++
	}
	return n
}

// encodeBody appends the request body
// {"requestId":id,"timestamp":ts,"records":[{"data":"<base64>"},...]} to
// dst, base64-encoding each record straight into it (no reflection, no
// per-record allocation). When flush is not nil it is given the body in
// chunks of about flushAt bytes and dst is reused; the returned slice
// holds what was not flushed yet.
func encodeBody(dst []byte, id string, ts int64, recs []pipeline.Record, flush func([]byte) error) ([]byte, error) {
	dst = append(dst, `{"requestId":"`...)
	dst = append(dst, id...) // a UUID: nothing to escape
	dst = append(dst, `","timestamp":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, `,"records":[`...)
	for i := range recs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"data":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, recs[i].Data)
		dst = append(dst, `"}`...)
		if flush != nil && len(dst) >= flushAt {
			if err := flush(dst); err != nil {
				return dst, err
			}
			dst = dst[:0]
		}
	}
	return append(dst, `]}`...), nil
}

// Pools of request buffers and gzip writers, shared by every destination:
// concurrent deliveries each take their own.
var (
	bufPool  sync.Pool // *[]byte
	gzipPool sync.Pool // *gzip.Writer
)

func getBuf(size int) *[]byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= size {
		*p = (*p)[:0]
		return p
	}
	b := make([]byte, 0, size)
	return &b
}

// buildBody encodes the request body, gzipped when gz, into a pooled
// buffer. The result's Close returns the buffer to the pool.
func buildBody(id string, ts int64, recs []pipeline.Record, gz bool) (*requestBody, error) {
	tsDigits := len(strconv.FormatInt(ts, 10))
	if !gz {
		p := getBuf(bodySize(recs, tsDigits))
		b, err := encodeBody(*p, id, ts, recs, nil)
		*p = b
		if err != nil {
			bufPool.Put(p)
			return nil, err
		}
		return newRequestBody(b, func() { bufPool.Put(p) }), nil
	}
	// The compressed body goes to a pooled buffer; the uncompressed one
	// only ever exists flushAt bytes at a time.
	out := getBuf(bodySize(recs, tsDigits) / 4)
	w := &appender{buf: *out}
	zw, ok := gzipPool.Get().(*gzip.Writer)
	if ok {
		zw.Reset(w)
	} else {
		zw = gzip.NewWriter(w)
	}
	scratch := getBuf(flushAt + 4096)
	rest, err := encodeBody(*scratch, id, ts, recs, func(p []byte) error {
		_, err := zw.Write(p)
		return err
	})
	if err == nil {
		_, err = zw.Write(rest)
	}
	if err == nil {
		err = zw.Close()
	}
	*scratch = rest
	bufPool.Put(scratch)
	gzipPool.Put(zw)
	*out = w.buf
	if err != nil {
		bufPool.Put(out)
		return nil, err
	}
	return newRequestBody(w.buf, func() { bufPool.Put(out) }), nil
}

// appender is an io.Writer appending to a slice.
type appender struct{ buf []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.buf = append(a.buf, p...)
	return len(p), nil
}

// requestBody is a request's body over a pooled buffer. The transport
// closes it when it is done with it, possibly after Client.Do returns (an
// endpoint may answer before reading the whole body): only then does the
// buffer go back to the pool.
type requestBody struct {
	r       bytes.Reader
	n       int
	once    sync.Once
	release func()
}

func newRequestBody(b []byte, release func()) *requestBody {
	rb := &requestBody{n: len(b), release: release}
	rb.r.Reset(b)
	return rb
}

func (b *requestBody) Read(p []byte) (int, error)         { return b.r.Read(p) }
func (b *requestBody) WriteTo(w io.Writer) (int64, error) { return b.r.WriteTo(w) }

// Close releases the buffer, once.
func (b *requestBody) Close() error {
	b.once.Do(b.release)
	return nil
}
