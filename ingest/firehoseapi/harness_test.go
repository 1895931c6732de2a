package firehoseapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/pipeline"
)

// router is the test's Appender: it sends each stream to its own buffer.
type router map[string]buffer.Buffer

func (r router) Append(ctx context.Context, stream string, recs []pipeline.Record) error {
	b, ok := r[stream]
	if !ok {
		return fmt.Errorf("no buffer for stream %q", stream)
	}
	if err := b.Append(ctx, recs); err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	return nil
}

type env struct {
	h       *Handler
	srv     *httptest.Server
	bufs    router
	reg     *prometheus.Registry
	metrics *Metrics
	created time.Time
}

const testAccount = "123456789012"

// tinyQuota is the byte quota of the "tiny" stream: room for a few small
// records only.
const tinyQuota = 200

func newEnv(t testing.TB) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	bufs := router{
		"alpha": memory.New(memory.Options{MaxBytes: 256 << 20}),
		"beta":  memory.New(memory.Options{}),
		"gamma": memory.New(memory.Options{}),
		"tiny":  memory.New(memory.Options{MaxBytes: tinyQuota}),
		"kin":   memory.New(memory.Options{}),
	}
	closed := memory.New(memory.Options{})
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	bufs["broken"] = closed
	created := time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
	h, err := NewHandler(Config{
		Region:    "eu-west-3",
		AccountID: testAccount,
		Appender:  bufs,
		Metrics:   m,
		Streams: []StreamInfo{
			{Name: "gamma"},
			{Name: "alpha", Created: created, VersionID: "3", Tags: map[string]string{"team": "data", "env": "prod", "cost": "42"},
				Destination: alphaDestination()},
			{Name: "beta", Destination: pipeline.Description{"HttpEndpointDestinationDescription": betaHTTPEndpoint,
				"DestinationId": "not-the-handler's"}},
			{Name: "tiny"},
			{Name: "broken"},
			{Name: "kin", Type: TypeKinesisStreamAsSource, KinesisStreamARN: "arn:aws:kinesis:eu-west-3:123456789012:stream/src",
				KinesisDeliveryStart: time.UnixMilli(1764547200123)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{h: h, srv: srv, bufs: bufs, reg: reg, metrics: m, created: created}
}

// alphaDestination is an S3 destination's description, as the object
// layer builds it: Extended S3 with its plain S3 copy.
func alphaDestination() pipeline.Description {
	s3 := func(extended bool) map[string]any {
		d := map[string]any{
			"RoleARN":                  "arn:aws:iam::123456789012:role/sluice",
			"BucketARN":                "arn:aws:s3:::my-bucket",
			"Prefix":                   "logs/",
			"ErrorOutputPrefix":        "errors/",
			"BufferingHints":           map[string]any{"SizeInMBs": 64, "IntervalInSeconds": 60},
			"CompressionFormat":        "GZIP",
			"EncryptionConfiguration":  map[string]any{"NoEncryptionConfig": "NoEncryption"},
			"CloudWatchLoggingOptions": map[string]any{"Enabled": false},
		}
		if extended {
			d["S3BackupMode"] = "Disabled"
		}
		return d
	}
	return pipeline.Description{"ExtendedS3DestinationDescription": s3(true), "S3DestinationDescription": s3(false)}
}

// betaHTTPEndpoint is a destination description member of another kind.
var betaHTTPEndpoint = map[string]any{
	"EndpointConfiguration": map[string]any{"Url": "https://collector.example/ingest", "Name": "collector"},
	"BufferingHints":        map[string]any{"SizeInMBs": 1, "IntervalInSeconds": 10},
	"S3BackupMode":          "FailedDataOnly",
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// call sends a raw request with the AWS JSON 1.1 content type and checks
// the headers every response carries.
func (e *env) call(t testing.TB, method, target, body string) response {
	t.Helper()
	return e.callAs(t, method, target, "application/x-amz-json-1.1", body)
}

// callAs is call with another Content-Type ("" for none).
func (e *env) callAs(t testing.TB, method, target, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("Content-Type %q", ct)
	}
	if id := resp.Header.Get("x-amzn-RequestId"); !uuidRE.MatchString(id) {
		t.Errorf("x-amzn-RequestId %q is not a UUID", id)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("response body %q is not a JSON object: %v", raw, err)
	}
	return r
}

func (e *env) op(t testing.TB, op, body string) response {
	t.Helper()
	return e.call(t, http.MethodPost, targetPrefix+op, body)
}

// wantError asserts an error response.
func wantError(t testing.TB, r response, status int, typ, msgSubstr string) {
	t.Helper()
	if r.status != status || r.body["__type"] != typ {
		t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, typ)
	}
	msg, _ := r.body["message"].(string)
	if !strings.Contains(msg, msgSubstr) {
		t.Fatalf("message %q does not contain %q", msg, msgSubstr)
	}
}

// batchBody builds a PutRecordBatch body.
func batchBody(stream string, records ...[]byte) string {
	var b strings.Builder
	b.WriteString(`{"DeliveryStreamName":"` + stream + `","Records":[`)
	for i, r := range records {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"Data":"` + base64.StdEncoding.EncodeToString(r) + `"}`)
	}
	b.WriteString("]}")
	return b.String()
}

func putBody(stream string, data []byte) string {
	return `{"DeliveryStreamName":"` + stream + `","Record":{"Data":"` + base64.StdEncoding.EncodeToString(data) + `"}}`
}

// stored returns every record held by a stream's buffer.
func (e *env) stored(t testing.TB, stream string) []pipeline.Record {
	t.Helper()
	b := e.bufs[stream]
	recs, _, err := b.Read(context.Background(), b.State().Committed, 1<<40, 1<<30, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]pipeline.Record, len(recs))
	for i, r := range recs {
		r.Data = bytes.Clone(r.Data)
		out[i] = r
	}
	return out
}

func (e *env) wantStored(t testing.TB, stream string, n int) {
	t.Helper()
	if got := len(e.stored(t, stream)); got != n {
		t.Fatalf("stream %s holds %d records, want %d", stream, got, n)
	}
}

func (e *env) counter(c *prometheus.CounterVec, labels ...string) float64 {
	var m dto.Metric
	if err := c.WithLabelValues(labels...).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func payloads(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte('a' + i%26)}, size)
		copy(out[i], fmt.Sprintf("%d:", i))
	}
	return out
}
