package pgload

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
)

// Metric names of the warehouse destinations (the runner's
// sluice_delivery_* families are Firehose's DeliveryToRedshift.*).
const (
	MetricRejectedRows   = "sluice_warehouse_rejected_rows_total"
	MetricIsolationLoads = "sluice_warehouse_isolation_loads_total"
	MetricLedgerSkips    = "sluice_warehouse_ledger_skipped_batches_total"
	MetricLoadErrors     = "sluice_warehouse_load_errors_total"
)

// Metrics are the warehouse destinations' own metric families, shared by
// every stream of a process.
type Metrics struct {
	rejected  *prometheus.CounterVec
	isolation *prometheus.CounterVec
	skips     *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

// NewMetrics registers the families on reg (nil: unregistered), reusing
// those registered before.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	sd := []string{"stream", "destination"}
	m := &Metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRejectedRows,
			Help: "Rows that did not load and went to the error output, by SQLSTATE class (\"mapping\": refused before the database saw them)."},
			append(sd, "sqlstate_class")),
		isolation: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricIsolationLoads,
			Help: "Loads of parts of a batch made to isolate its bad rows (bisect rounds)."}, sd),
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricLedgerSkips,
			Help: "Batches delivered again that the load ledger showed already loaded, and were skipped."}, sd),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricLoadErrors,
			Help: "Failed load attempts by error class (transient, table, rows) and Firehose-style code."}, append(sd, "class", "code")),
	}
	if err := pipeline.RegisterAll(reg, &m.rejected, &m.isolation, &m.skips, &m.errors); err != nil {
		return nil, err
	}
	return m, nil
}

// Stream is the metrics of one stream's destination.
type Stream struct {
	m                   *Metrics
	stream, destination string
	isolation, skips    prometheus.Counter
}

// For returns the metrics of stream's destination (kind "postgres",
// "redshift").
func (m *Metrics) For(stream, destination string) *Stream {
	return &Stream{m: m, stream: stream, destination: destination,
		isolation: m.isolation.WithLabelValues(stream, destination),
		skips:     m.skips.WithLabelValues(stream, destination)}
}

// Rejected counts n rejected rows of a SQLSTATE class ("22", "23", or
// "mapping").
func (s *Stream) Rejected(class string, n int) {
	s.m.rejected.WithLabelValues(s.stream, s.destination, class).Add(float64(n))
}

// IsolationLoad counts one load of a part of a batch.
func (s *Stream) IsolationLoad() { s.isolation.Inc() }

// LedgerSkip counts a batch skipped because it was loaded before.
func (s *Stream) LedgerSkip() { s.skips.Inc() }

// LoadError counts a failed load attempt.
func (s *Stream) LoadError(class Class, code string) {
	s.m.errors.WithLabelValues(s.stream, s.destination, class.String(), code).Inc()
}
