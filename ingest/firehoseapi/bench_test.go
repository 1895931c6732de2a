package firehoseapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/pipeline"
)

// go test ./ingest/firehoseapi -run '^$' -bench . -benchmem

func benchBatch(n, size int) []byte {
	return []byte(batchBody("alpha", payloads(n, size)...))
}

func reportRecords(b *testing.B, recordsPerOp int) {
	b.ReportMetric(float64(b.N)*float64(recordsPerOp)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkDecodePutRecordBatch(b *testing.B) {
	body := benchBatch(500, 1024)
	var req putRequest
	b.SetBytes(500 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := decodePutRequest(&req, body, true); err != nil {
			b.Fatal(err)
		}
		if req.n != 500 {
			b.Fatal(req.n)
		}
	}
	reportRecords(b, 500)
}

// BenchmarkDecodeEncodingJSON is the reference: encoding/json on the same body.
func BenchmarkDecodeEncodingJSON(b *testing.B) {
	body := benchBatch(500, 1024)
	b.SetBytes(500 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		var v refBatch
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b, 500)
}

// drainingAppender appends to a memory buffer and commits immediately, so
// the quota never fills during the benchmark.
type drainingAppender struct{ buf *memory.Buffer }

func (d drainingAppender) Append(ctx context.Context, _ string, recs []pipeline.Record) error {
	if err := d.buf.Append(ctx, recs); err != nil {
		return err
	}
	return d.buf.Commit(ctx, d.buf.State().Head)
}

type nullWriter struct {
	h      http.Header
	status int
}

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(s int)           { w.status = s }

func BenchmarkPutRecordBatchHandler(b *testing.B) {
	h, err := NewHandler(Config{
		Streams:  []StreamInfo{{Name: "alpha"}},
		Appender: drainingAppender{buf: memory.New(memory.Options{MaxBytes: 1 << 30})},
	})
	if err != nil {
		b.Fatal(err)
	}
	body := benchBatch(500, 1024)
	b.SetBytes(500 * 1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &nullWriter{h: http.Header{}}
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			r.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK {
				b.Fatal(w.status)
			}
		}
	})
	reportRecords(b, 500)
}

// BenchmarkPutRecordBatchHTTP goes through a real loopback HTTP server and
// client (keep-alive connections), as producers do.
func BenchmarkPutRecordBatchHTTP(b *testing.B) {
	h, err := NewHandler(Config{
		Streams:  []StreamInfo{{Name: "alpha"}},
		Appender: drainingAppender{buf: memory.New(memory.Options{MaxBytes: 1 << 30})},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	body := benchBatch(500, 1024)
	b.SetBytes(500 * 1024)
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatal(resp.StatusCode)
			}
		}
	})
	reportRecords(b, 500)
}
