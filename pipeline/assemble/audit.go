package assemble

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/ingest/audit"
	"github.com/sluice-dev/sluice/ingest/firehoseapi"
)

// auditor is the daemon's audit log. The API's hook reads the current log
// atomically, so a reload that changes the audit block swaps the log
// without touching calls in progress. Its metrics are collected from the
// current log (they start over when a reload replaces it).
type auditor struct {
	cur atomic.Pointer[auditLog]
}

type auditLog struct {
	cfg config.Audit
	log *audit.Log
}

// newAuditor opens cfg's audit log, if any, and registers its metrics.
func newAuditor(cfg *config.Config, dataDir string, reg prometheus.Registerer) (*auditor, error) {
	a := &auditor{}
	next, err := a.prepare(cfg, dataDir)
	if err != nil {
		return nil, err
	}
	a.cur.Store(next)
	if err := reg.Register(auditCollector{a}); err != nil {
		a.discard(next)
		return nil, fmt.Errorf("audit: registering metrics: %w", err)
	}
	return a, nil
}

// prepare opens the log cfg asks for when it differs from the running one:
// the running one (unchanged), a new one, or nil (no audit block).
func (a *auditor) prepare(cfg *config.Config, dataDir string) (*auditLog, error) {
	c := cfg.Audit
	if cur := a.cur.Load(); cur != nil && cur.cfg == c {
		return cur, nil
	}
	if c.Output == "" {
		return nil, nil
	}
	o := audit.Options{Sample: c.Sample, QueueLength: c.QueueLength, OnFull: c.OnFull, BlockTimeout: c.BlockTimeout}
	switch c.Output {
	case config.AuditStderr:
		o.Writer = os.Stderr
	case config.AuditFile:
		o.Path = c.Path
		if !filepath.IsAbs(o.Path) {
			o.Path = filepath.Join(dataDir, o.Path)
		}
		o.MaxFileBytes, o.MaxFiles = int64(c.MaxFileBytes), c.MaxFiles
	}
	l, err := audit.New(context.Background(), o)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &auditLog{cfg: c, log: l}, nil
}

// swap makes next the running log and returns the previous one, which
// calls in progress may still use: retire it once the API no longer can.
func (a *auditor) swap(next *auditLog) *auditLog { return a.cur.Swap(next) }

// retire closes a log swapped out, once what it holds is written.
func (a *auditor) retire(old, next *auditLog) error {
	if old == nil || old == next {
		return nil
	}
	if err := old.log.Close(); err != nil {
		return fmt.Errorf("closing the previous audit log: %w", err)
	}
	return nil
}

// discard closes a prepared log that is not committed.
func (a *auditor) discard(next *auditLog) {
	if next != nil && next != a.cur.Load() {
		_ = next.log.Close()
	}
}

// close closes the running log.
func (a *auditor) close() error {
	if a == nil {
		return nil
	}
	return a.retire(a.swap(nil), nil)
}

// hook is the API's Audit hook for cfg: nil without an audit block, so
// that calls cost nothing then.
func (a *auditor) hook(cfg *config.Config) func(firehoseapi.Call) {
	if cfg.Audit.Output == "" {
		return nil
	}
	return a.record
}

func (a *auditor) record(c firehoseapi.Call) {
	cur := a.cur.Load()
	if cur == nil {
		return
	}
	cur.log.Record(audit.Entry{Time: c.Time, RequestID: c.RequestID, Source: c.Source, AccessKeyID: c.AccessKeyID,
		Operation: c.Operation, Stream: c.Stream, Records: c.Records, Bytes: c.Bytes, Status: c.Status,
		Result: c.Result, FailedPutCount: c.FailedPutCount, Latency: c.Latency})
}

// auditCollector collects the running log's metrics (an unchecked
// collector: the log changes on reload).
type auditCollector struct{ a *auditor }

func (auditCollector) Describe(chan<- *prometheus.Desc) {}

func (c auditCollector) Collect(ch chan<- prometheus.Metric) {
	if cur := c.a.cur.Load(); cur != nil {
		cur.log.Collect(ch)
	}
}
