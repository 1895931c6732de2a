package disk

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the disk buffer's Prometheus metrics, labelled by stream.
// Create one per process with NewMetrics and pass it to every Open.
type Metrics struct {
	corruptTruncations *prometheus.CounterVec
	corruptSkips       *prometheus.CounterVec
	corruptBytes       *prometheus.CounterVec
	fsyncs             *prometheus.CounterVec
	fsyncSeconds       *prometheus.HistogramVec
	groupRecords       *prometheus.HistogramVec
	groupBytes         *prometheus.HistogramVec
	appendedRecords    *prometheus.CounterVec
	appendedBytes      *prometheus.CounterVec
	full               *prometheus.CounterVec
	diskFull           *prometheus.CounterVec
	writeErrors        *prometheus.CounterVec
	segments           *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (when reg is
// not nil). It panics if they are already registered there: create one
// Metrics per process and share it between streams.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lbl := []string{"stream"}
	m := &Metrics{
		corruptTruncations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_corrupt_truncations_total",
			Help: "Torn or corrupt segment tails truncated at recovery.",
		}, lbl),
		corruptSkips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_corrupt_skips_total",
			Help: "Corrupt regions inside the log skipped by reads (to the next segment boundary).",
		}, lbl),
		corruptBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_corrupt_bytes_total",
			Help: "Bytes of log lost to truncated tails and skipped corrupt regions.",
		}, lbl),
		fsyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_fsyncs_total",
			Help: "fdatasync calls on segment files.",
		}, lbl),
		fsyncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_buffer_fsync_duration_seconds",
			Help:    "Duration of segment fdatasync calls.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, lbl),
		groupRecords: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_buffer_group_records",
			Help:    "Records written by one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}, lbl),
		groupBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_buffer_group_bytes",
			Help:    "Bytes written by one group commit.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 10),
		}, lbl),
		appendedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_appended_records_total",
			Help: "Records acknowledged by Append.",
		}, lbl),
		appendedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_appended_bytes_total",
			Help: "Frame bytes acknowledged by Append.",
		}, lbl),
		full: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_full_total",
			Help: "Appends refused because the stream's quota was exhausted, or the disk's free space reserve reached.",
		}, lbl),
		diskFull: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_disk_full_total",
			Help: "Appends refused because the filesystem's free space would fall below the buffer's min_free_bytes.",
		}, lbl),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_buffer_write_errors_total",
			Help: "Failed segment writes or syncs.",
		}, lbl),
		segments: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_buffer_segments",
			Help: "Segment files held.",
		}, lbl),
	}
	if reg != nil {
		reg.MustRegister(m.corruptTruncations, m.corruptSkips, m.corruptBytes, m.fsyncs,
			m.fsyncSeconds, m.groupRecords, m.groupBytes, m.appendedRecords, m.appendedBytes,
			m.full, m.diskFull, m.writeErrors, m.segments)
	}
	return m
}

// streamMetrics are the metrics of one stream, resolved once.
type streamMetrics struct {
	corruptTruncations prometheus.Counter
	corruptSkips       prometheus.Counter
	corruptBytes       prometheus.Counter
	fsyncs             prometheus.Counter
	fsyncSeconds       prometheus.Observer
	groupRecords       prometheus.Observer
	groupBytes         prometheus.Observer
	appendedRecords    prometheus.Counter
	appendedBytes      prometheus.Counter
	full               prometheus.Counter
	diskFull           prometheus.Counter
	writeErrors        prometheus.Counter
	segments           prometheus.Gauge
}

func (m *Metrics) forStream(stream string) *streamMetrics {
	return &streamMetrics{
		corruptTruncations: m.corruptTruncations.WithLabelValues(stream),
		corruptSkips:       m.corruptSkips.WithLabelValues(stream),
		corruptBytes:       m.corruptBytes.WithLabelValues(stream),
		fsyncs:             m.fsyncs.WithLabelValues(stream),
		fsyncSeconds:       m.fsyncSeconds.WithLabelValues(stream),
		groupRecords:       m.groupRecords.WithLabelValues(stream),
		groupBytes:         m.groupBytes.WithLabelValues(stream),
		appendedRecords:    m.appendedRecords.WithLabelValues(stream),
		appendedBytes:      m.appendedBytes.WithLabelValues(stream),
		full:               m.full.WithLabelValues(stream),
		diskFull:           m.diskFull.WithLabelValues(stream),
		writeErrors:        m.writeErrors.WithLabelValues(stream),
		segments:           m.segments.WithLabelValues(stream),
	}
}
