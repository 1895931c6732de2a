package wasm

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
)

// Metrics are the processor's Prometheus metrics, shared by every stream's
// wasm processor in a process.
type Metrics struct {
	// duration is Firehose's ExecuteProcessing.Duration: the time of one
	// call (invocation), retries included as separate observations.
	duration *prometheus.HistogramVec
	// calls counts invocations by result (ExecuteProcessing.Success as a
	// ratio of result="success" to all).
	calls *prometheus.CounterVec
	// records counts records by result: ok (SucceedProcessing.Records),
	// dropped, failed.
	records *prometheus.CounterVec
	// bytes counts the payload bytes of ok records after the transform
	// (SucceedProcessing.Bytes).
	bytes *prometheus.CounterVec
	// instances counts instantiations, by module file name (restarts after
	// a failure included).
	instances *prometheus.CounterVec
}

// Labels and values of the metrics.
const (
	ProcessorName = "wasm"

	CallSuccess         = "success"
	CallTimeout         = "timeout"
	CallFunctionError   = "function_error"
	CallInvalidResponse = "invalid_response"

	RecordsOK      = "ok"
	RecordsDropped = "dropped"
	RecordsFailed  = "failed"
)

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered). It may be called more than once with the same registerer:
// later calls reuse the collectors registered first.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_processing_duration_seconds",
			Help:    "Duration of one transformation call (Firehose ExecuteProcessing.Duration).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs … 26s
		}, []string{"stream", "processor"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_processing_calls_total",
			Help: "Transformation calls by result: success, timeout, function_error, invalid_response (Firehose ExecuteProcessing.Success).",
		}, []string{"stream", "processor", "result"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_processing_records_total",
			Help: "Records out of transformation by result: ok, dropped, failed (Firehose SucceedProcessing.Records for ok).",
		}, []string{"stream", "processor", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_processing_bytes_total",
			Help: "Payload bytes of records transformed successfully (Firehose SucceedProcessing.Bytes).",
		}, []string{"stream", "processor"}),
		instances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_wasm_instantiations_total",
			Help: "WebAssembly instances created, including re-creations after a failed call.",
		}, []string{"module"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.calls, err = register(reg, m.calls); err != nil {
		return nil, err
	}
	if m.records, err = register(reg, m.records); err != nil {
		return nil, err
	}
	if m.bytes, err = register(reg, m.bytes); err != nil {
		return nil, err
	}
	if m.instances, err = register(reg, m.instances); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	c, err := pipeline.Register(reg, c)
	if err != nil {
		return c, fmt.Errorf("wasm metrics: %w", err)
	}
	return c, nil
}
