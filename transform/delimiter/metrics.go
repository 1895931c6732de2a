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
	if reg == nil {
		return m, nil
	}
	for _, c := range []**prometheus.CounterVec{&m.in, &m.out} {
		if err := register(reg, c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// register registers *c on reg, or replaces *c by the collector registered
// before it.
func register(reg prometheus.Registerer, c **prometheus.CounterVec) error {
	existing, err := pipeline.Register(reg, *c)
	if err != nil {
		return fmt.Errorf("append_delimiter metrics: %w", err)
	}
	*c = existing
	return nil
}
