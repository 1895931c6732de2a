package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// loadResult is what `sluice load` measures; printed as text or JSON.
type loadResult struct {
	Endpoint       string  `json:"endpoint"`
	Stream         string  `json:"stream"`
	Concurrency    int     `json:"concurrency"`
	RecordsPerCall int     `json:"records_per_call"`
	RecordSize     int     `json:"record_size"`
	Seconds        float64 `json:"seconds"`
	Requests       int64   `json:"requests"`
	FailedRequests int64   `json:"failed_requests"`
	AckedRecords   int64   `json:"acked_records"`
	FailedRecords  int64   `json:"failed_records"`
	RecordsPerSec  float64 `json:"records_per_sec"`
	MiBPerSec      float64 `json:"mib_per_sec"`
	P50Millis      float64 `json:"p50_ms"`
	P99Millis      float64 `json:"p99_ms"`
	MaxMillis      float64 `json:"max_ms"`
	PeakRSSMiB     float64 `json:"peak_rss_mib,omitempty"`
	FirstError     string  `json:"first_error,omitempty"`
}

func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", "http://127.0.0.1:4573", "Firehose endpoint URL")
	stream := fs.String("stream", "quickstart", "delivery stream name")
	conc := fs.Int("concurrency", 8, "concurrent PutRecordBatch callers")
	perCall := fs.Int("records", 500, "records per PutRecordBatch call (1..500)")
	size := fs.Int("record-size", 1024, "bytes per record")
	dur := fs.Duration("duration", 20*time.Second, "how long to send")
	warmup := fs.Duration("warmup", 2*time.Second, "sending time excluded from the results")
	payload := fs.String("payload", "text", "record content: text, or json (clickstream objects matching examples/s3-parquet.yaml)")
	rate := fs.Int("rate", 0, "target records/s over all callers (0: as fast as the server answers)")
	pid := fs.Int("pid", 0, "server process id whose peak RSS (VmHWM) is reported")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	sign := fs.Bool("sign", false, "sign every request with SigV4, with the key in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (region AWS_REGION, default us-east-1); each body's payload hash is computed once, as the bodies repeat")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *payload != "text" && *payload != "json" {
		fmt.Fprintln(stderr, "sluice load: --payload is text or json")
		return 2
	}
	if *perCall < 1 || *perCall > 500 || *size < 0 || *conc < 1 || *dur <= 0 {
		fmt.Fprintln(stderr, "sluice load: need 1 <= --records <= 500, --record-size >= 0, --concurrency >= 1, --duration > 0")
		return 2
	}
	spec := loadSpec{
		Endpoint: *endpoint, Stream: *stream, Concurrency: *conc, RecordsPerCall: *perCall,
		RecordSize: *size, Duration: *dur, Warmup: *warmup, PID: *pid, Rate: *rate, JSON: *payload == "json",
	}
	if *sign {
		id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		if id == "" || secret == "" {
			fmt.Fprintln(stderr, "sluice load: --sign needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
			return 2
		}
		region := os.Getenv("AWS_REGION")
		if region == "" {
			region = "us-east-1"
		}
		spec.Sign = &loadSigner{creds: aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, region: region, signer: v4.NewSigner()}
	}
	res, err := runLoad(ctx, spec)
	if err != nil {
		return exitCode(fmt.Errorf("load: %w", err), stderr)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		fmt.Fprintf(stdout, "%d callers x %d records x %d B for %.1fs against %s (stream %s)\n",
			res.Concurrency, res.RecordsPerCall, res.RecordSize, res.Seconds, res.Endpoint, res.Stream)
		fmt.Fprintf(stdout, "acked records/s: %.0f   MiB/s: %.1f   requests: %d (failed %d)   records failed: %d\n",
			res.RecordsPerSec, res.MiBPerSec, res.Requests, res.FailedRequests, res.FailedRecords)
		fmt.Fprintf(stdout, "latency ms: p50 %.2f   p99 %.2f   max %.2f\n", res.P50Millis, res.P99Millis, res.MaxMillis)
		if res.PeakRSSMiB > 0 {
			fmt.Fprintf(stdout, "server peak RSS: %.1f MiB\n", res.PeakRSSMiB)
		}
		if res.FirstError != "" {
			fmt.Fprintf(stdout, "first error: %s\n", res.FirstError)
		}
	}
	return 0
}

type loadSpec struct {
	Endpoint       string
	Stream         string
	Concurrency    int
	RecordsPerCall int
	RecordSize     int
	Duration       time.Duration
	Warmup         time.Duration
	PID            int
	Rate           int // records/s; 0 = unlimited
	JSON           bool
	Sign           *loadSigner // nil: requests are not signed
}

// loadSigner signs load requests with SigV4 (service firehose).
type loadSigner struct {
	creds  aws.Credentials
	region string
	signer *v4.Signer
}

func (s *loadSigner) sign(ctx context.Context, r *http.Request, payloadHash string) error {
	return s.signer.SignHTTP(ctx, s.creds, r, payloadHash, "firehose", s.region, time.Now())
}

func payloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// putRecordBatchBody builds one request body. Records carry the caller and
// call number so a run's data is not one repeated block.
func putRecordBatchBody(stream string, caller, call, n, size int, asJSON bool) []byte {
	var b bytes.Buffer
	b.Grow(n * (size*4/3 + 16))
	b.WriteString(`{"DeliveryStreamName":`)
	name, _ := json.Marshal(stream)
	b.Write(name)
	b.WriteString(`,"Records":[`)
	rec := make([]byte, size)
	for i := range n {
		if asJSON {
			rec = clickRecord(rec[:0], caller, call, i, size)
		} else {
			rec = rec[:size]
			head := fmt.Sprintf("c%d-r%d-i%d ", caller, call, i)
			for j := range rec {
				rec[j] = 'a' + byte((j+i)%26)
			}
			copy(rec, head)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"Data":"`)
		b.WriteString(base64.StdEncoding.EncodeToString(rec))
		b.WriteString(`"}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func runLoad(ctx context.Context, s loadSpec) (loadResult, error) {
	res := loadResult{Endpoint: s.Endpoint, Stream: s.Stream, Concurrency: s.Concurrency,
		RecordsPerCall: s.RecordsPerCall, RecordSize: s.RecordSize}
	// A few distinct bodies per caller, built before the clock starts, so the
	// client spends its CPU on HTTP rather than on encoding.
	const bodiesPerCaller = 4
	bodies := make([][][]byte, s.Concurrency)
	hashes := make([][]string, s.Concurrency)
	for c := range bodies {
		for k := range bodiesPerCaller {
			b := putRecordBatchBody(s.Stream, c, k, s.RecordsPerCall, s.RecordSize, s.JSON)
			bodies[c] = append(bodies[c], b)
			hashes[c] = append(hashes[c], payloadHash(b))
		}
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: s.Concurrency * 2, MaxIdleConnsPerHost: s.Concurrency * 2,
		DisableCompression: true, IdleConnTimeout: 30 * time.Second,
	}, Timeout: 30 * time.Second}

	var stopRSS func() float64
	if s.PID > 0 {
		stopRSS = sampleRSS(s.PID)
	}

	ctx, cancel := context.WithTimeout(ctx, s.Warmup+s.Duration)
	defer cancel()
	// With a target rate, callers take a token per call from a ticker.
	var tokens chan struct{}
	if s.Rate > 0 {
		tokens = make(chan struct{}, s.Concurrency)
		every := time.Duration(float64(time.Second) * float64(s.RecordsPerCall) / float64(s.Rate))
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					select {
					case tokens <- struct{}{}:
					default: // callers are behind: the server is the limit
					}
				}
			}
		}()
	}
	measureFrom := time.Now().Add(s.Warmup)
	var (
		requests, failedReq, acked, failedRec atomic.Int64
		firstErr                              atomic.Value
		mu                                    sync.Mutex
		lat                                   []time.Duration
	)
	var wg sync.WaitGroup
	for c := range s.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			for i := 0; ctx.Err() == nil; i++ {
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						continue
					}
				}
				start := time.Now()
				ok, failed, err := putOnce(ctx, client, s.Endpoint, bodies[c][i%bodiesPerCaller], s.Sign, hashes[c][i%bodiesPerCaller])
				if ctx.Err() != nil {
					break
				}
				if start.Before(measureFrom) {
					continue
				}
				local = append(local, time.Since(start))
				requests.Add(1)
				if err != nil {
					failedReq.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				acked.Add(int64(ok))
				failedRec.Add(int64(failed))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(measureFrom).Seconds()
	if stopRSS != nil {
		res.PeakRSSMiB = stopRSS()
	}
	res.Seconds = elapsed
	res.Requests, res.FailedRequests = requests.Load(), failedReq.Load()
	res.AckedRecords, res.FailedRecords = acked.Load(), failedRec.Load()
	res.RecordsPerSec = float64(res.AckedRecords) / elapsed
	res.MiBPerSec = res.RecordsPerSec * float64(s.RecordSize) / (1 << 20)
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		ms := func(q float64) float64 {
			return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
		}
		res.P50Millis, res.P99Millis, res.MaxMillis = ms(0.50), ms(0.99), ms(1)
	}
	if res.Requests == 0 {
		return res, fmt.Errorf("no request completed (first error: %s)", res.FirstError)
	}
	return res, nil
}

// putOnce sends one PutRecordBatch and returns the acked and failed counts.
func putOnce(ctx context.Context, c *http.Client, endpoint string, body []byte, sign *loadSigner, hash string) (ok, failed int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
	if sign != nil {
		if err := sign.sign(ctx, req, hash); err != nil {
			return 0, 0, err
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(out[:min(len(out), 200)]))
	}
	total := bytes.Count(out, []byte(`"RecordId"`)) + bytes.Count(out, []byte(`"ErrorCode"`))
	failed, err = failedPutCount(out)
	if err != nil {
		return 0, 0, err
	}
	return total - failed, failed, nil
}

func failedPutCount(out []byte) (int, error) {
	const key = `"FailedPutCount":`
	i := bytes.Index(out, []byte(key))
	if i < 0 {
		return 0, fmt.Errorf("response without FailedPutCount: %.200s", out)
	}
	rest := strings.TrimLeft(string(out[i+len(key):min(len(out), i+len(key)+24)]), " ")
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	return strconv.Atoi(rest[:end])
}

// sampleRSS polls a process's VmHWM (peak resident set) and returns a
// function that stops polling and reports the peak in MiB.
func sampleRSS(pid int) func() float64 {
	done := make(chan struct{})
	var peak atomic.Int64
	read := func() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				if kb*1024 > peak.Load() {
					peak.Store(kb * 1024)
				}
			}
		}
	}
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() float64 {
		close(done)
		read()
		return float64(peak.Load()) / (1 << 20)
	}
}

// clickRecord appends a clickstream JSON object (the shape of
// examples/data/clickstream.ndjson) padded with a "note" field to about
// size bytes.
func clickRecord(dst []byte, caller, call, i, size int) []byte {
	countries := [...]string{"US", "DE", "FR", "JP", "BR", "IN"}
	n := caller*1_000_000 + call*1000 + i
	dst = fmt.Appendf(dst, `{"event_id":"evt-%d-%d-%d","ts":"2026-11-25T09:%02d:%02d.%03dZ","user_id":%d,"country":"%s","amount":%d.%02d,"tags":["promo","mobile"],"device":{"os":"ios","version":"17.4"},"note":"`,
		caller, call, i, (n/60)%60, n%60, n%1000, 1_000_000_000+n, countries[n%len(countries)], n%500, n%100)
	for len(dst) < size-2 {
		dst = append(dst, byte('a'+len(dst)%26))
	}
	return append(dst, `"}`...)
}
