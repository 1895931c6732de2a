package delimiter

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
)

// Metrics are the processor's Prometheus metrics, shared by every stream's
// append_delimiter processor in a process.
type Metrics struct {
	in  *prometheus.CounterVec // stream
	out *prometheus.CounterVec // stream
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered). It may be called more than once with the same registerer:
// later calls reuse the collectors registered first.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_append_delimiter_records_in_total",
			Help: "Records given to the append_delimiter processor.",
		}, []string{"stream"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_append_delimiter_records_out_total",
			Help: "Records the append_delimiter processor produced.",
		}, []string{"stream"}),
	}
	if err := pipeline.RegisterAll(reg, &m.in, &m.out); err != nil {
		return nil, fmt.Errorf("append_delimiter metrics: %w", err)
	}
	return m, nil
}
