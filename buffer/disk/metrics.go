package disk

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/pipeline"
)

// Metrics are the disk buffer's Prometheus metrics, labelled by stream.
// Create them with NewMetrics and pass them to every Open.
type Metrics struct {
	corruptTruncations *prometheus.CounterVec
	corruptSkips       *prometheus.CounterVec
	corruptBytes       *prometheus.CounterVec
	cursorRecoveries   *prometheus.CounterVec
	posRecoveries      *prometheus.CounterVec
	fsyncs             *prometheus.CounterVec
	fsyncSeconds       *prometheus.HistogramVec
	groupRecords       *prometheus.HistogramVec
	groupBytes         *prometheus.HistogramVec
	appendedRecords    *prometheus.CounterVec
	appendedBytes      *prometheus.CounterVec
	full               *prometheus.CounterVec
	diskFull           *prometheus.CounterVec
	writeErrors        *prometheus.CounterVec
	reopens            *prometheus.CounterVec
	segments           *prometheus.GaugeVec
	healthy            *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). When reg already has them (another NewMetrics of the same
// process), the registered ones are used: every stream shares one family.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := newMetrics()
	if err := pipeline.RegisterAll(reg, &m.corruptTruncations, &m.corruptSkips, &m.corruptBytes,
		&m.cursorRecoveries, &m.posRecoveries, &m.fsyncs, &m.appendedRecords, &m.appendedBytes, &m.full, &m.diskFull,
		&m.writeErrors, &m.reopens); err != nil {
		return nil, err
	}
	if err := pipeline.RegisterAll(reg, &m.fsyncSeconds, &m.groupRecords, &m.groupBytes); err != nil {
		return nil, err
	}
	if err := pipeline.RegisterAll(reg, &m.segments, &m.healthy); err != nil {
		return nil, err
	}
	return m, nil
}

func newMetrics() *Metrics {
	lbl := []string{"stream"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append(lbl, labels...))
	}
	histogram := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, lbl)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, lbl)
	}
	return &Metrics{
		corruptTruncations: counter("sluice_buffer_corrupt_truncations_total",
			"Torn or corrupt segment tails truncated at recovery."),
		corruptSkips: counter("sluice_buffer_corrupt_skips_total",
			"Corrupt regions inside the log skipped by reads (to the next segment boundary)."),
		corruptBytes: counter("sluice_buffer_corrupt_bytes_total",
			"Bytes of log lost to truncated tails and skipped corrupt regions."),
		cursorRecoveries: counter("sluice_buffer_cursor_recoveries_total",
			"Opens that found the cursor file missing or corrupt and redelivered from the oldest segment with a new log id.", "reason"),
		posRecoveries: counter("sluice_buffer_position_recoveries_total",
			"Opens of a buffer tracking source positions (a Kinesis source's) that found its positions file missing or corrupt and rebuilt it from the records still buffered.", "reason"),
		fsyncs: counter("sluice_buffer_fsyncs_total", "fdatasync calls on segment files."),
		fsyncSeconds: histogram("sluice_buffer_fsync_duration_seconds",
			"Duration of segment fdatasync calls.", prometheus.ExponentialBuckets(0.0001, 2, 16)),
		groupRecords: histogram("sluice_buffer_group_records",
			"Records written by one group commit.", prometheus.ExponentialBuckets(1, 4, 10)),
		groupBytes: histogram("sluice_buffer_group_bytes",
			"Bytes written by one group commit.", prometheus.ExponentialBuckets(256, 4, 10)),
		appendedRecords: counter("sluice_buffer_appended_records_total", "Records acknowledged by Append."),
		appendedBytes:   counter("sluice_buffer_appended_bytes_total", "Frame bytes acknowledged by Append."),
		full: counter("sluice_buffer_full_total",
			"Appends refused because the stream's quota was exhausted, or the disk's free space reserve reached."),
		diskFull: counter("sluice_buffer_disk_full_total",
			"Appends refused because the filesystem's free space would fall below the buffer's min_free_bytes."),
		writeErrors: counter("sluice_buffer_write_errors_total", "Failed segment writes or syncs."),
		reopens: counter("sluice_buffer_reopens_total",
			"Recoveries of the writer after a failed fsync: a new segment started, appends accepted again."),
		segments: gauge("sluice_buffer_segments", "Segment files held."),
		healthy: gauge("sluice_buffer_healthy",
			"1 while the buffer accepts appends; 0 after a failed fsync until it recovers, and once closed."),
	}
}

// streamMetrics are the metrics of one stream, resolved once.
type streamMetrics struct {
	corruptTruncations prometheus.Counter
	corruptSkips       prometheus.Counter
	corruptBytes       prometheus.Counter
	cursorMissing      prometheus.Counter
	cursorCorrupt      prometheus.Counter
	posMissing         prometheus.Counter
	posCorrupt         prometheus.Counter
	fsyncs             prometheus.Counter
	fsyncSeconds       prometheus.Observer
	groupRecords       prometheus.Observer
	groupBytes         prometheus.Observer
	appendedRecords    prometheus.Counter
	appendedBytes      prometheus.Counter
	full               prometheus.Counter
	diskFull           prometheus.Counter
	writeErrors        prometheus.Counter
	reopens            prometheus.Counter
	segments           prometheus.Gauge
	healthy            prometheus.Gauge
}

func (m *Metrics) forStream(stream string) *streamMetrics {
	return &streamMetrics{
		corruptTruncations: m.corruptTruncations.WithLabelValues(stream),
		corruptSkips:       m.corruptSkips.WithLabelValues(stream),
		corruptBytes:       m.corruptBytes.WithLabelValues(stream),
		cursorMissing:      m.cursorRecoveries.WithLabelValues(stream, cursorMissing),
		cursorCorrupt:      m.cursorRecoveries.WithLabelValues(stream, cursorCorrupt),
		posMissing:         m.posRecoveries.WithLabelValues(stream, positionsMissing),
		posCorrupt:         m.posRecoveries.WithLabelValues(stream, positionsCorrupt),
		fsyncs:             m.fsyncs.WithLabelValues(stream),
		fsyncSeconds:       m.fsyncSeconds.WithLabelValues(stream),
		groupRecords:       m.groupRecords.WithLabelValues(stream),
		groupBytes:         m.groupBytes.WithLabelValues(stream),
		appendedRecords:    m.appendedRecords.WithLabelValues(stream),
		appendedBytes:      m.appendedBytes.WithLabelValues(stream),
		full:               m.full.WithLabelValues(stream),
		diskFull:           m.diskFull.WithLabelValues(stream),
		writeErrors:        m.writeErrors.WithLabelValues(stream),
		reopens:            m.reopens.WithLabelValues(stream),
		segments:           m.segments.WithLabelValues(stream),
		healthy:            m.healthy.WithLabelValues(stream),
	}
}

func (m *streamMetrics) cursorRecovered(reason string) {
	if reason == cursorMissing {
		m.cursorMissing.Inc()
	} else {
		m.cursorCorrupt.Inc()
	}
}

func (m *streamMetrics) positionsRecovered(reason string) {
	if reason == positionsMissing {
		m.posMissing.Inc()
	} else {
		m.posCorrupt.Inc()
	}
}
