package runner

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer"
)

// Metric names, after Firehose's CloudWatch metrics (DeliveryToS3.Records,
// .Bytes, .Success as two counters, .DataFreshness).
const (
	MetricDeliveryRecords   = "sluice_delivery_records_total"
	MetricDeliveryBytes     = "sluice_delivery_bytes_total"
	MetricDeliverySuccess   = "sluice_delivery_success_total"
	MetricDeliveryAttempts  = "sluice_delivery_attempts_total"
	MetricDeliveryRetries   = "sluice_delivery_retries_total"
	MetricDeliveryDuration  = "sluice_delivery_duration_seconds"
	MetricDataFreshness     = "sluice_delivery_data_freshness_seconds"
	MetricDeadLetterRecords = "sluice_dead_letter_records_total"
	MetricBacklogBytes      = "sluice_buffer_backlog_bytes"
	MetricInflightBatches   = "sluice_delivery_in_flight_batches"
	MetricStalledRetries    = "sluice_runner_stalled_retries_total"
	MetricBackupRefused     = "sluice_backup_refused_records_total"
)

// Metrics are the runners' Prometheus metrics. Create them once per process
// with NewMetrics and share them between runners; each runner's series
// carry its stream (and destination) labels.
type Metrics struct {
	records     *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	success     *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	retries     *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	deadLetters *prometheus.CounterVec
	inflight    *prometheus.GaugeVec
	stalled     *prometheus.CounterVec
	refused     *prometheus.CounterVec
	gauges      *gaugeCollector
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, useful in tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	sd := []string{"stream", "destination"}
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeliveryRecords, Help: "Records delivered to the destination (DeliveryTo<Dest>.Records).",
		}, sd),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeliveryBytes, Help: "Payload bytes delivered to the destination (DeliveryTo<Dest>.Bytes).",
		}, sd),
		success: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeliverySuccess, Help: "Delivery attempts that fully succeeded (DeliveryTo<Dest>.Success numerator).",
		}, sd),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeliveryAttempts, Help: "Delivery attempts, retries included (DeliveryTo<Dest>.Success denominator).",
		}, sd),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeliveryRetries, Help: "Delivery or processing attempts scheduled again after a retryable failure.",
		}, sd),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricDeliveryDuration, Help: "Duration of one delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms .. ~260s
		}, sd),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeadLetterRecords, Help: "Records written to the stream's error output, by error code.",
		}, []string{"stream", "code"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricInflightBatches, Help: "Batches of the stream being delivered now (at most its max_in_flight).",
		}, []string{"stream"}),
		stalled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricStalledRetries,
			Help: "Retries of operations the runner never gives up on (mark, commit, dead letters, backup), by operation: a growing count means the stream is stalled.",
		}, []string{"stream", "operation"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricBackupRefused,
			Help: "Delivered records the backup (backup mode AllData) refused for good, e.g. that its format cannot encode.",
		}, []string{"stream"}),
		gauges: &gaugeCollector{
			freshness: prometheus.NewDesc(MetricDataFreshness,
				"Age in seconds of the oldest record not yet delivered (DeliveryTo<Dest>.DataFreshness); 0 when everything is delivered.",
				sd, nil),
			backlog: prometheus.NewDesc(MetricBacklogBytes,
				"Bytes held in the stream's buffer by undelivered records (frames included).",
				[]string{"stream"}, nil),
			streams: map[string]gaugeSource{},
		},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.records, m.bytes, m.success, m.attempts, m.retries, m.duration, m.deadLetters, m.inflight, m.stalled, m.refused, m.gauges} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register runner metrics: %w", err)
			}
		}
	}
	return m, nil
}

// streamMetrics are one runner's curried series.
type streamMetrics struct {
	m           *Metrics
	stream      string
	records     prometheus.Counter
	bytes       prometheus.Counter
	success     prometheus.Counter
	attempts    prometheus.Counter
	retries     prometheus.Counter
	duration    prometheus.Observer
	deadLetters *prometheus.CounterVec
	inflight    prometheus.Gauge
	stalledVec  *prometheus.CounterVec
	refused     prometheus.Counter
}

func (m *Metrics) forStream(stream, dest string) *streamMetrics {
	return &streamMetrics{
		m:           m,
		stream:      stream,
		records:     m.records.WithLabelValues(stream, dest),
		bytes:       m.bytes.WithLabelValues(stream, dest),
		success:     m.success.WithLabelValues(stream, dest),
		attempts:    m.attempts.WithLabelValues(stream, dest),
		retries:     m.retries.WithLabelValues(stream, dest),
		duration:    m.duration.WithLabelValues(stream, dest),
		deadLetters: m.deadLetters,
		inflight:    m.inflight.WithLabelValues(stream),
		stalledVec:  m.stalled,
		refused:     m.refused.WithLabelValues(stream),
	}
}

func (s *streamMetrics) backupRefused(n int) { s.refused.Add(float64(n)) }

func (s *streamMetrics) stalled(op string) {
	s.stalledVec.WithLabelValues(s.stream, op).Inc()
}

func (s *streamMetrics) deadLettered(code string, n int) {
	s.deadLetters.WithLabelValues(s.stream, code).Add(float64(n))
}

// gaugeSource is what the gauges are computed from at scrape time.
type gaugeSource struct {
	dest string
	buf  buffer.Buffer
}

// gaugeCollector computes freshness and backlog from each running
// stream's buffer state when scraped, so they are exact at any moment
// without a ticker.
type gaugeCollector struct {
	freshness, backlog *prometheus.Desc

	mu      sync.Mutex
	streams map[string]gaugeSource
}

var errStreamRunning = errors.New("a runner is already running for this stream")

func (g *gaugeCollector) add(stream string, src gaugeSource) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.streams[stream]; ok {
		return fmt.Errorf("stream %q: %w", stream, errStreamRunning)
	}
	g.streams[stream] = src
	return nil
}

func (g *gaugeCollector) remove(stream string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.streams, stream)
}

func (g *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.freshness
	ch <- g.backlog
}

func (g *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for stream, src := range g.streams {
		st := src.buf.State()
		ch <- prometheus.MustNewConstMetric(g.freshness, prometheus.GaugeValue, freshness(st, now), stream, src.dest)
		ch <- prometheus.MustNewConstMetric(g.backlog, prometheus.GaugeValue, float64(st.Bytes), stream)
	}
}

func freshness(st buffer.State, now time.Time) float64 {
	if st.Oldest.IsZero() || st.Head <= st.Committed {
		return 0
	}
	return max(0, now.Sub(st.Oldest).Seconds())
}
