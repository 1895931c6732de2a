package jq

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
)

// Metrics are the processor's Prometheus metrics, shared by every stream's
// metadata_extraction processor in a process.
type Metrics struct {
	// duration is Firehose's JQProcessing.Duration: the time spent
	// parsing records and running the query, per processed batch.
	duration *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered). It may be called more than once with the same registerer:
// later calls reuse the collector registered first.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_jq_processing_duration_seconds",
		Help:    "Time spent extracting partition keys with the metadata_extraction jq query, per batch (Firehose JQProcessing.Duration).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs … 26s
	}, []string{"stream"})
	h, err := pipeline.Register(reg, h)
	if err != nil {
		return nil, fmt.Errorf("jq metrics: %w", err)
	}
	return &Metrics{duration: h}, nil
}
