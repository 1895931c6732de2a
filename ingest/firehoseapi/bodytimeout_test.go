package firehoseapi

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer/memory"
)

// TestSlowBodyTimesOut: a body that stalls is answered 408
// RequestTimeoutException within the body timeout and its share of the
// in-flight bytes is given back, so it cannot keep others waiting.
func TestSlowBodyTimesOut(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Config{Appender: router{"s": memory.New(memory.Options{})}, Metrics: m,
		Streams: []StreamInfo{{Name: "s"}}, BodyTimeout: 300 * time.Millisecond, MaxInFlightBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// It claims most of the in-flight budget and sends 10 bytes of it.
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Firehose_20150804.PutRecordBatch\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: %d\r\n\r\n{\"Delivery", 900<<10)
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the stalled body: %v", err)
	}
	b := make([]byte, 512)
	n, _ := resp.Body.Read(b)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b[:n]), `"__type":"RequestTimeoutException"`) {
		t.Fatalf("stalled body: %d %s", resp.StatusCode, b[:n])
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("answered after %v, with a 300ms body timeout", d)
	}
	// The budget is free again: a put of the same size goes through at once.
	body := `{"DeliveryStreamName":"s","Records":[{"Data":"` + strings.Repeat("QUFB", 200<<10) + `"}]}`
	req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
	c := &http.Client{Timeout: 2 * time.Second}
	r2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Fatalf("a put after the stalled one: %d", r2.StatusCode)
	}
}
