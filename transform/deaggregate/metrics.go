package deaggregate

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform"
)

// Metrics are the processor's Prometheus metrics, shared by every stream's
// record_deaggregation processor in a process.
type Metrics struct {
	in          *prometheus.CounterVec // stream
	out         *prometheus.CounterVec // stream
	passthrough *prometheus.CounterVec // stream, reason
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered). It may be called more than once with the same registerer:
// later calls reuse the collectors registered first.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	in, out, err := transform.RecordCounters(reg, "deaggregation", "record_deaggregation",
		"Records (sub-records and records passed through) the record_deaggregation processor produced.")
	if err != nil {
		return nil, err
	}
	passthrough, err := pipeline.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_deaggregation_kpl_passthrough_total",
		Help: "Records a KPL record_deaggregation processor passed through unchanged because they are not valid KPL aggregated records (reason: no_magic, bad_md5, invalid_protobuf).",
	}, []string{"stream", "reason"}))
	if err != nil {
		return nil, fmt.Errorf("record_deaggregation metrics: %w", err)
	}
	return &Metrics{in: in, out: out, passthrough: passthrough}, nil
}
