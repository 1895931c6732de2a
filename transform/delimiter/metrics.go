package delimiter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/transform"
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
	in, out, err := transform.RecordCounters(reg, "append_delimiter", "append_delimiter",
		"Records the append_delimiter processor produced.")
	if err != nil {
		return nil, err
	}
	return &Metrics{in: in, out: out}, nil
}
