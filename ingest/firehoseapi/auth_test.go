package firehoseapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/ingest/sigv4"
)

// TestVerifiedPuts: with Verify set, concurrent signed puts (the body
// hashed while it is decoded) are all stored, a tampered one is refused
// before anything is stored, and Allow decides per action and stream.
// Run with -race: the hash reads the body while the decoder does.
func TestVerifiedPuts(t *testing.T) {
	v := &sigv4.Verifier{Service: "firehose", Lookup: func(id string) (sigv4.Key, bool) {
		return sigv4.Key{ID: id, Secret: "s3cret"}, id == "AKIDTESTTESTTEST0001"
	}}
	buf := memory.New(memory.Options{})
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Config{Appender: router{"s": buf, "t": memory.New(memory.Options{})}, Metrics: m,
		Streams: []StreamInfo{{Name: "s"}, {Name: "t"}}, Verify: v.VerifyPayload,
		Allow: func(key, action, stream string) bool { return stream == "s" }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	send := func(body, signed string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDTESTTESTTEST0001", SecretAccessKey: "s3cret"},
			req, sigv4.PayloadHash([]byte(signed)), "firehose", "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	body := `{"DeliveryStreamName":"s","Records":[{"Data":"aGVsbG8="},{"Data":"d29ybGQ="}]}`
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if resp := send(body, body); resp.StatusCode != 200 {
				t.Errorf("signed put: %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if resp := send(strings.Replace(body, "aGVsbG8=", "aGVsbG9=", 1), body); resp.StatusCode != 400 {
		t.Fatalf("tampered put: %d", resp.StatusCode)
	}
	if resp := send(strings.Replace(body, `"s"`, `"t"`, 1), strings.Replace(body, `"s"`, `"t"`, 1)); resp.StatusCode != 400 {
		t.Fatalf("put to a stream the key may not use: %d", resp.StatusCode)
	}
	recs, _, err := buf.Read(context.Background(), 0, 1<<20, 0, 0)
	if err != nil || len(recs) != 32 {
		t.Fatalf("stored %d records, want 32 (16 signed batches of 2): %v", len(recs), err)
	}
}
