// Package audit writes the audit log of the Firehose API: one JSON line per
// call (time, request id, source address, access key id or "anonymous",
// operation, stream, record count, payload bytes, HTTP status, result code,
// failed put count, latency), to standard error, any writer, or a file
// rotated by size.
//
// An entry never holds record data, the Authorization header, a signature,
// a session token or a secret: it is built from the fields of Entry only,
// which the API fills from validated values (the stream name only when it
// is a valid stream name, the access key id only when the signature was
// verified). The source is the connection's remote address (RemoteAddr);
// X-Forwarded-For is not trusted, since any client can send it.
//
// Entries go through a bounded queue to one writer goroutine, so a slow
// file never blocks the API for long: when the queue is full, Record
// either drops the entry at once (OnFull "drop") or waits at most
// BlockTimeout for room and then drops it ("block"); every drop is
// counted. Sampling keeps a fraction of successful calls; calls that
// failed, wholly or for some records, are always kept.
//
// Metrics: sluice_audit_entries_total{result="written"|"dropped"|"sampled_out"},
// sluice_audit_write_errors_total and sluice_audit_queue_length.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Entry is one API call.
type Entry struct {
	Time           time.Time // when the call arrived
	RequestID      string
	Source         string // the client's address (host:port)
	AccessKeyID    string // "" is written "anonymous"
	Operation      string // a Firehose operation name or "Unknown"
	Stream         string // "" when the call named no (valid) stream
	Records        int
	Bytes          int // payload bytes of the records
	Status         int // HTTP status
	Result         string
	FailedPutCount int
	Latency        time.Duration
}

// failed reports whether e is kept whatever the sampling: an error, or a
// batch with failed records.
func (e *Entry) failed() bool { return e.Result != "Success" || e.FailedPutCount > 0 }

// On-full policies.
const (
	Block = "block"
	Drop  = "drop"
)

// Defaults of Options.
const (
	DefaultQueueLength  = 4096
	DefaultBlockTimeout = 100 * time.Millisecond
	DefaultMaxFiles     = 5
)

// Options configure a Log.
type Options struct {
	// Writer receives the lines when Path is empty (os.Stderr, say).
	Writer io.Writer
	// Path is the audit file, appended to (created 0600, its directory
	// 0700 if missing). With
	// MaxFileBytes > 0, a write that would make it larger renames it to
	// Path.1 (Path.1 to Path.2, …), keeping MaxFiles old files.
	Path         string
	MaxFileBytes int64
	MaxFiles     int // default DefaultMaxFiles
	// Sample is the fraction (0 to 1) of successful calls written; calls
	// with an error or a failed record are always written. Zero keeps
	// only those: pass 1 to write every call.
	Sample float64
	// QueueLength bounds the entries waiting for the writer (default
	// DefaultQueueLength).
	QueueLength int
	// OnFull is Block (default) or Drop.
	OnFull string
	// BlockTimeout bounds the wait of OnFull Block (default
	// DefaultBlockTimeout).
	BlockTimeout time.Duration
	// Registerer registers the metrics (nil: not registered; the Log is
	// a prometheus.Collector of them too).
	Registerer prometheus.Registerer
	Logger     *slog.Logger // default: discard
}

// Log is an audit log. Record is safe for concurrent use.
type Log struct {
	opts    Options
	out     io.Writer
	file    *rotator
	log     *slog.Logger
	mu      sync.RWMutex // Record holds it for reading; Close for writing
	closed  bool
	queue   chan Entry
	done    chan struct{}
	written prometheus.Counter
	dropped prometheus.Counter
	sampled prometheus.Counter
	errs    prometheus.Counter
	gauge   prometheus.GaugeFunc
	entries *prometheus.CounterVec
}

// New starts a log; its writer stops at Close, or when ctx ends (what is
// still queued is then dropped and counted).
func New(ctx context.Context, o Options) (*Log, error) {
	if o.Sample < 0 || o.Sample > 1 {
		return nil, fmt.Errorf("audit: sample %v is not between 0 and 1", o.Sample)
	}
	switch o.OnFull {
	case "":
		o.OnFull = Block
	case Block, Drop:
	default:
		return nil, fmt.Errorf("audit: on_full %q is not %q or %q", o.OnFull, Block, Drop)
	}
	if o.QueueLength <= 0 {
		o.QueueLength = DefaultQueueLength
	}
	if o.BlockTimeout <= 0 {
		o.BlockTimeout = DefaultBlockTimeout
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	l := &Log{opts: o, log: o.Logger, queue: make(chan Entry, o.QueueLength), done: make(chan struct{})}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.Path != "":
		r, err := openRotator(o.Path, o.MaxFileBytes, o.MaxFiles)
		if err != nil {
			return nil, err
		}
		l.file, l.out = r, r
	case o.Writer != nil:
		l.out = o.Writer
	default:
		return nil, errors.New("audit: Options.Writer or Options.Path is required")
	}
	l.entries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_audit_entries_total",
		Help: "Audit log entries by fate: written, dropped (queue full or writer stopped) or sampled_out.",
	}, []string{"result"})
	l.written = l.entries.WithLabelValues("written")
	l.dropped = l.entries.WithLabelValues("dropped")
	l.sampled = l.entries.WithLabelValues("sampled_out")
	l.errs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_audit_write_errors_total",
		Help: "Failed writes of the audit log (the entries of a failed write are lost).",
	})
	l.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_audit_queue_length",
		Help: "Audit log entries waiting for the writer.",
	}, func() float64 { return float64(len(l.queue)) })
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{l.entries, l.errs, l.gauge} {
			if err := o.Registerer.Register(c); err != nil {
				if l.file != nil {
					_ = l.file.Close()
				}
				return nil, fmt.Errorf("audit: registering metrics: %w", err)
			}
		}
	}
	go l.run(ctx)
	return l, nil
}

// Record queues e. It never waits longer than BlockTimeout.
func (l *Log) Record(e Entry) {
	if !e.failed() && l.opts.Sample < 1 && (l.opts.Sample == 0 || rand.Float64() >= l.opts.Sample) {
		l.sampled.Inc()
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Inc()
		return
	}
	select {
	case <-l.done: // the writer stopped with its context
		l.dropped.Inc()
		return
	default:
	}
	select {
	case l.queue <- e:
		return
	default:
	}
	if l.opts.OnFull == Drop {
		l.dropped.Inc()
		return
	}
	t := time.NewTimer(l.opts.BlockTimeout)
	defer t.Stop()
	select {
	case l.queue <- e:
	case <-l.done:
		l.dropped.Inc()
	case <-t.C:
		l.dropped.Inc()
	}
}

// Close writes what is queued and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	if l.file != nil {
		if err := l.file.Close(); err != nil {
			return fmt.Errorf("audit: closing %s: %w", l.opts.Path, err)
		}
	}
	return nil
}

// run is the writer: it takes what is queued, encodes it into one buffer
// and writes it at once.
func (l *Log) run(ctx context.Context) {
	defer close(l.done)
	var buf []byte
	for {
		var e Entry
		var ok bool
		select {
		case e, ok = <-l.queue:
		case <-ctx.Done():
			// Stopped: what is still queued is dropped (Record sees done).
			for {
				select {
				case _, ok := <-l.queue:
					if !ok {
						return
					}
					l.dropped.Inc()
				default:
					return
				}
			}
		}
		if !ok {
			return
		}
		buf = AppendJSON(buf[:0], &e)
		n := 1
	more:
		for n < 256 {
			select {
			case e, ok = <-l.queue:
				if !ok {
					break more
				}
				buf = AppendJSON(buf, &e)
				n++
			default:
				break more
			}
		}
		if _, err := l.out.Write(buf); err != nil {
			l.errs.Inc()
			l.log.Error("writing the audit log", "entries", n, "err", err)
		} else {
			l.written.Add(float64(n))
		}
		if !ok {
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

// AppendJSON appends e as one JSON line.
func AppendJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"time":`...)
	b = append(b, '"')
	b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","request_id":`...)
	b = appendString(b, e.RequestID)
	b = append(b, `,"source":`...)
	b = appendString(b, e.Source)
	b = append(b, `,"access_key_id":`...)
	key := e.AccessKeyID
	if key == "" {
		key = "anonymous"
	}
	b = appendString(b, key)
	b = append(b, `,"operation":`...)
	b = appendString(b, e.Operation)
	if e.Stream != "" {
		b = append(b, `,"stream":`...)
		b = appendString(b, e.Stream)
	}
	b = append(b, `,"records":`...)
	b = strconv.AppendInt(b, int64(e.Records), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(e.Bytes), 10)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"result":`...)
	b = appendString(b, e.Result)
	b = append(b, `,"failed_put_count":`...)
	b = strconv.AppendInt(b, int64(e.FailedPutCount), 10)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendFloat(b, float64(e.Latency.Microseconds())/1000, 'f', 3, 64)
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string, encoded by encoding/json
// (invalid UTF-8 replaced, U+2028 and U+2029 escaped); HTML characters are
// kept as they are.
func appendString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// Describe implements prometheus.Collector: the log's metrics.
func (l *Log) Describe(ch chan<- *prometheus.Desc) {
	l.entries.Describe(ch)
	l.errs.Describe(ch)
	l.gauge.Describe(ch)
}

// Collect implements prometheus.Collector.
func (l *Log) Collect(ch chan<- prometheus.Metric) {
	l.entries.Collect(ch)
	l.errs.Collect(ch)
	l.gauge.Collect(ch)
}
