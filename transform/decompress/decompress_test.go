package decompress

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/transformtest"
)

// gz compresses data with the standard library's gzip writer,
// independent of the reader under test.
func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newProc(t testing.TB, mod func(*Options)) *Processor {
	t.Helper()
	opts := DefaultOptions()
	if mod != nil {
		mod(&opts)
	}
	p, err := New(compile(t, opts), pipeline.Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func compile(t testing.TB, opts Options) Compiled {
	t.Helper()
	c, err := opts.Compile()
	if err != nil {
		t.Fatalf("Compile(%+v): %v", opts, err)
	}
	return c
}

func batchOf(data ...[]byte) pipeline.Batch {
	b := pipeline.Batch{Stream: "s"}
	for i, d := range data {
		b.Records = append(b.Records, pipeline.Record{ID: "r" + strconv.Itoa(i), Data: d})
	}
	return b
}

func value(t *testing.T, cv *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	if err := cv.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// cwl builds a CloudWatch Logs subscription payload.
func cwl(typ string, msgs ...string) []byte {
	type ev struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	pl := struct {
		MessageType         string   `json:"messageType"`
		Owner               string   `json:"owner"`
		LogGroup            string   `json:"logGroup"`
		LogStream           string   `json:"logStream"`
		SubscriptionFilters []string `json:"subscriptionFilters"`
		LogEvents           []ev     `json:"logEvents"`
	}{typ, "123456789012", "/aws/lambda/f", "2024/01/01/[$LATEST]abc", []string{"filter"}, []ev{}}
	for i, m := range msgs {
		pl.LogEvents = append(pl.LogEvents, ev{strconv.Itoa(i), 1510109208016 + int64(i), m})
	}
	b, _ := json.Marshal(pl)
	return b
}

func codeOf(t *testing.T, err error) (string, string) {
	t.Helper()
	var ce *pipeline.CodedError
	if !errors.As(err, &ce) {
		t.Fatalf("%v is not a CodedError", err)
	}
	return ce.Code, ce.OutputType
}

func TestDecompress(t *testing.T) {
	p := newProc(t, nil)
	payload := cwl(MessageTypeData, "a", "b")
	two := append(gz(t, []byte("first,")), gz(t, []byte("second"))...)
	in := batchOf(gz(t, payload), gz(t, nil), two)
	in.Records[0].Keys = map[string]string{"k": "v"}
	out, failed, err := p.Process(context.Background(), in)
	if err != nil || len(failed) != 0 {
		t.Fatalf("err=%v failed=%v", err, failed)
	}
	want := []string{string(payload), "", "first,second"}
	if len(out.Records) != len(want) {
		t.Fatalf("%d records", len(out.Records))
	}
	for i, w := range want {
		if got := out.Records[i]; got.ID != "r"+strconv.Itoa(i) || string(got.Data) != w {
			t.Errorf("record %d = %q %q, want %q", i, got.ID, got.Data, w)
		}
	}
	if out.Records[0].Keys["k"] != "v" || out.Bytes != len(payload)+len("first,second") {
		t.Errorf("keys %v bytes %d", out.Records[0].Keys, out.Bytes)
	}
	if !bytes.Equal(in.Records[1].Data, gz(t, nil)) {
		t.Error("the input batch changed")
	}
	if got := value(t, p.metrics.in, "s"); got != 3 {
		t.Errorf("in = %v", got)
	}
	if p.ErrorOutputType() != OutputDecompressionFailed {
		t.Errorf("ErrorOutputType = %q", p.ErrorOutputType())
	}
}

func TestDecompressFailures(t *testing.T) {
	good := gz(t, []byte(strings.Repeat("hello ", 100)))
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-6] ^= 0xff // CRC-32
	garbled := bytes.Clone(good)
	garbled[12] ^= 0x55
	tests := []struct {
		name string
		data []byte
		code string
	}{
		{"plain text", []byte(`{"a":1}`), CodeInvalidGzip},
		{"empty", nil, CodeInvalidGzip},
		{"magic only", []byte{0x1f, 0x8b}, CodeInvalidGzip},
		{"truncated", good[:len(good)/2], CodeInvalidGzip},
		{"bad checksum", corrupt, CodeInvalidGzip},
		{"garbled deflate", garbled, CodeInvalidGzip},
		{"trailing garbage", append(bytes.Clone(good), "junk"...), CodeInvalidGzip},
		{"over the limit", gz(t, make([]byte, 1025)), CodeSizeLimitExceeded},
	}
	p := newProc(t, func(o *Options) { o.MaxDecompressedBytes = 1024 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, failed, err := p.Process(context.Background(), batchOf([]byte("x"), tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(failed) != 2 || failed[1].Index != 1 {
				t.Fatalf("failed = %v", failed)
			}
			if code, ot := codeOf(t, failed[1].Err); code != tt.code || ot != OutputDecompressionFailed {
				t.Errorf("code %s, output %s; want %s", code, ot, tt.code)
			}
			if len(out.Records) != 0 {
				t.Errorf("records %v", out.Records)
			}
		})
	}
	// Exactly at the limit is fine.
	out, failed, _ := p.Process(context.Background(), batchOf(gz(t, make([]byte, 1024))))
	if len(failed) != 0 || len(out.Records[0].Data) != 1024 {
		t.Errorf("at the limit: failed=%v", failed)
	}
}

// TestGzipBomb: a record that inflates to 32 MiB fails after the limit,
// allocating about the limit, not the inflated size.
func TestGzipBomb(t *testing.T) {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 32 {
		w.Write(zeros)
	}
	w.Close()
	bomb := b.Bytes()
	p := newProc(t, func(o *Options) { o.MaxDecompressedBytes = 1 << 20 })
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, failed, err := p.Process(context.Background(), batchOf(bomb))
	runtime.ReadMemStats(&after)
	if err != nil || len(failed) != 1 {
		t.Fatalf("err=%v failed=%v", err, failed)
	}
	if code, _ := codeOf(t, failed[0].Err); code != CodeSizeLimitExceeded {
		t.Errorf("code %s", code)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("allocated %d KiB for a 1 MiB limit", alloc>>10)
	}
	// A forged ISIZE cannot make the buffer large.
	small := gz(t, []byte("tiny"))
	forged := bytes.Clone(small)
	copy(forged[len(forged)-4:], []byte{0xff, 0xff, 0xff, 0x7f})
	if h := sizeHint(forged, 1<<30); h > len(forged)*maxDeflateRatio {
		t.Errorf("hint %d for a %d-byte record", h, len(forged))
	}
	if _, failed, _ := p.Process(context.Background(), batchOf(forged)); len(failed) != 1 {
		t.Error("a record with a wrong ISIZE passed the gzip checks")
	}
}

func TestMessageExtraction(t *testing.T) {
	p := newProc(t, func(o *Options) { o.CloudWatchLogs.DataMessageExtraction = true })
	msgs := []string{"first line", `{"json":"inside","n":1}`, "tab\there \"quoted\" é 🚀", ""}
	in := batchOf(
		gz(t, cwl(MessageTypeData, msgs...)),
		gz(t, cwl(MessageTypeControl, "CWL CONTROL MESSAGE: Checking health of destination Firehose.")),
		gz(t, cwl(MessageTypeData)),
		gz(t, []byte(`not json`)),
		gz(t, []byte(`{"logEvents":[]}`)),
		gz(t, cwl("OTHER", "x")),
		gz(t, []byte(`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1"}]}`)),
		gz(t, cwl(MessageTypeData, "last")),
	)
	in.Records[0].Meta = map[string]string{"m": "1"}
	out, failed, err := p.Process(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out.Records {
		got = append(got, r.ID+"="+string(r.Data))
	}
	want := []string{"r0-0=" + msgs[0], "r0-1=" + msgs[1], "r0-2=" + msgs[2], "r0-3=", "r7-0=last"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("records\n%q\nwant\n%q", got, want)
	}
	if !maps.Equal(out.Records[1].Meta, map[string]string{"m": "1"}) {
		t.Errorf("meta %v", out.Records[1].Meta)
	}
	out.Records[0].Meta["m"] = "changed"
	if out.Records[1].Meta["m"] != "1" || in.Records[0].Meta["m"] != "1" {
		t.Error("extracted records share their Meta")
	}
	wantFailed := []int{3, 4, 5, 6}
	if len(failed) != len(wantFailed) {
		t.Fatalf("failed = %v", failed)
	}
	for i, f := range failed {
		code, ot := codeOf(t, f.Err)
		if f.Index != wantFailed[i] || code != CodeMessageExtractionFailed || ot != pipeline.OutputProcessingFailed {
			t.Errorf("failure %d: index %d code %s output %s (%v)", i, f.Index, code, ot, f.Err)
		}
	}
	if got := value(t, p.metrics.control, "s"); got != 1 {
		t.Errorf("control messages = %v, want 1", got)
	}
	if got := value(t, p.metrics.out, "s"); got != 5 {
		t.Errorf("out = %v, want 5", got)
	}
}

func TestWithoutExtractionControlMessagesStay(t *testing.T) {
	p := newProc(t, nil)
	ctl := cwl(MessageTypeControl, "CWL CONTROL MESSAGE")
	out, failed, _ := p.Process(context.Background(), batchOf(gz(t, ctl)))
	if len(failed) != 0 || len(out.Records) != 1 || !bytes.Equal(out.Records[0].Data, ctl) {
		t.Errorf("control payload without extraction: %v %v", out.Records, failed)
	}
}

func TestOptions(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	err := Options{CompressionFormat: "ZIP", MaxDecompressedBytes: 0}.Validate()
	if err == nil || !strings.Contains(err.Error(), `compression_format: "ZIP"`) || !strings.Contains(err.Error(), "max_decompressed_bytes: 0") {
		t.Errorf("err = %v, want both problems", err)
	}
	if keys, other := transformtest.OptionKeys(err); !slices.Equal(keys, []string{"compression_format", "max_decompressed_bytes"}) || len(other) > 0 {
		t.Errorf("option keys %q, other errors %v", keys, other)
	}
	if _, err := New(Compiled{}, pipeline.Deps{}); err == nil || !strings.HasPrefix(err.Error(), "decompression: ") {
		t.Errorf("New: %v", err)
	}
}

func TestProcessCancelled(t *testing.T) {
	p := newProc(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := p.Process(ctx, batchOf(gz(t, nil))); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestMetricsReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	p1, err1 := New(compile(t, DefaultOptions()), pipeline.Deps{Registry: reg})
	p2, err2 := New(compile(t, DefaultOptions()), pipeline.Deps{Registry: reg})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if p1.metrics.in != p2.metrics.in || p1.metrics.control != p2.metrics.control {
		t.Error("the second processor did not reuse the registered collectors")
	}
	bad := prometheus.NewRegistry()
	bad.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_decompression_records_in_total", Help: "x"}))
	if _, err := NewMetrics(bad); err == nil {
		t.Error("NewMetrics accepted a conflicting collector")
	}
}

func TestReadAllGrowth(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10000)
	for _, c := range []int{0, 1, 99999, 100000} {
		got, err := readAll(bytes.NewReader(data), make([]byte, 0, c), len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("cap %d: %v", c, err)
		}
	}
	if _, err := readAll(bytes.NewReader(data), nil, len(data)-1); !errors.Is(err, errTooLarge) {
		t.Errorf("err = %v", err)
	}
}
