package jq

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	if reg == nil {
		return &Metrics{duration: h}, nil
	}
	if err := reg.Register(h); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("register jq metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.HistogramVec)
		if !ok {
			return nil, fmt.Errorf("register jq metrics: %w (the existing collector is a %T)", err, are.ExistingCollector)
		}
		h = existing
	}
	return &Metrics{duration: h}, nil
}
