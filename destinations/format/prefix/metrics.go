package prefix

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/pipeline"
)

// Metrics are the dynamic-partitioning metrics of object destinations,
// after Firehose's PartitionCount and PartitionCountExceeded:
//
//   - sluice_partitions_active{stream}: partitions of the last batch split;
//   - sluice_partition_limit_exceeded_total{stream}: batches that had more
//     distinct partitions than the active-partition limit (records of the
//     extra partitions are dead-lettered and counted there).
//
// A nil *Metrics records nothing.
type Metrics struct {
	active   *prometheus.GaugeVec
	exceeded *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg. Calling it again with the same
// registry (one destination per stream) reuses the registered collectors.
// A nil reg gives working but unregistered metrics. It panics, like
// prometheus.MustRegister, if reg holds a different collector under the same
// names (a programming error).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_partitions_active",
			Help: "Distinct partitions (objects) in the stream's last delivered batch (Firehose PartitionCount).",
		}, []string{"stream"}),
		exceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_partition_limit_exceeded_total",
			Help: "Batches with more distinct partitions than the active-partition limit (Firehose PartitionCountExceeded).",
		}, []string{"stream"}),
	}
	if reg == nil {
		return m
	}
	m.active = register(reg, m.active)
	m.exceeded = register(reg, m.exceeded)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	c, err := pipeline.Register(reg, c)
	if err != nil {
		panic(fmt.Sprintf("prefix: %v", err)) // a programming error: two metric sets under one name
	}
	return c
}

// Observe records the outcome of one Split of a stream's batch.
func (m *Metrics) Observe(stream string, parts []Partition, failed []pipeline.RecordError) {
	if m == nil {
		return
	}
	m.active.WithLabelValues(stream).Set(float64(len(parts)))
	for _, f := range failed {
		if errors.Is(f.Err, ErrActivePartitionsExceeded) {
			m.exceeded.WithLabelValues(stream).Inc()
			return
		}
	}
}
