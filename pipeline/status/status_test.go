package status

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the daemon's families, registered on a real registry with
// the daemon's names and labels.
type metrics struct {
	reg                                 *prometheus.Registry
	inRecords, inBytes                  *prometheus.CounterVec
	outRecords, outBytes, retries       *prometheus.CounterVec
	deadLetters, stalled                *prometheus.CounterVec
	backlog, inFlight, freshness, ready *prometheus.GaugeVec
}

func newMetrics(t *testing.T) *metrics {
	t.Helper()
	counter := func(name string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: name}, labels)
	}
	gauge := func(name string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name}, labels)
	}
	m := &metrics{
		reg:         prometheus.NewRegistry(),
		inRecords:   counter(metricIncomingRecords, "stream"),
		inBytes:     counter(metricIncomingBytes, "stream"),
		outRecords:  counter(metricDeliveryRecords, "stream", "destination"),
		outBytes:    counter(metricDeliveryBytes, "stream", "destination"),
		retries:     counter(metricDeliveryRetries, "stream", "destination"),
		deadLetters: counter(metricDeadLetters, "stream", "code"),
		stalled:     counter(metricStalledRetries, "stream", "operation"),
		backlog:     gauge(metricBacklogBytes, "stream"),
		inFlight:    gauge(metricInFlight, "stream"),
		freshness:   gauge(metricDataFreshness, "stream", "destination"),
		ready:       gauge(metricStreamReady, "stream"),
	}
	for _, c := range []prometheus.Collector{m.inRecords, m.inBytes, m.outRecords, m.outBytes, m.retries,
		m.deadLetters, m.stalled, m.backlog, m.inFlight, m.freshness, m.ready} {
		m.reg.MustRegister(c)
	}
	return m
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newPage(t *testing.T, o Options) *Page {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

func getJSON(t *testing.T, p *Page) Snapshot {
	t.Helper()
	w := get(t, p, "/status.json")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status.json: %d %s\n%s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var s Snapshot
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatalf("%v\n%s", err, w.Body)
	}
	return s
}

func find(t *testing.T, s Snapshot, name string) StreamStatus {
	t.Helper()
	for _, st := range s.Streams {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("stream %q not in %+v", name, s.Streams)
	return StreamStatus{}
}

func eq(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: null, want %v", what, want)
	} else if *got != want {
		t.Errorf("%s: %v, want %v", what, *got, want)
	}
}

// TestRatesAndTotals: counters advanced between two samples 2 s apart give
// their increase over 2 s; totals and gauges are the registry's at the
// request, exactly.
func TestRatesAndTotals(t *testing.T) {
	m := newMetrics(t)
	p := newPage(t, Options{
		Gatherer: m.reg, Version: "v1.2.3", Started: time.Now().Add(-time.Hour),
		Streams: func() []Stream {
			return []Stream{
				{Name: "orders", Source: "DirectPut", Destination: "file", ErrorOutput: "the destination"},
				{Name: "clicks", Source: "kinesis", Destination: "http_endpoint", ErrorOutput: "file",
					Ready: "destination: connection refused", LastError: "POST: 503", LastErrorAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
			}
		},
	})
	m.inRecords.WithLabelValues("orders").Add(100)
	m.inBytes.WithLabelValues("orders").Add(1000)
	m.outRecords.WithLabelValues("orders", "file").Add(50)
	m.deadLetters.WithLabelValues("orders", "Processing.Failed").Add(2)
	t0 := time.Unix(1_700_000_000, 0)
	p.sample(t0)

	// One sample: totals, no rates.
	s := getJSON(t, p)
	o := find(t, s, "orders")
	if o.Incoming.RecordsTotal != 100 || o.Incoming.RecordsPerSecond != nil || s.SampledAt == nil || !s.SampledAt.Equal(t0) {
		t.Fatalf("after one sample: %+v, sampled at %v", o.Incoming, s.SampledAt)
	}

	m.inRecords.WithLabelValues("orders").Add(40)
	m.inBytes.WithLabelValues("orders").Add(400)
	m.outRecords.WithLabelValues("orders", "file").Add(20)
	m.outBytes.WithLabelValues("orders", "file").Add(200)
	m.retries.WithLabelValues("orders", "file").Add(6)
	m.deadLetters.WithLabelValues("orders", "Processing.Failed").Add(4)
	m.deadLetters.WithLabelValues("orders", "partitioning-failed").Add(1)
	m.stalled.WithLabelValues("orders", "commit").Add(3)
	m.backlog.WithLabelValues("orders").Set(4096)
	m.inFlight.WithLabelValues("orders").Set(2)
	m.freshness.WithLabelValues("orders", "file").Set(7.5)
	m.ready.WithLabelValues("orders").Set(1)
	p.sample(t0.Add(2 * time.Second))
	// After the second sample, more arrives: the totals show it, the
	// rates are still those of the samples.
	m.inRecords.WithLabelValues("orders").Add(1)

	s = getJSON(t, p)
	if s.Version != "v1.2.3" || s.UptimeSeconds < 3600 || s.IntervalSeconds != 5 || s.HistorySeconds != 600 || s.Reloads != nil {
		t.Errorf("process: %+v", s)
	}
	if len(s.Streams) != 2 || s.Streams[0].Name != "clicks" || s.Streams[1].Name != "orders" {
		t.Fatalf("streams not sorted by name: %+v", s.Streams)
	}
	o = find(t, s, "orders")
	if o.Incoming.RecordsTotal != 141 || o.Incoming.BytesTotal != 1400 || o.Delivered.RecordsTotal != 70 || o.Delivered.BytesTotal != 200 {
		t.Errorf("totals: in %+v out %+v", o.Incoming, o.Delivered)
	}
	eq(t, "incoming records/s", o.Incoming.RecordsPerSecond, 20)
	eq(t, "incoming bytes/s", o.Incoming.BytesPerSecond, 200)
	eq(t, "delivered records/s", o.Delivered.RecordsPerSecond, 10)
	eq(t, "delivered bytes/s", o.Delivered.BytesPerSecond, 100)
	eq(t, "retries/s", o.Retries.PerSecond, 3)
	eq(t, "stalled/s", o.StalledRetries.PerSecond, 1.5)
	eq(t, "dead letters/s", o.DeadLetters.PerSecond, 2.5)
	eq(t, "backlog", o.BacklogBytes, 4096)
	eq(t, "in flight", o.InFlightBatches, 2)
	eq(t, "age", o.BacklogAgeSeconds, 7.5)
	if o.Retries.Total != 6 || o.StalledRetries.Total != 3 || o.DeadLetters.Total != 7 {
		t.Errorf("retries %v stalled %v dead %v", o.Retries.Total, o.StalledRetries.Total, o.DeadLetters.Total)
	}
	if len(o.DeadLetters.ByCode) != 2 || o.DeadLetters.ByCode[0].Code != "Processing.Failed" || o.DeadLetters.ByCode[0].Total != 6 ||
		o.DeadLetters.ByCode[1].Code != "partitioning-failed" || o.DeadLetters.ByCode[1].Total != 1 {
		t.Errorf("dead letters by code: %+v", o.DeadLetters.ByCode)
	}
	eq(t, "Processing.Failed/s", o.DeadLetters.ByCode[0].PerSecond, 2)
	eq(t, "partitioning-failed/s", o.DeadLetters.ByCode[1].PerSecond, 0.5)
	if len(o.StalledRetries.ByOperation) != 1 || o.StalledRetries.ByOperation[0].Operation != "commit" || o.StalledRetries.ByOperation[0].Total != 3 {
		t.Errorf("stalled by operation: %+v", o.StalledRetries.ByOperation)
	}
	if !o.Ready || o.NotReady != "" || o.Source != "DirectPut" || o.Destination != "file" || o.ErrorOutput != "the destination" || o.LastError != nil {
		t.Errorf("orders: %+v", o)
	}
	h := o.History
	if len(h.Times) != 2 || h.Times[1]-h.Times[0] != 2 || h.IncomingRecordsPerSecond[0] != nil ||
		len(h.DeliveredRecordsPerSecond) != 2 || len(h.BacklogBytes) != 2 || h.BacklogBytes[0] != nil {
		t.Fatalf("history: %+v", h)
	}
	eq(t, "history incoming", h.IncomingRecordsPerSecond[1], 20)
	eq(t, "history delivered", h.DeliveredRecordsPerSecond[1], 10)
	eq(t, "history backlog", h.BacklogBytes[1], 4096)

	c := find(t, s, "clicks") // no series at all: counters 0, gauges unknown
	if c.Ready || c.NotReady != "destination: connection refused" || c.Incoming.RecordsTotal != 0 || c.BacklogBytes != nil ||
		c.LastError == nil || c.LastError.Message != "POST: 503" || c.LastError.At == nil || c.LastError.At.Year() != 2025 {
		t.Errorf("clicks: %+v", c)
	}
	eq(t, "clicks incoming/s", c.Incoming.RecordsPerSecond, 0)
}

// TestRawJSONTotals: the JSON's totals are the counters' values as
// /metrics writes them (integers, no exponent), so a test can compare
// them as text.
func TestRawJSONTotals(t *testing.T) {
	m := newMetrics(t)
	p := newPage(t, Options{Gatherer: m.reg})
	m.inRecords.WithLabelValues("big").Add(12345678)
	m.inBytes.WithLabelValues("big").Add(9876543210)
	body := get(t, p, "/status.json").Body.String()
	for _, want := range []string{`"records_total":12345678`, `"bytes_total":9876543210`, `"name":"big"`} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in %s", want, body)
		}
	}
}

// TestCounterReset: a series that went down (recreated by a reload) is
// counted from 0, never as a negative rate.
func TestCounterReset(t *testing.T) {
	m := newMetrics(t)
	p := newPage(t, Options{Gatherer: m.reg})
	m.inRecords.WithLabelValues("s").Add(500)
	t0 := time.Now()
	p.sample(t0)
	m.inRecords.DeleteLabelValues("s")
	m.inRecords.WithLabelValues("s").Add(30)
	p.sample(t0.Add(10 * time.Second))
	eq(t, "rate after a reset", find(t, getJSON(t, p), "s").Incoming.RecordsPerSecond, 3)
}

// TestHistoryWindow: the ring keeps History/Interval + 1 samples, the
// newest.
func TestHistoryWindow(t *testing.T) {
	m := newMetrics(t)
	p := newPage(t, Options{Gatherer: m.reg, Interval: time.Second, History: 10 * time.Second})
	t0 := time.Now()
	for i := range 30 {
		m.backlog.WithLabelValues("s").Set(float64(i))
		p.sample(t0.Add(time.Duration(i) * time.Second))
	}
	h := find(t, getJSON(t, p), "s").History
	if len(h.Times) != 11 || len(h.BacklogBytes) != 11 {
		t.Fatalf("%d points, want 11", len(h.Times))
	}
	eq(t, "oldest kept", h.BacklogBytes[0], 19)
	eq(t, "newest", h.BacklogBytes[10], 29)
	if h.IncomingRecordsPerSecond[0] != nil {
		t.Errorf("the oldest point's rate needs the sample before: %v", *h.IncomingRecordsPerSecond[0])
	}
}

// TestReloadsAndProcess: the lead's reload metrics and the process's own
// show in the header data; without them reloads is null.
func TestReloadsAndProcess(t *testing.T) {
	m := newMetrics(t)
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricReloads, Help: "x"}, []string{"result"})
	lastOK := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricLastReloadOK, Help: "x"})
	lastAt := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricLastReloadTime, Help: "x"})
	build := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricBuildInfo, Help: "x", ConstLabels: prometheus.Labels{"version": "from-build-info"}}, func() float64 { return 1 })
	m.reg.MustRegister(reloads, lastOK, lastAt, build, collectors.NewGoCollector())
	reloads.WithLabelValues("success").Add(3)
	reloads.WithLabelValues("failure").Add(1)
	lastOK.Set(0)
	lastAt.Set(1_700_000_000)
	s := getJSON(t, newPage(t, Options{Gatherer: m.reg}))
	r := s.Reloads
	if r == nil || r.SuccessTotal != 3 || r.FailureTotal != 1 || r.LastSuccessful == nil || *r.LastSuccessful ||
		r.LastSuccessAt == nil || r.LastSuccessAt.Unix() != 1_700_000_000 {
		t.Fatalf("reloads: %+v", r)
	}
	if s.Version != "from-build-info" || s.Process.Goroutines == nil || *s.Process.Goroutines < 1 {
		t.Errorf("version %q, goroutines %v", s.Version, s.Process.Goroutines)
	}
}

// TestMissingMetrics: an empty registry still gives a page and a document
// for the configured streams, with zero counters and unknown gauges.
func TestMissingMetrics(t *testing.T) {
	p := newPage(t, Options{Gatherer: prometheus.NewRegistry(), Streams: func() []Stream { return []Stream{{Name: "lonely"}} }})
	p.sample(time.Now())
	p.sample(time.Now().Add(time.Second))
	s := find(t, getJSON(t, p), "lonely")
	if !s.Ready || s.Incoming.RecordsTotal != 0 || s.BacklogBytes != nil || s.InFlightBatches != nil || s.BacklogAgeSeconds != nil ||
		s.DeadLetters.ByCode == nil || s.StalledRetries.ByOperation == nil {
		t.Errorf("%+v", s)
	}
	w := get(t, p, "/status")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `data-stream="lonely"`) {
		t.Fatalf("%d\n%s", w.Code, w.Body)
	}
}

// TestStreamsFromRegistry: without Streams, every stream the registry
// names is shown; sluice_stream_ready 0 makes one not ready.
func TestStreamsFromRegistry(t *testing.T) {
	m := newMetrics(t)
	m.inRecords.WithLabelValues("b").Inc()
	m.ready.WithLabelValues("a").Set(0)
	m.ready.WithLabelValues("b").Set(1)
	s := getJSON(t, newPage(t, Options{Gatherer: m.reg}))
	if len(s.Streams) != 2 || s.Streams[0].Name != "a" || s.Streams[1].Name != "b" {
		t.Fatalf("%+v", s.Streams)
	}
	if s.Streams[0].Ready || s.Streams[0].NotReady == "" || !s.Streams[1].Ready {
		t.Errorf("readiness: %+v", s.Streams)
	}
}

// TestHTMLEscapes: stream names and error messages are untrusted; the page
// escapes them everywhere and runs only its own nonce'd script.
func TestHTMLEscapes(t *testing.T) {
	m := newMetrics(t)
	const evilName = `<script>alert("n")</script>'&"`
	const evilErr = `</span><img src=x onerror=alert(1)><script>alert(2)</script>`
	m.inRecords.WithLabelValues(evilName).Add(3)
	m.deadLetters.WithLabelValues(evilName, `<b>code</b>`).Add(1)
	p := newPage(t, Options{Gatherer: m.reg, Streams: func() []Stream {
		return []Stream{{Name: evilName, Destination: `<i>dest</i>`, Ready: `"><svg onload=alert(3)>`, LastError: evilErr, LastErrorAt: time.Now()}}
	}})
	w := get(t, p, "/status")
	body := w.Body.String()
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
	}
	for _, bad := range []string{"<img", "<svg onload", "<b>code", "<i>dest", `<script>alert`, `alert("n")</script>'&"`} {
		if strings.Contains(body, bad) {
			t.Errorf("the page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{"&lt;img src=x onerror=alert(1)&gt;", "&lt;b&gt;code&lt;/b&gt;", "&lt;i&gt;dest&lt;/i&gt;", "&lt;script&gt;alert(&#34;n&#34;)&lt;/script&gt;&#39;&amp;&#34;"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks the escaped %q", want)
		}
	}
	if n := strings.Count(body, "<script"); n != 1 {
		t.Errorf("%d script elements, want the page's own only", n)
	}
	csp := w.Header().Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
	if nonce == nil || !strings.Contains(body, `<script nonce="`+nonce[1]+`">`) || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q does not allow exactly the page's script", csp)
	}
	if again := get(t, p, "/status").Header().Get("Content-Security-Policy"); again == csp {
		t.Error("the nonce is the same on two responses")
	}
	// The JSON carries the same strings, JSON-escaped (the script sets
	// them with textContent).
	s := getJSON(t, p)
	if s.Streams[0].Name != evilName || s.Streams[0].LastError.Message != evilErr {
		t.Errorf("JSON changed the strings: %+v", s.Streams[0])
	}
	if js := get(t, p, "/status.json").Body.String(); strings.Contains(js, "<script") {
		t.Errorf("the JSON holds a raw <script: %s", js)
	}
}

// TestPageShowsValues: the server-rendered page carries each value in
// data-value and formatted as text, and the sparklines' points.
func TestPageShowsValues(t *testing.T) {
	m := newMetrics(t)
	p := newPage(t, Options{Gatherer: m.reg, Version: "v9", Streams: func() []Stream { return []Stream{{Name: "s", Destination: "file"}} }})
	t0 := time.Now()
	m.backlog.WithLabelValues("s").Set(3 << 20)
	p.sample(t0)
	m.inRecords.WithLabelValues("s").Add(2500)
	m.deadLetters.WithLabelValues("s", "Too.Big").Add(2)
	p.sample(t0.Add(5 * time.Second))
	body := get(t, p, "/status").Body.String()
	for _, want := range []string{
		`<span data-field="incoming.records_total" data-format="count" data-value="2500">2,500</span>`,
		`<span data-field="incoming.records_per_second" data-format="rate" data-value="500">500.0</span>`,
		`<span data-field="backlog_bytes" data-format="bytes" data-value="3145728">3.0 MiB</span>`,
		`<span data-field="ready" data-format="ready" data-value="true" class="ok">ready</span>`,
		`<span data-field="version" data-format="text" data-value="v9">v9</span>`,
		`<span data-field="in_flight_batches" data-format="count" data-value="">–</span>`,
		`<td data-format="text" data-value="Too.Big">Too.Big</td><td data-format="count" data-value="2">2</td>`,
		`data-spark="history.incoming_records_per_second" data-points="2"><polyline points="160.0,1.0 156.0,1.0"/>`,
		`data-spark="history.backlog_bytes" data-points="2"><polyline points="0.0,1.0 160.0,1.0"/>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(body, `data-show="reloads" hidden`) == false {
		t.Error("the reloads line shows without reload metrics")
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct {
		v      any
		format string
		want   string
	}{
		{nil, "count", "–"}, {1234567.0, "count", "1,234,567"}, {999.0, "count", "999"}, {0.0, "count", "0"},
		{12.345, "rate", "12.3"}, {1023.0, "bytes", "1023 B"}, {1536.0, "bytes", "1.5 KiB"}, {5.0 * (1 << 30), "bytesrate", "5.0 GiB/s"},
		{4.25, "seconds", "4.2 s"}, {125.0, "seconds", "2m 5s"}, {7322.0, "seconds", "2h 2m"}, {90000.0, "seconds", "1d 1h"},
		{true, "ready", "ready"}, {false, "ready", "not ready"}, {false, "bool", "no"},
		{"2025-01-02T03:04:05.678Z", "time", "2025-01-02 03:04:05 UTC"}, {"", "text", "–"}, {"x", "text", "x"}, {nil, "opt", ""}, {"why", "opt", "why"},
	} {
		if got := formatValue(c.v, c.format); got != c.want {
			t.Errorf("formatValue(%v, %s) = %q, want %q", c.v, c.format, got, c.want)
		}
	}
	if got := sparkPoints([]any{nil, 0.0, 10.0, 5.0}); got != "53.3,31.0 106.7,1.0 160.0,16.0" {
		t.Errorf("sparkPoints: %q", got)
	}
}

func TestServeHTTPRoutes(t *testing.T) {
	p := newPage(t, Options{Gatherer: prometheus.NewRegistry()})
	if w := get(t, p, "/elsewhere"); w.Code != 404 {
		t.Errorf("/elsewhere: %d", w.Code)
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/status.json", nil))
	if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d", w.Code)
	}
	if w := get(t, p, "/status"); w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" || !strings.Contains(w.Body.String(), "no streams") {
		t.Errorf("/status with no streams: %d\n%s", w.Code, w.Body)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without a Gatherer")
	}
	if _, err := New(Options{Gatherer: prometheus.NewRegistry(), Interval: time.Minute, History: time.Second}); err == nil {
		t.Error("New with a history shorter than the interval")
	}
}

// TestRun: Run samples at once and every Interval, and returns when its
// context ends.
func TestRun(t *testing.T) {
	m := newMetrics(t)
	m.inRecords.WithLabelValues("s").Add(1)
	p := newPage(t, Options{Gatherer: m.reg, Interval: 10 * time.Millisecond, History: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(find(t, getJSON(t, p), "s").History.Times) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Run took no 3 samples in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
