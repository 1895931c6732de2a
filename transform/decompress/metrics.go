package decompress

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
)

// Metrics are the processor's Prometheus metrics, shared by every stream's
// decompression processor in a process.
type Metrics struct {
	in      *prometheus.CounterVec // stream
	out     *prometheus.CounterVec // stream
	control *prometheus.CounterVec // stream
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered). It may be called more than once with the same registerer:
// later calls reuse the collectors registered first.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_decompression_records_in_total",
			Help: "Records given to the decompression processor.",
		}, []string{"stream"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_decompression_records_out_total",
			Help: "Records the decompression processor produced (decompressed records, or extracted log messages).",
		}, []string{"stream"}),
		control: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_decompression_control_messages_dropped_total",
			Help: "CloudWatch Logs CONTROL_MESSAGE payloads dropped by message extraction.",
		}, []string{"stream"}),
	}
	if err := pipeline.RegisterAll(reg, &m.in, &m.out, &m.control); err != nil {
		return nil, fmt.Errorf("decompression metrics: %w", err)
	}
	return m, nil
}
