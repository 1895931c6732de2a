package kinesis

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
)

// Metric names, after Firehose's for a Kinesis source
// (DataReadFromKinesisStream.Records and .Bytes, KinesisMillisBehindLatest,
// ThrottledGetRecords, ThrottledGetShardIterator), plus the fleet's.
const (
	MetricReadRecords      = "sluice_kinesis_read_records_total"
	MetricReadBytes        = "sluice_kinesis_read_bytes_total"
	MetricMillisBehind     = "sluice_kinesis_millis_behind_latest"
	MetricThrottled        = "sluice_kinesis_throttled_total"
	MetricExpiredIterators = "sluice_kinesis_expired_iterators_total"
	MetricErrors           = "sluice_kinesis_errors_total"
	MetricShards           = "sluice_kinesis_shards_reading"
	MetricBufferWaits      = "sluice_kinesis_buffer_full_waits_total"
	MetricLeases           = "sluice_kinesis_leases_held"
	MetricLeaseEvents      = "sluice_kinesis_lease_events_total"
	MetricUncheckpointed   = "sluice_kinesis_uncheckpointed_records"
	MetricRedelivered      = "sluice_kinesis_redelivered_records_total"
	MetricCheckpointTime   = "sluice_kinesis_last_checkpoint_timestamp_seconds"
)

// Metrics are the Kinesis source's metrics, shared by every stream of the
// process.
type Metrics struct {
	records, bytes, throttled, expired, errors, waits, leaseEvents, redelivered *prometheus.CounterVec
	behind, shards, leases, uncheckpointed, checkpointAge                       *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered); a second call on the same registry shares the first's.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	s := []string{"stream"}
	sh := []string{"stream", "shard"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		records: counter(MetricReadRecords, "Records read from the Kinesis stream and buffered (Firehose's DataReadFromKinesisStream.Records).", sh),
		bytes:   counter(MetricReadBytes, "Bytes of record data read from the Kinesis stream and buffered (DataReadFromKinesisStream.Bytes).", sh),
		throttled: counter(MetricThrottled, `Calls the Kinesis stream throttled, by call: "GetRecords" (Firehose's ThrottledGetRecords) or "GetShardIterator" (ThrottledGetShardIterator).`,
			[]string{"stream", "call"}),
		expired:     counter(MetricExpiredIterators, "Shard iterators that expired (a reader stalled over 5 minutes, e.g. on a full buffer) and were renewed after the last record taken.", s),
		errors:      counter(MetricErrors, "Failed Kinesis calls other than throttling (retried with backoff).", s),
		waits:       counter(MetricBufferWaits, "Times a shard reader waited because the stream's buffer was full (backpressure; nothing is dropped).", s),
		leaseEvents: counter(MetricLeaseEvents, `Lease changes of this instance, by event: "taken", "stolen" (from a live owner, to balance), "lost", "released".`, []string{"stream", "event"}),
		redelivered: counter(MetricRedelivered,
			"Records read again after taking over a lease from a failed instance that may already have buffered them (the previous owner's un-checkpointed window): the only duplicates a fleet can deliver.", s),
		behind: gauge(MetricMillisBehind, "How far the shard's reader is behind the tip of the shard, in milliseconds (Firehose's KinesisMillisBehindLatest).", sh),
		shards: gauge(MetricShards, "Shards this instance is reading.", s),
		leases: gauge(MetricLeases, "Shard leases this instance holds (fleet).", s),
		uncheckpointed: gauge(MetricUncheckpointed,
			"Records buffered by this instance and not yet checkpointed in the fleet's lease: what another instance would read again if this one died now.", sh),
		checkpointAge: gauge(MetricCheckpointTime, "When the shard's lease checkpoint last moved, in Unix seconds (fleet): time() minus it is the checkpoint lag.", sh),
	}
	if err := pipeline.RegisterAll(reg, &m.records, &m.bytes, &m.throttled, &m.expired, &m.errors, &m.waits, &m.leaseEvents, &m.redelivered); err != nil {
		return nil, err
	}
	if err := pipeline.RegisterAll(reg, &m.behind, &m.shards, &m.leases, &m.uncheckpointed, &m.checkpointAge); err != nil {
		return nil, err
	}
	return m, nil
}

// streamMetrics are one stream's, resolved once; per-shard ones are
// resolved by each shard's reader and deleted when it ends.
type streamMetrics struct {
	m                                    *Metrics
	stream                               string
	throttledRecords, throttledIterators prometheus.Counter
	expired, errors, waits, redelivered  prometheus.Counter
	shards, leases                       prometheus.Gauge
}

func (m *Metrics) forStream(stream string) *streamMetrics {
	return &streamMetrics{
		m: m, stream: stream,
		throttledRecords:   m.throttled.WithLabelValues(stream, "GetRecords"),
		throttledIterators: m.throttled.WithLabelValues(stream, "GetShardIterator"),
		expired:            m.expired.WithLabelValues(stream),
		errors:             m.errors.WithLabelValues(stream),
		waits:              m.waits.WithLabelValues(stream),
		redelivered:        m.redelivered.WithLabelValues(stream),
		shards:             m.shards.WithLabelValues(stream),
		leases:             m.leases.WithLabelValues(stream),
	}
}

func (m *streamMetrics) leaseEvent(event string) {
	m.m.leaseEvents.WithLabelValues(m.stream, event).Inc()
}

type shardMetrics struct {
	records, bytes                      prometheus.Counter
	behind, uncheckpointed, checkpointT prometheus.Gauge
}

func (m *streamMetrics) forShard(shard string) shardMetrics {
	return shardMetrics{
		records:        m.m.records.WithLabelValues(m.stream, shard),
		bytes:          m.m.bytes.WithLabelValues(m.stream, shard),
		behind:         m.m.behind.WithLabelValues(m.stream, shard),
		uncheckpointed: m.m.uncheckpointed.WithLabelValues(m.stream, shard),
		checkpointT:    m.m.checkpointAge.WithLabelValues(m.stream, shard),
	}
}

// dropShard removes a shard's gauges once this instance stops reading it
// (its counters stay: they are totals).
func (m *streamMetrics) dropShard(shard string) {
	m.m.behind.DeleteLabelValues(m.stream, shard)
	m.m.uncheckpointed.DeleteLabelValues(m.stream, shard)
	m.m.checkpointAge.DeleteLabelValues(m.stream, shard)
}
