package status

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// Snapshot is what /status.json answers and the page shows. Counter
// totals (…_total) and gauges are read from the registry when the request
// is answered, so they are those /metrics would show then; rates (…
// per_second) are from the last two samples of the sampler, and history
// from all it keeps. A nil rate or gauge (JSON null) is not known: the
// sampler has not taken two samples yet, or the metric is missing.
type Snapshot struct {
	Version         string         `json:"version"`
	Now             time.Time      `json:"now"`
	Started         time.Time      `json:"started"`
	UptimeSeconds   float64        `json:"uptime_seconds"`
	IntervalSeconds float64        `json:"interval_seconds"`
	HistorySeconds  float64        `json:"history_seconds"`
	SampledAt       *time.Time     `json:"sampled_at"` // the newest sample (rates and history)
	Process         ProcessStatus  `json:"process"`
	Reloads         *Reloads       `json:"reloads"` // nil when the daemon has no reload metrics
	Streams         []StreamStatus `json:"streams"`
}

// ProcessStatus is the process's own metrics.
type ProcessStatus struct {
	ResidentMemoryBytes *float64 `json:"resident_memory_bytes"`
	Goroutines          *float64 `json:"goroutines"`
}

// Reloads is the configuration reloads (sluice_config_reloads_total and
// the last reload's gauges).
type Reloads struct {
	SuccessTotal   float64    `json:"success_total"`
	FailureTotal   float64    `json:"failure_total"`
	LastSuccessful *bool      `json:"last_successful"`
	LastSuccessAt  *time.Time `json:"last_success_at"`
}

// StreamStatus is one stream.
type StreamStatus struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	ErrorOutput string `json:"error_output"`
	Ready       bool   `json:"ready"`
	// NotReady is why the stream is not ready ("" when it is).
	NotReady string `json:"not_ready_reason"`

	Incoming  Flow `json:"incoming"`  // sluice_incoming_* (and, for a Kinesis source, sluice_kinesis_read_*)
	Delivered Flow `json:"delivered"` // sluice_delivery_records_total, sluice_delivery_bytes_total

	BacklogBytes      *float64 `json:"backlog_bytes"`       // sluice_buffer_backlog_bytes
	BacklogAgeSeconds *float64 `json:"backlog_age_seconds"` // sluice_delivery_data_freshness_seconds
	InFlightBatches   *float64 `json:"in_flight_batches"`   // sluice_delivery_in_flight_batches

	Retries        Count         `json:"retries"`         // sluice_delivery_retries_total
	StalledRetries StalledCounts `json:"stalled_retries"` // sluice_runner_stalled_retries_total
	LastError      *LastError    `json:"last_error"`
	DeadLetters    DeadLetters   `json:"dead_letters"` // sluice_dead_letter_records_total

	History History `json:"history"`
}

// Flow is records and bytes through one side of a stream.
type Flow struct {
	RecordsTotal     float64  `json:"records_total"`
	BytesTotal       float64  `json:"bytes_total"`
	RecordsPerSecond *float64 `json:"records_per_second"`
	BytesPerSecond   *float64 `json:"bytes_per_second"`
}

// Count is a counter and its recent rate.
type Count struct {
	Total     float64  `json:"total"`
	PerSecond *float64 `json:"per_second"`
}

// StalledCounts is the stalled retries, in all and by operation.
type StalledCounts struct {
	Count
	ByOperation []OperationCount `json:"by_operation"`
}

// OperationCount is the stalled retries of one operation.
type OperationCount struct {
	Operation string `json:"operation"`
	Count
}

// DeadLetters is the dead-lettered records, in all and by code.
type DeadLetters struct {
	Count
	ByCode []CodeCount `json:"by_code"`
}

// CodeCount is the dead letters of one error code.
type CodeCount struct {
	Code string `json:"code"`
	Count
}

// LastError is the runner's last delivery error.
type LastError struct {
	Message string     `json:"message"`
	At      *time.Time `json:"at"`
}

// History is the sparklines' data: one point per sample, oldest first.
// A rate's first point is null (it needs the sample before).
type History struct {
	Times                     []float64  `json:"t"` // Unix seconds
	IncomingRecordsPerSecond  []*float64 `json:"incoming_records_per_second"`
	DeliveredRecordsPerSecond []*float64 `json:"delivered_records_per_second"`
	BacklogBytes              []*float64 `json:"backlog_bytes"`
}

var emptySeries = series{}

// snapshot builds the Snapshot from cur (the registry now) and ring (the
// sampler's samples, oldest first).
func (p *Page) snapshot(cur *sample, ring []*sample) Snapshot {
	started := p.o.Started
	if started.IsZero() && cur.proc.started != nil {
		started = time.Unix(0, int64(*cur.proc.started*1e9))
	}
	snap := Snapshot{
		Version:         cmp.Or(p.o.Version, cur.proc.version),
		Now:             cur.at,
		Started:         started,
		IntervalSeconds: p.o.Interval.Seconds(),
		HistorySeconds:  p.o.History.Seconds(),
		Process:         ProcessStatus{ResidentMemoryBytes: cur.proc.rss, Goroutines: cur.proc.goroutines},
		Streams:         []StreamStatus{},
	}
	if !started.IsZero() {
		snap.UptimeSeconds = max(0, cur.at.Sub(started).Seconds())
	}
	if cur.proc.reloadsSeen {
		r := &Reloads{SuccessTotal: cur.proc.reloadsOK, FailureTotal: cur.proc.reloadsFail}
		if v := cur.proc.lastReloadOK; v != nil {
			ok := *v == 1
			r.LastSuccessful = &ok
		}
		if v := cur.proc.lastReloadAt; v != nil && *v > 0 {
			at := time.Unix(0, int64(*v*1e9)).UTC()
			r.LastSuccessAt = &at
		}
		snap.Reloads = r
	}
	var prev, last *sample
	if n := len(ring); n > 0 {
		last = ring[n-1]
		snap.SampledAt = &last.at
		if n > 1 {
			prev = ring[n-2]
		}
	}
	for _, st := range p.streams(cur) {
		snap.Streams = append(snap.Streams, streamStatus(st, cur, prev, last, ring))
	}
	return snap
}

// streams is the streams to show: the caller's, or without Streams every
// stream the registry names.
func (p *Page) streams(cur *sample) []Stream {
	var out []Stream
	if p.o.Streams != nil {
		out = slices.Clone(p.o.Streams())
	} else {
		for _, name := range slices.Sorted(maps.Keys(cur.streams)) {
			if name != "" {
				out = append(out, Stream{Name: name})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Stream) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func lookup(s *sample, name string) *series {
	if s == nil {
		return nil
	}
	if ser, ok := s.streams[name]; ok {
		return ser
	}
	return &emptySeries // in the sample, with no series yet: its counters are 0
}

func streamStatus(st Stream, cur, prev, last *sample, ring []*sample) StreamStatus {
	c := lookup(cur, st.Name)
	out := StreamStatus{
		Name: st.Name, Source: st.Source, Destination: st.Destination, ErrorOutput: st.ErrorOutput,
		Incoming:          Flow{RecordsTotal: c.inRecords, BytesTotal: c.inBytes},
		Delivered:         Flow{RecordsTotal: c.outRecords, BytesTotal: c.outBytes},
		BacklogBytes:      c.backlog,
		BacklogAgeSeconds: c.age,
		InFlightBatches:   c.inFlight,
		Retries:           Count{Total: c.retries},
		StalledRetries: StalledCounts{
			Count: Count{Total: c.stalledTotal()}, ByOperation: []OperationCount{},
		},
		DeadLetters: DeadLetters{Count: Count{Total: c.deadTotal()}, ByCode: []CodeCount{}},
		History: History{
			Times: []float64{}, IncomingRecordsPerSecond: []*float64{},
			DeliveredRecordsPerSecond: []*float64{}, BacklogBytes: []*float64{},
		},
	}
	switch {
	case st.Ready != "":
		out.NotReady = st.Ready
	case c.ready != nil && *c.ready != 1:
		out.NotReady = "sluice_stream_ready is 0"
	default:
		out.Ready = true
	}
	if st.LastError != "" {
		le := &LastError{Message: st.LastError}
		if !st.LastErrorAt.IsZero() {
			at := st.LastErrorAt.UTC()
			le.At = &at
		}
		out.LastError = le
	}

	var p0, p1 *series
	var dt time.Duration
	if prev != nil {
		p0, p1, dt = lookup(prev, st.Name), lookup(last, st.Name), last.at.Sub(prev.at)
		out.Incoming.RecordsPerSecond = rate(p0.inRecords, p1.inRecords, dt)
		out.Incoming.BytesPerSecond = rate(p0.inBytes, p1.inBytes, dt)
		out.Delivered.RecordsPerSecond = rate(p0.outRecords, p1.outRecords, dt)
		out.Delivered.BytesPerSecond = rate(p0.outBytes, p1.outBytes, dt)
		out.Retries.PerSecond = rate(p0.retries, p1.retries, dt)
		out.StalledRetries.PerSecond = rate(p0.stalledTotal(), p1.stalledTotal(), dt)
		out.DeadLetters.PerSecond = rate(p0.deadTotal(), p1.deadTotal(), dt)
	}
	for _, code := range unionKeys(c.deadLetters, p1) {
		cc := CodeCount{Code: code, Count: Count{Total: c.deadLetters[code]}}
		if p1 != nil {
			cc.PerSecond = rate(p0.deadLetters[code], p1.deadLetters[code], dt)
		}
		out.DeadLetters.ByCode = append(out.DeadLetters.ByCode, cc)
	}
	var stalledNow map[string]float64
	if p1 != nil {
		stalledNow = p1.stalled
	}
	for _, op := range slices.Sorted(maps.Keys(merge(c.stalled, stalledNow))) {
		oc := OperationCount{Operation: op, Count: Count{Total: c.stalled[op]}}
		if p1 != nil {
			oc.PerSecond = rate(p0.stalled[op], p1.stalled[op], dt)
		}
		out.StalledRetries.ByOperation = append(out.StalledRetries.ByOperation, oc)
	}

	h := &out.History
	var before *series
	for i, s := range ring {
		ser := lookup(s, st.Name)
		h.Times = append(h.Times, float64(s.at.UnixMilli())/1000)
		h.BacklogBytes = append(h.BacklogBytes, ser.backlog)
		if i == 0 {
			h.IncomingRecordsPerSecond = append(h.IncomingRecordsPerSecond, nil)
			h.DeliveredRecordsPerSecond = append(h.DeliveredRecordsPerSecond, nil)
		} else {
			d := s.at.Sub(ring[i-1].at)
			h.IncomingRecordsPerSecond = append(h.IncomingRecordsPerSecond, rate(before.inRecords, ser.inRecords, d))
			h.DeliveredRecordsPerSecond = append(h.DeliveredRecordsPerSecond, rate(before.outRecords, ser.outRecords, d))
		}
		before = ser
	}
	return out
}

func unionKeys(now map[string]float64, last *series) []string {
	var m map[string]float64
	if last != nil {
		m = last.deadLetters
	}
	return slices.Sorted(maps.Keys(merge(now, m)))
}

func merge(a, b map[string]float64) map[string]float64 {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]float64{}
	}
	for k := range b {
		if _, ok := out[k]; !ok {
			out[k] = 0
		}
	}
	return out
}
