package firehoseapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/ingest/audit"
	"github.com/sluice-dev/sluice/ingest/sigv4"
)

const (
	auditKeyID  = "AKIDAUDITTEST0001"
	auditSecret = "SECRETsecretSECRETsecret0123456789abcdef"
	auditToken  = "SESSIONTOKENsessiontoken0123456789"
)

type auditEnv struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []Call
	log   *audit.Log // every call also goes through the real audit log
	out   bytes.Buffer
	outMu sync.Mutex
}

func (a *auditEnv) Write(p []byte) (int, error) {
	a.outMu.Lock()
	defer a.outMu.Unlock()
	return a.out.Write(p)
}

func newAuditEnv(t *testing.T, signed bool, mods ...func(*Config)) *auditEnv {
	t.Helper()
	a := &auditEnv{}
	l, err := audit.New(context.Background(), audit.Options{Writer: a, Sample: 1})
	if err != nil {
		t.Fatal(err)
	}
	a.log = l
	closed := memory.New(memory.Options{})
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Appender: router{"s": memory.New(memory.Options{}), "t": memory.New(memory.Options{}),
			"tiny": memory.New(memory.Options{MaxBytes: 100}), "broken": closed},
		Streams: []StreamInfo{{Name: "s"}, {Name: "t"}, {Name: "tiny"}, {Name: "broken"},
			{Name: "kin", Type: TypeKinesisStreamAsSource, KinesisStreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/k"}},
		Audit: func(c Call) {
			a.mu.Lock()
			a.calls = append(a.calls, c)
			a.mu.Unlock()
			a.log.Record(audit.Entry{Time: c.Time, RequestID: c.RequestID, Source: c.Source, AccessKeyID: c.AccessKeyID,
				Operation: c.Operation, Stream: c.Stream, Records: c.Records, Bytes: c.Bytes, Status: c.Status,
				Result: c.Result, FailedPutCount: c.FailedPutCount, Latency: c.Latency})
		},
	}
	if signed {
		v := &sigv4.Verifier{Service: "firehose", Lookup: func(id string) (sigv4.Key, bool) {
			return sigv4.Key{ID: id, Secret: auditSecret, SessionToken: auditToken}, id == auditKeyID
		}}
		cfg.Verify = v.VerifyPayload
		cfg.Allow = func(key, action, stream string) bool { return stream != "t" }
	}
	for _, m := range mods {
		m(&cfg)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.srv = httptest.NewServer(h)
	t.Cleanup(a.srv.Close)
	return a
}

// waitCalls returns the calls heard once there are n (a response may
// reach the client just before the handler reports its call), or after 2s.
func (a *auditEnv) waitCalls(n int) []Call {
	deadline := time.Now().Add(2 * time.Second)
	for {
		a.mu.Lock()
		calls := a.calls
		a.mu.Unlock()
		if len(calls) >= n || time.Now().After(deadline) {
			time.Sleep(time.Millisecond) // a second report would show now
			a.mu.Lock()
			calls = a.calls
			a.mu.Unlock()
			return calls
		}
		time.Sleep(time.Millisecond)
	}
}

type auditReq struct {
	name      string
	op        string // operation, "" for no X-Amz-Target
	ct        string // Content-Type ("" means JSON 1.1)
	body      string
	sign      string // "" unsigned, "ok", "bad" (signed for another body)
	chunked   bool
	status    int
	result    string
	stream    string
	records   int
	bytes     int
	failed    int
	operation string // expected operation when it differs from op
	// unverified: answered before the signature is checked (no key).
	unverified bool
}

// send makes one request and returns its status and request id.
func (a *auditEnv) send(t *testing.T, q auditReq) (int, string) {
	t.Helper()
	var body io.Reader = strings.NewReader(q.body)
	if q.chunked {
		body = io.MultiReader(body)
	}
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+"/", body)
	if err != nil {
		t.Fatal(err)
	}
	if q.op != "" {
		req.Header.Set("X-Amz-Target", targetPrefix+q.op)
	}
	ct := q.ct
	if ct == "" {
		ct = "application/x-amz-json-1.1"
	}
	req.Header.Set("Content-Type", ct)
	if q.sign != "" {
		signed := q.body
		if q.sign == "bad" {
			signed += " "
		}
		req.Header.Set("X-Amz-Security-Token", auditToken)
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: auditKeyID, SecretAccessKey: auditSecret, SessionToken: auditToken},
			req, sigv4.PayloadHash([]byte(signed)), "firehose", "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", q.name, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Amzn-RequestId")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// auditCases are every operation with a success and each error class;
// signed says whether the handler verifies signatures.
func auditCases(signed bool) []auditReq {
	ok := ""
	if signed {
		ok = "ok"
	}
	big := `{"DeliveryStreamName":"s","Records":[{"Data":"` + strings.Repeat("A", MaxBodyBytes) + `"}]}`
	cs := []auditReq{
		{name: "put", op: "PutRecord", body: `{"DeliveryStreamName":"s","Record":{"Data":"` + b64("hello") + `"}}`, status: 200, result: "Success", stream: "s", records: 1, bytes: 5},
		{name: "batch", op: "PutRecordBatch", body: batchBody("s", []byte("ab"), []byte("cde")), status: 200, result: "Success", stream: "s", records: 2, bytes: 5},
		{name: "list", op: "ListDeliveryStreams", body: `{}`, status: 200, result: "Success"},
		{name: "describe", op: "DescribeDeliveryStream", body: `{"DeliveryStreamName":"s"}`, status: 200, result: "Success", stream: "s"},
		{name: "tags", op: "ListTagsForDeliveryStream", body: `{"DeliveryStreamName":"s"}`, status: 200, result: "Success", stream: "s"},
		{unverified: true, name: "create refused", op: "CreateDeliveryStream", body: `{"DeliveryStreamName":"s"}`, status: 400, result: errInvalidArgument},
		{unverified: true, name: "delete refused", op: "DeleteDeliveryStream", body: `{"DeliveryStreamName":"s"}`, status: 400, result: errInvalidArgument},
		{unverified: true, name: "unknown op", op: "Frobnicate", body: `{}`, status: 400, result: errUnknownOperation, operation: "Unknown"},
		{unverified: true, name: "no target", body: `{}`, status: 400, result: errUnknownOperation, operation: "Unknown"},
		{unverified: true, name: "content type", op: "PutRecord", ct: "text/plain", body: `{}`, status: 404, result: errUnknownOperation},
		{name: "validation put", op: "PutRecord", body: `{"DeliveryStreamName":"s"}`, status: 400, result: errValidation, stream: "s"},
		{name: "validation batch", op: "PutRecordBatch", body: `{"DeliveryStreamName":"bad name!","Records":[]}`, status: 400, result: errValidation},
		{name: "validation describe", op: "DescribeDeliveryStream", body: `{"DeliveryStreamName":"bad\nname"}`, status: 400, result: errValidation},
		{name: "not found put", op: "PutRecord", body: putBody("nope", []byte("x")), status: 400, result: errResourceNotFound, stream: "nope", records: 1, bytes: 1},
		{name: "not found describe", op: "DescribeDeliveryStream", body: `{"DeliveryStreamName":"nope"}`, status: 400, result: errResourceNotFound, stream: "nope"},
		{name: "kinesis source", op: "PutRecordBatch", body: batchBody("kin", []byte("x")), status: 400, result: errInvalidArgument, stream: "kin", records: 1, bytes: 1},
		{name: "serialization put", op: "PutRecord", body: `{"DeliveryStreamName":`, status: 400, result: errSerialization},
		{name: "serialization control", op: "ListDeliveryStreams", body: `[]`, status: 400, result: errSerialization},
		{name: "throttled put", op: "PutRecord", body: putBody("tiny", bytes.Repeat([]byte("x"), 200)), status: 503, result: errServiceUnavailable, stream: "tiny", records: 1, bytes: 200},
		{name: "throttled batch", op: "PutRecordBatch", body: batchBody("tiny", bytes.Repeat([]byte("x"), 150), bytes.Repeat([]byte("y"), 150)), status: 200, result: "Success", stream: "tiny", records: 2, bytes: 300, failed: 2},
		{name: "internal put", op: "PutRecord", body: putBody("broken", []byte("x")), status: 500, result: errInternalFailure, stream: "broken", records: 1, bytes: 1},
		{name: "internal batch", op: "PutRecordBatch", body: batchBody("broken", []byte("x")), status: 200, result: "Success", stream: "broken", records: 1, bytes: 1, failed: 1},
		{unverified: true, name: "too large", op: "PutRecordBatch", body: big, status: 400, result: errInvalidArgument},
		{unverified: true, name: "too large chunked", op: "PutRecord", body: big, chunked: true, status: 400, result: errInvalidArgument},
	}
	for i := range cs {
		cs[i].sign = ok
	}
	if signed {
		cs = append(cs,
			auditReq{name: "unsigned", op: "PutRecord", body: putBody("s", []byte("x")), status: 400, result: "MissingAuthenticationTokenException", stream: "s", records: 1, bytes: 1},
			auditReq{name: "bad signature put", op: "PutRecordBatch", sign: "bad", body: batchBody("s", []byte("x")), status: 400, result: "InvalidSignatureException", stream: "s", records: 1, bytes: 1},
			auditReq{name: "bad signature control", op: "DescribeDeliveryStream", sign: "bad", body: `{"DeliveryStreamName":"s"}`, status: 400, result: "InvalidSignatureException", stream: "s"},
			auditReq{name: "denied put", op: "PutRecord", sign: "ok", body: putBody("t", []byte("xy")), status: 400, result: errAccessDenied, stream: "t", records: 1, bytes: 2},
			auditReq{name: "denied tags", op: "ListTagsForDeliveryStream", sign: "ok", body: `{"DeliveryStreamName":"t"}`, status: 400, result: errAccessDenied, stream: "t"},
		)
	}
	return cs
}

// TestAuditEveryCall drives every operation, unsigned and signed, with
// successes and each error class, and checks one audit call per request
// with the right fields.
func TestAuditEveryCall(t *testing.T) {
	for _, signed := range []bool{false, true} {
		name := "unsigned"
		if signed {
			name = "signed"
		}
		t.Run(name, func(t *testing.T) {
			a := newAuditEnv(t, signed)
			for _, q := range auditCases(signed) {
				a.mu.Lock()
				before := len(a.calls)
				a.mu.Unlock()
				status, id := a.send(t, q)
				if status != q.status {
					t.Errorf("%s: status %d, want %d", q.name, status, q.status)
				}
				got := a.waitCalls(before + 1)[before:]
				if len(got) != 1 {
					t.Fatalf("%s: %d audit calls, want 1", q.name, len(got))
				}
				c := got[0]
				wantOp := q.operation
				if wantOp == "" {
					wantOp = q.op
				}
				wantKey := ""
				if signed && q.sign == "ok" && !q.unverified {
					wantKey = auditKeyID
				}
				if c.RequestID != id || c.Operation != wantOp || c.Stream != q.stream || c.Status != status || c.Result != q.result ||
					c.Records != q.records || c.Bytes != q.bytes || c.FailedPutCount != q.failed || c.AccessKeyID != wantKey {
					t.Errorf("%s: audit %+v\nwant op %s stream %q status %d result %s records %d bytes %d failed %d key %q id %s",
						q.name, c, wantOp, q.stream, q.status, q.result, q.records, q.bytes, q.failed, wantKey, id)
				}
				if !strings.HasPrefix(c.Source, "127.0.0.1:") || c.Time.IsZero() || c.Latency <= 0 || time.Since(c.Time) > time.Minute {
					t.Errorf("%s: source %q time %v latency %v", q.name, c.Source, c.Time, c.Latency)
				}
			}
			if err := a.log.Close(); err != nil {
				t.Fatal(err)
			}
			if n, want := strings.Count(a.out.String(), "\n"), len(auditCases(signed)); n != want {
				t.Fatalf("%d audit lines, want %d", n, want)
			}
		})
	}
}

// TestAuditNoDataNoSecrets: records carrying a marker, signed with a known
// secret and session token, leave none of them (nor the signature) in the
// audit log's output.
func TestAuditNoDataNoSecrets(t *testing.T) {
	a := newAuditEnv(t, true)
	const marker = "MARKER-7f3c-do-not-log"
	var sigs []string
	for _, q := range []auditReq{
		{op: "PutRecord", body: putBody("s", []byte(marker))},
		{op: "PutRecordBatch", body: batchBody("s", []byte(marker), []byte(marker+"2"))},
		{op: "PutRecordBatch", sign: "bad", body: batchBody("s", []byte(marker))},
		{op: "PutRecord", body: putBody("t", []byte(marker))},
		{op: "PutRecord", body: `{"DeliveryStreamName":"` + marker + `!","Record":{"Data":"` + b64(marker) + `"}}`},
		{op: "DescribeDeliveryStream", body: `{"DeliveryStreamName":"` + marker + `!"}`},         // not a valid name
		{op: "PutRecord", body: `{"DeliveryStreamName":"s","Record":{"Data":"` + marker + `"}}`}, // not base64
	} {
		if q.sign == "" {
			q.sign = "ok"
		}
		req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/", strings.NewReader(q.body))
		req.Header.Set("X-Amz-Target", targetPrefix+q.op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Security-Token", auditToken)
		signed := q.body
		if q.sign == "bad" {
			signed += " "
		}
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: auditKeyID, SecretAccessKey: auditSecret, SessionToken: auditToken},
			req, sigv4.PayloadHash([]byte(signed)), "firehose", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		auth := req.Header.Get("Authorization")
		sigs = append(sigs, auth[strings.LastIndex(auth, "Signature=")+len("Signature="):])
		resp, err := a.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	a.waitCalls(7)
	if err := a.log.Close(); err != nil {
		t.Fatal(err)
	}
	out := a.out.String()
	if n := strings.Count(out, "\n"); n != 7 {
		t.Fatalf("%d lines, want 7:\n%s", n, out)
	}
	if !strings.Contains(out, auditKeyID) {
		t.Fatalf("the verified key id is missing:\n%s", out)
	}
	for _, s := range append([]string{marker, b64(marker), b64(marker)[:12], auditSecret, auditToken, "Signature=", "Credential=", "AWS4-HMAC-SHA256"}, sigs...) {
		if strings.Contains(out, s) {
			t.Fatalf("audit output contains %q:\n%s", s, out)
		}
	}
}

// TestAuditBodyTimeout: a body that stalls is answered 408 and audited
// once, on the put path and the control path.
func TestAuditBodyTimeout(t *testing.T) {
	for _, signed := range []bool{false, true} {
		a := newAuditEnv(t, signed, func(c *Config) { c.BodyTimeout = 200 * time.Millisecond })
		for _, op := range []string{"PutRecordBatch", "DescribeDeliveryStream"} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(a.srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: %s%s\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 1000\r\n\r\n{\"Delivery", targetPrefix, op)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			conn.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("%s: status %d", op, resp.StatusCode)
			}
		}
		calls := a.waitCalls(2)
		if len(calls) != 2 {
			t.Fatalf("%d audit calls, want 2", len(calls))
		}
		for i, op := range []string{"PutRecordBatch", "DescribeDeliveryStream"} {
			if c := calls[i]; c.Operation != op || c.Status != 408 || c.Result != "RequestTimeoutException" || c.AccessKeyID != "" || c.Latency < 150*time.Millisecond {
				t.Fatalf("audit %+v", c)
			}
		}
		if err := a.log.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
