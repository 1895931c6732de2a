// Command malformed is a malformed-input load against a running Sluice:
// it sends N requests, each chosen at random among
//
//   - raw: random bytes on a TCP connection (not HTTP);
//   - mutated: a real PutRecordBatch or PutRecord body, truncated,
//     bit-flipped, with random bytes inserted, or its base64 broken;
//   - junk-json: random JSON-ish text as the body of a real call;
//   - headers: a real call with a huge header (64 KiB to 1 MiB);
//   - slow: a real call whose body is sent slowly and cut short;
//   - protocol: wrong methods, targets, content types, lengths that lie;
//   - valid: an unchanged real call (must succeed or be throttled);
//
// and checks every answer: an HTTP request that reaches the API must get a
// well-formed AWS error (JSON with "__type" and "message", status 4xx or
// 5xx) or a success; what the HTTP layer refuses (raw bytes, huge headers)
// may be a plain 4xx or a closed connection. It samples the daemon's RSS
// (-pid) and fails if the daemon stops answering. It prints one JSON
// summary and exits 1 on any violation.
//
//	malformed -addr 127.0.0.1:4573 -stream bench -requests 1000000 -pid PID
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Requests    int64            `json:"requests"`
	Seconds     float64          `json:"seconds"`
	ByKind      map[string]int64 `json:"by_kind"`
	ByAnswer    map[string]int64 `json:"by_answer"`
	Violations  int64            `json:"violations"`
	FirstIssue  string           `json:"first_violation,omitempty"`
	RSSStartMiB float64          `json:"rss_start_mib"`
	RSSPeakMiB  float64          `json:"rss_peak_mib"`
	RSSEndMiB   float64          `json:"rss_end_mib"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:4573", "the daemon's API address")
	stream := flag.String("stream", "bench", "an existing stream")
	n := flag.Int64("requests", 100000, "requests to send")
	conc := flag.Int("concurrency", 16, "concurrent senders")
	pid := flag.Int("pid", 0, "the daemon's pid, for its RSS")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
	flag.Parse()

	res := result{ByKind: map[string]int64{}, ByAnswer: map[string]int64{}}
	res.RSSStartMiB = rss(*pid)
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				if v := uint64(rss(*pid) * 1024); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	var mu sync.Mutex
	var sent atomic.Int64
	note := func(kind, answer, violation string) {
		mu.Lock()
		defer mu.Unlock()
		res.ByKind[kind]++
		res.ByAnswer[answer]++
		if violation != "" {
			res.Violations++
			if res.FirstIssue == "" {
				res.FirstIssue = kind + ": " + violation
			}
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *conc {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(*seed, uint64(w)))
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
			for sent.Add(1) <= *n {
				kind, answer, violation := one(r, c, *addr, *stream)
				note(kind, answer, violation)
			}
		})
	}
	wg.Wait()
	close(stop)
	res.Seconds = time.Since(start).Seconds()
	res.Requests = *n
	res.RSSPeakMiB = float64(peak.Load()) / 1024
	res.RSSEndMiB = rss(*pid)
	// The daemon must still answer a valid call.
	if _, answer, v := api(http.DefaultClient, *addr, "valid", "POST", "PutRecordBatch", "application/x-amz-json-1.1",
		realBody(rand.New(rand.NewPCG(1, 1)), *stream, true), nil); v != "" || !strings.HasPrefix(answer, "200") {
		res.Violations++
		res.FirstIssue = fmt.Sprintf("after the load, a valid call: %s %s", answer, v)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(res)
	if res.Violations > 0 {
		os.Exit(1)
	}
}

// rss is a process's resident memory in MiB (0 without a pid).
func rss(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// realBody is a valid PutRecordBatch (batch) or PutRecord body.
func realBody(r *rand.Rand, stream string, batch bool) []byte {
	rec := func() string {
		d := make([]byte, 1+r.IntN(300))
		for i := range d {
			d[i] = byte(' ' + r.IntN(95))
		}
		return base64.StdEncoding.EncodeToString(d)
	}
	if !batch {
		return []byte(`{"DeliveryStreamName":"` + stream + `","Record":{"Data":"` + rec() + `"}}`)
	}
	var b strings.Builder
	b.WriteString(`{"DeliveryStreamName":"` + stream + `","Records":[`)
	for i := range 1 + r.IntN(20) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"Data":"` + rec() + `"}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func mutate(r *rand.Rand, b []byte) []byte {
	b = bytes.Clone(b)
	switch r.IntN(5) {
	case 0: // truncate
		return b[:r.IntN(len(b))]
	case 1: // flip bits
		for range 1 + r.IntN(8) {
			b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
		}
		return b
	case 2: // insert random bytes
		i := r.IntN(len(b))
		junk := make([]byte, 1+r.IntN(64))
		for j := range junk {
			junk[j] = byte(r.IntN(256))
		}
		return append(b[:i], append(junk, b[i:]...)...)
	case 3: // break the base64
		if i := bytes.Index(b, []byte(`"Data":"`)); i >= 0 && i+9 < len(b) {
			b[i+8] = "!*-_=\\\x00\xff"[r.IntN(8)]
		}
		return b
	default: // deep nesting or huge numbers
		if r.IntN(2) == 0 {
			return []byte(strings.Repeat("[", 10000+r.IntN(100000)))
		}
		return []byte(`{"DeliveryStreamName":"x","Records":[{"Data":"aGk="}],"Limit":` + strings.Repeat("9", 5000) + `}`)
	}
}

func junkJSON(r *rand.Rand) []byte {
	const parts = `{}[]":,\ abcnulltruefalse0123456789e+-.` + "\x00\xc3\x28\u2028"
	b := make([]byte, r.IntN(2000))
	for i := range b {
		b[i] = parts[r.IntN(len(parts))]
	}
	return b
}

// one sends one request of a random kind and judges the answer.
func one(r *rand.Rand, c *http.Client, addr, stream string) (kind, answer, violation string) {
	batch := r.IntN(2) == 0
	op := "PutRecord"
	if batch {
		op = "PutRecordBatch"
	}
	switch k := r.IntN(100); {
	case k < 10:
		answer, violation := raw(r, addr)
		return "raw", answer, violation
	case k < 45:
		return api(c, addr, "mutated", "POST", op, "application/x-amz-json-1.1", mutate(r, realBody(r, stream, batch)), nil)
	case k < 60:
		return api(c, addr, "junk-json", "POST", op, "application/x-amz-json-1.1", junkJSON(r), nil)
	case k < 62:
		return headers(r, addr, stream)
	case k < 70:
		return "slow", slow(r, addr, op, realBody(r, stream, batch)), ""
	case k < 85:
		methods := []string{"GET", "PUT", "DELETE", "POST", "POST"}
		targets := []string{"Firehose_20150804.Nope", "Kinesis_20131202.GetRecords", "", "Firehose_20150804." + op, "Firehose_20150804.ListDeliveryStreams"}
		types := []string{"text/plain", "", "application/x-amz-json-1.1", "application/json; charset=utf-8", "multipart/form-data"}
		return api(c, addr, "protocol", methods[r.IntN(len(methods))], op,
			types[r.IntN(len(types))], realBody(r, stream, batch), map[string]string{"X-Amz-Target": targets[r.IntN(len(targets))]})
	default:
		kind, answer, violation = api(c, addr, "valid", "POST", op, "application/x-amz-json-1.1", realBody(r, stream, batch), nil)
		if violation == "" && !strings.HasPrefix(answer, "200") && !strings.HasPrefix(answer, "503") {
			violation = "a valid call got " + answer
		}
		return kind, answer, violation
	}
}

// api sends an HTTP request and checks that the answer is a success or a
// well-formed AWS error.
func api(c *http.Client, addr, kind, method, op, ctype string, body []byte, hdr map[string]string) (string, string, string) {
	req, err := http.NewRequest(method, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		return kind, "client-error", ""
	}
	req.Header.Set("X-Amz-Target", "Firehose_20150804."+op)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return kind, "no-answer", "no answer: " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return kind, "cut-answer", "answer cut: " + err.Error()
	}
	answer := strconv.Itoa(resp.StatusCode)
	if resp.StatusCode == 200 {
		if !json.Valid(b) {
			return kind, answer, "a 200 whose body is not JSON"
		}
		return kind, answer, ""
	}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Type == "" || e.Message == "" || resp.StatusCode < 400 {
		return kind, answer, fmt.Sprintf("not an AWS error: %d %.200q", resp.StatusCode, b)
	}
	return kind, answer + " " + e.Type, ""
}

// raw writes random bytes on a connection: the HTTP layer refuses them
// (a 4xx) or closes the connection; it must not hang or crash.
func raw(r *rand.Rand, addr string) (string, string) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "dial-failed", "cannot connect: " + err.Error()
	}
	defer conn.Close()
	b := make([]byte, 1+r.IntN(4096))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	if r.IntN(3) == 0 {
		b = append([]byte("POST / HTTP/1.1\r\nHost: x\r\n"), b...)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(b); err != nil {
		return "closed", ""
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "closed", ""
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		return strconv.Itoa(resp.StatusCode), fmt.Sprintf("random bytes got %d", resp.StatusCode)
	}
	return strconv.Itoa(resp.StatusCode), ""
}

// headers sends a real call with one huge header.
func headers(r *rand.Rand, addr, stream string) (string, string, string) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "headers", "dial-failed", "cannot connect: " + err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	body := realBody(r, stream, false)
	big := strings.Repeat("a", 64<<10+r.IntN(1<<20))
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Firehose_20150804.PutRecord\r\nContent-Type: application/x-amz-json-1.1\r\nX-Huge: %s\r\nContent-Length: %d\r\n\r\n%s", big, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "headers", "closed", ""
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		return "headers", "200", "" // under the header limit: a valid call
	}
	if resp.StatusCode < 400 {
		return "headers", strconv.Itoa(resp.StatusCode), fmt.Sprintf("a huge header got %d", resp.StatusCode)
	}
	return "headers", strconv.Itoa(resp.StatusCode), ""
}

// slow sends a call's headers, then part of its body a few bytes at a
// time, and hangs up: nothing may be stored, nothing may break.
func slow(r *rand.Rand, addr, op string, body []byte) string {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "dial-failed"
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Firehose_20150804.%s\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: %d\r\n\r\n", op, len(body))
	cut := r.IntN(min(len(body), 1024))
	for i := 0; i < cut; i += 128 {
		if _, err := conn.Write(body[i:min(i+128, cut)]); err != nil {
			return "closed"
		}
		time.Sleep(time.Millisecond)
	}
	return "cut"
}
