package s3

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/object/s3store"
	"github.com/sluice-dev/sluice/pipeline"
)

// bigBatch is n MiB of incompressible data in 1 MiB records.
func bigBatch(stream string, first pipeline.Position, mib int) pipeline.Batch {
	datas := make([][]byte, mib)
	for i := range datas {
		datas[i] = randomBytes(1<<20 + i)[:1<<20]
	}
	return destinationtest.NewBatch(stream, first, time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), datas...)
}

func concat(b pipeline.Batch) []byte {
	var buf bytes.Buffer
	for _, r := range b.Records {
		buf.Write(r.Data)
	}
	return buf.Bytes()
}

// heapSampler records the peak of live heap objects while running.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := heapNow(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) finish() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// TestMultipartBoundedMemory streams a 64 MiB object in 5 MiB parts to
// s3rver (out of process, so the heap measured is the client's only) and
// checks that the heap never grows by more than a fraction of the object,
// and that the object reads back byte for byte.
func TestMultipartBoundedMemory(t *testing.T) {
	srv := startS3rver(t, testBucket)
	opts := srv.options()
	opts.PartSize = s3store.MinPartSize
	opts.UploadConcurrency = 2
	rec := &recorder{}
	d := newTestDest(t, opts, "big", hooks{wrapTransport: func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec }})
	const mib = 64
	b := bigBatch("big", 0, mib)
	want := concat(b)

	// Collect garbage promptly so the peak reflects what the upload keeps
	// alive, not what the collector has not reclaimed yet (with the 64 MiB
	// batch live, the default GOGC would let 64 MiB of garbage pile up).
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	base := heapNow()
	h := startHeapSampler()
	err := d.Deliver(context.Background(), b)
	peak := h.finish()
	if err != nil {
		t.Fatal(err)
	}
	growth := int64(peak) - int64(base)
	t.Logf("64 MiB object, 5 MiB parts, concurrency 2: peak heap growth %.1f MiB (bound (2+1)×5 = 15 MiB + SDK)", float64(growth)/(1<<20))
	if growth > 40<<20 {
		t.Errorf("peak heap growth %d MiB while streaming a %d MiB object, want < 40 MiB", growth>>20, mib)
	}
	parts := 0
	for _, r := range rec.requests() {
		if r.method == http.MethodPut && strings.Contains(r.query, "partNumber=") {
			parts++
		}
	}
	if wantParts := (mib<<20 + s3store.MinPartSize - 1) / s3store.MinPartSize; parts != wantParts {
		t.Errorf("%d parts uploaded, want %d", parts, wantParts)
	}
	keys := listKeys(t, srv.client(), "")
	if len(keys) != 1 {
		t.Fatalf("keys %v, want one object", keys)
	}
	if got := getObject(t, srv.client(), keys[0]); !bytes.Equal(got, want) {
		t.Fatalf("object differs: %d bytes, want %d", len(got), len(want))
	}
	// A redelivery of the same batch replaces the object.
	if err := d.Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if keys2 := listKeys(t, srv.client(), ""); len(keys2) != 1 || keys2[0] != keys[0] {
		t.Fatalf("after redelivery: keys %v, want only %s", keys2, keys[0])
	}
	if got := getObject(t, srv.client(), keys[0]); !bytes.Equal(got, want) {
		t.Fatal("object differs after redelivery")
	}
}

// TestMultipartRoundTrip sends a multi-part object to both servers and a
// gzip one, each delivered twice.
func TestMultipartRoundTrip(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, comp := range []string{"UNCOMPRESSED", "GZIP"} {
				opts := srv.options()
				opts.PartSize = s3store.MinPartSize
				opts.UploadConcurrency = 3
				opts.Compression = comp
				opts.Prefix = strings.ToLower(comp) + "/"
				d := newTestDest(t, opts, "mp", hooks{})
				b := bigBatch("mp", 1<<30, 11) // 3 parts: 5 + 5 + 1 MiB
				for range 2 {
					if err := d.Deliver(context.Background(), b); err != nil {
						t.Fatal(err)
					}
				}
				keys := listKeys(t, srv.client(), opts.Prefix)
				if len(keys) != 1 || keys[0] != d.ObjectKeys(b)[0] {
					t.Fatalf("%s: keys %v, want [%s]", comp, keys, d.ObjectKeys(b)[0])
				}
				if got := getObject(t, srv.client(), keys[0]); !bytes.Equal(got, concat(b)) {
					t.Fatalf("%s: object differs: %d bytes, want %d", comp, len(got), b.Bytes)
				}
			}
		})
	}
}

// cancelAfterParts cancels a context once n parts have been answered.
type cancelAfterParts struct {
	next   http.RoundTripper
	n      int32
	parts  atomic.Int32
	cancel context.CancelFunc
	mu     sync.Mutex
	aborts []string // queries of DELETE ?uploadId= requests
}

func (c *cancelAfterParts) RoundTrip(req *http.Request) (*http.Response, error) {
	isPart := req.Method == http.MethodPut && strings.Contains(req.URL.RawQuery, "partNumber=")
	if req.Method == http.MethodDelete && strings.Contains(req.URL.RawQuery, "uploadId=") {
		c.mu.Lock()
		c.aborts = append(c.aborts, req.URL.RawQuery)
		c.mu.Unlock()
	}
	resp, err := c.next.RoundTrip(req)
	if isPart && err == nil && resp.StatusCode == http.StatusOK && c.parts.Add(1) == c.n {
		c.cancel()
	}
	return resp, err
}

// TestMultipartCancelAborts cancels a delivery after two parts: nothing is
// visible, the upload is aborted (and gone where the server lists uploads).
func TestMultipartCancelAborts(t *testing.T) {
	// gofakes3 too: s3rver does not implement ListMultipartUploads, which
	// shows that the aborted upload is gone.
	for _, srv := range []server{startS3rver(t, testBucket), startGofakes3(t, testBucket)} {
		t.Run(srv.name, func(t *testing.T) {
			opts := srv.options()
			opts.PartSize = s3store.MinPartSize
			opts.UploadConcurrency = 1
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ca := &cancelAfterParts{n: 2, cancel: cancel}
			d := newTestDest(t, opts, "cancel", hooks{wrapTransport: func(rt http.RoundTripper) http.RoundTripper { ca.next = rt; return ca }})
			b := bigBatch("cancel", 0, 24)
			err := d.Deliver(ctx, b)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Deliver = %v, want an error wrapping context.Canceled", err)
			}
			if got := ca.parts.Load(); got < 2 || got >= 5 {
				t.Errorf("%d parts sent before the cancellation took effect, want 2..4", got)
			}
			if keys := listKeys(t, srv.client(), ""); len(keys) != 0 {
				t.Errorf("objects visible after a cancelled delivery: %v", keys)
			}
			ca.mu.Lock()
			aborts := len(ca.aborts)
			ca.mu.Unlock()
			if aborts != 1 {
				t.Errorf("%d AbortMultipartUpload requests, want 1", aborts)
			}
			if srv.name == "gofakes3" { // s3rver does not implement ListMultipartUploads
				out, err := srv.client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(testBucket)})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.Uploads) != 0 {
					t.Errorf("%d multipart uploads left after the abort", len(out.Uploads))
				}
			}
			// The destination still works, and the batch can be delivered.
			if err := d.Deliver(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if got := getObject(t, srv.client(), d.ObjectKeys(b)[0]); !bytes.Equal(got, concat(b)) {
				t.Fatal("object differs after the redelivery")
			}
		})
	}
}
