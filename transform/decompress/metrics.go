package decompress

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform"
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
	in, out, err := transform.RecordCounters(reg, "decompression", "decompression",
		"Records the decompression processor produced (decompressed records, or extracted log messages).")
	if err != nil {
		return nil, err
	}
	control, err := pipeline.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_decompression_control_messages_dropped_total",
		Help: "CloudWatch Logs CONTROL_MESSAGE payloads dropped by message extraction.",
	}, []string{"stream"}))
	if err != nil {
		return nil, fmt.Errorf("decompression metrics: %w", err)
	}
	return &Metrics{in: in, out: out, control: control}, nil
}
