package firehoseapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ingest API's Prometheus metrics, named after Firehose's
// CloudWatch metrics. Create one per process with NewMetrics and share it
// between handlers.
type Metrics struct {
	incomingBytes       *prometheus.CounterVec
	incomingRecords     *prometheus.CounterVec
	incomingPutRequests *prometheus.CounterVec
	throttledRecords    *prometheus.CounterVec
	apiRequests         *prometheus.CounterVec
	apiDuration         *prometheus.HistogramVec
	authFailures        prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (when reg is
// not nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		incomingBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_incoming_bytes_total",
			Help: "Bytes (raw, after base64 decoding) successfully ingested through PutRecord and PutRecordBatch (Firehose IncomingBytes).",
		}, []string{"stream"}),
		incomingRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_incoming_records_total",
			Help: "Records successfully ingested through PutRecord and PutRecordBatch (Firehose IncomingRecords).",
		}, []string{"stream"}),
		incomingPutRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_incoming_put_requests_total",
			Help: "Successful PutRecord and PutRecordBatch requests (Firehose IncomingPutRequests).",
		}, []string{"stream"}),
		throttledRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_throttled_records_total",
			Help: "Records rejected with ServiceUnavailableException because the stream's buffer was full (Firehose ThrottledRecords).",
		}, []string{"stream"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_requests_total",
			Help: "Firehose API requests by operation and HTTP status code.",
		}, []string{"operation", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_api_request_duration_seconds",
			Help:    "Firehose API request duration by operation, body read included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_api_auth_failures_total",
			Help: "Firehose API requests refused because their signature is missing, incomplete, invalid, expired or by an unknown key (the answer's error type is in sluice_api_requests_total's code).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.incomingBytes, m.incomingRecords, m.incomingPutRequests,
		m.throttledRecords, m.apiRequests, m.apiDuration, m.authFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("firehoseapi: registering metrics: %w", err)
		}
	}
	return m, nil
}

// streamMetrics are one stream's counters, resolved once.
type streamMetrics struct {
	bytes, records, requests, throttled prometheus.Counter
}

func (m *Metrics) forStream(name string) streamMetrics {
	return streamMetrics{
		bytes:     m.incomingBytes.WithLabelValues(name),
		records:   m.incomingRecords.WithLabelValues(name),
		requests:  m.incomingPutRequests.WithLabelValues(name),
		throttled: m.throttledRecords.WithLabelValues(name),
	}
}
