package status

import (
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The metrics the page reads (docs/architecture.md, "Metrics"). Any of them
// may be missing: the page shows what there is.
const (
	metricIncomingRecords  = "sluice_incoming_records_total"
	metricIncomingBytes    = "sluice_incoming_bytes_total"
	metricKinesisRecords   = "sluice_kinesis_read_records_total"
	metricKinesisBytes     = "sluice_kinesis_read_bytes_total"
	metricDeliveryRecords  = "sluice_delivery_records_total"
	metricDeliveryBytes    = "sluice_delivery_bytes_total"
	metricDeliveryRetries  = "sluice_delivery_retries_total"
	metricDataFreshness    = "sluice_delivery_data_freshness_seconds"
	metricBacklogBytes     = "sluice_buffer_backlog_bytes"
	metricInFlight         = "sluice_delivery_in_flight_batches"
	metricDeadLetters      = "sluice_dead_letter_records_total"
	metricStalledRetries   = "sluice_runner_stalled_retries_total"
	metricStreamReady      = "sluice_stream_ready"
	metricReloads          = "sluice_config_reloads_total"
	metricLastReloadOK     = "sluice_config_last_reload_successful"
	metricLastReloadTime   = "sluice_config_last_reload_success_timestamp_seconds"
	metricBuildInfo        = "sluice_build_info"
	metricResidentMemory   = "process_resident_memory_bytes"
	metricGoroutines       = "go_goroutines"
	metricProcessStartTime = "process_start_time_seconds"
)

// series is one stream's values in one gather. Counters absent from the
// registry are 0 (a counter vector has no series before its first
// increment); gauges absent are unknown (nil).
type series struct {
	inRecords, inBytes   float64
	outRecords, outBytes float64
	retries              float64
	deadLetters          map[string]float64 // by code
	stalled              map[string]float64 // by operation
	backlog, age         *float64
	inFlight             *float64
	ready                *float64
}

func (s *series) deadTotal() float64    { return sum(s.deadLetters) }
func (s *series) stalledTotal() float64 { return sum(s.stalled) }

func sum(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// process is the process-wide values of one gather.
type process struct {
	version                string
	reloadsSeen            bool
	reloadsOK, reloadsFail float64
	lastReloadOK           *float64
	lastReloadAt           *float64
	rss, goroutines        *float64
	started                *float64
}

// sample is one gather of the registry.
type sample struct {
	at      time.Time
	streams map[string]*series
	proc    process
}

// parse reads the families the page knows into a sample.
func parse(at time.Time, mfs []*dto.MetricFamily) *sample {
	s := &sample{at: at, streams: map[string]*series{}}
	get := func(m *dto.Metric) *series {
		name := label(m, "stream")
		ser, ok := s.streams[name]
		if !ok {
			ser = &series{deadLetters: map[string]float64{}, stalled: map[string]float64{}}
			s.streams[name] = ser
		}
		return ser
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			v, ok := value(m)
			if !ok {
				continue
			}
			switch name {
			case metricIncomingRecords, metricKinesisRecords:
				get(m).inRecords += v
			case metricIncomingBytes, metricKinesisBytes:
				get(m).inBytes += v
			case metricDeliveryRecords:
				get(m).outRecords += v
			case metricDeliveryBytes:
				get(m).outBytes += v
			case metricDeliveryRetries:
				get(m).retries += v
			case metricDeadLetters:
				get(m).deadLetters[label(m, "code")] += v
			case metricStalledRetries:
				get(m).stalled[label(m, "operation")] += v
			case metricDataFreshness:
				ser := get(m)
				ser.age = maxOf(ser.age, v) // the oldest over the stream's destinations
			case metricBacklogBytes:
				ser := get(m)
				ser.backlog = addTo(ser.backlog, v)
			case metricInFlight:
				ser := get(m)
				ser.inFlight = addTo(ser.inFlight, v)
			case metricStreamReady:
				ser := get(m)
				ser.ready = minOf(ser.ready, v)
			case metricReloads:
				s.proc.reloadsSeen = true
				switch label(m, "result") {
				case "success":
					s.proc.reloadsOK += v
				case "failure":
					s.proc.reloadsFail += v
				}
			case metricLastReloadOK:
				s.proc.reloadsSeen = true
				s.proc.lastReloadOK = &v
			case metricLastReloadTime:
				s.proc.reloadsSeen = true
				s.proc.lastReloadAt = &v
			case metricBuildInfo:
				s.proc.version = label(m, "version")
			case metricResidentMemory:
				s.proc.rss = &v
			case metricGoroutines:
				s.proc.goroutines = &v
			case metricProcessStartTime:
				s.proc.started = &v
			}
		}
	}
	return s
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// value is a counter's, gauge's or untyped metric's value.
func value(m *dto.Metric) (float64, bool) {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	}
	return 0, false
}

func addTo(p *float64, v float64) *float64 {
	if p != nil {
		v += *p
	}
	return &v
}

func maxOf(p *float64, v float64) *float64 {
	if p != nil && *p > v {
		v = *p
	}
	return &v
}

func minOf(p *float64, v float64) *float64 {
	if p != nil && *p < v {
		v = *p
	}
	return &v
}

// rate is the per-second increase of a counter from v0 at t0 to v1 at t1;
// a counter that went down was reset (its series recreated, e.g. by a
// reload) and counted from 0.
func rate(v0, v1 float64, dt time.Duration) *float64 {
	if dt <= 0 {
		return nil
	}
	d := v1 - v0
	if d < 0 {
		d = v1
	}
	r := d / dt.Seconds()
	return &r
}
