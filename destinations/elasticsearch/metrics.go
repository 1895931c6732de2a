package elasticsearch

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
)

// Metric names. The runner's sluice_delivery_* families are Firehose's
// DeliveryToAmazonOpenSearchService.Records, .Bytes, .Success and
// DataFreshness; these count what happened to each document and request.
const (
	MetricDocuments     = "sluice_bulk_documents_total"
	MetricItemRetries   = "sluice_bulk_item_retries_total"
	MetricItemFailures  = "sluice_bulk_item_failures_total"
	MetricRequests      = "sluice_bulk_requests_total"
	MetricRequestSecond = "sluice_bulk_request_duration_seconds"
)

type metrics struct {
	documents, retries, failures, requests *prometheus.CounterVec
	duration                               *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	l := []string{"stream", "destination"}
	m := &metrics{
		documents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDocuments,
			Help: `Documents the cluster accepted, by result: "created", or "existed" (a 409 on a document id of ours: created by an earlier attempt).`},
			append(l, "result")),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricItemRetries,
			Help: "Documents the cluster refused for now and that are sent again, by the item's HTTP status."}, append(l, "status")),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricItemFailures,
			Help: "Documents refused for good and sent to the error output, by reason (the cluster's error type, or invalid_document)."},
			append(l, "reason")),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests,
			Help: `Bulk requests, by the HTTP status of the answer ("error": none).`}, append(l, "status")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricRequestSecond,
			Help: "Duration of one bulk request.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, l),
	}
	if err := pipeline.RegisterAll(reg, &m.documents, &m.retries, &m.failures, &m.requests); err != nil {
		return nil, err
	}
	d, err := pipeline.Register(reg, m.duration)
	if err != nil {
		return nil, err
	}
	m.duration = d
	return m, nil
}

type streamMetrics struct {
	m              *metrics
	stream         string
	created, exist prometheus.Counter
	duration       prometheus.Observer
}

func (m *metrics) forStream(stream string) *streamMetrics {
	return &streamMetrics{m: m, stream: stream,
		created:  m.documents.WithLabelValues(stream, Kind, "created"),
		exist:    m.documents.WithLabelValues(stream, Kind, "existed"),
		duration: m.duration.WithLabelValues(stream, Kind)}
}

func (s *streamMetrics) indexed(result string) {
	if result == "created" {
		s.created.Inc()
	} else {
		s.exist.Inc()
	}
}

func (s *streamMetrics) retried(status string) {
	s.m.retries.WithLabelValues(s.stream, Kind, status).Inc()
}

func (s *streamMetrics) failed(reason string) {
	s.m.failures.WithLabelValues(s.stream, Kind, reason).Inc()
}

func (s *streamMetrics) request(status string, d time.Duration) {
	s.m.requests.WithLabelValues(s.stream, Kind, status).Inc()
	s.duration.Observe(d.Seconds())
}
