package assemble

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/ingest/firehoseapi"
)

// A reload (SIGHUP, POST /-/reload) reads the configuration file again
// and applies it in two phases, in the Run goroutine, one at a time:
//
//	prepare: load and check the file (every error logged, nothing changes
//	         on any), then build what is new while the old keeps running —
//	         added streams (buffer, parts, runner), the parts of changed
//	         streams, new listeners and TLS settings, the API's new
//	         configuration. A failure closes what was prepared and leaves
//	         everything as it was.
//	commit:  added streams start and are routed; the API switches to the
//	         new streams and auth (requests in progress finish under the
//	         old); removed streams stop intake, deliver what they buffered
//	         within shutdown_timeout and close, keeping their buffer on
//	         disk; a changed stream's runner finishes its batches in flight
//	         (or, at the timeout, leaves them marked for the new runner to
//	         redeliver under the same identity) and the new runner takes
//	         over its buffer — reopened, with appends paused for that
//	         stream only, if the buffer options changed. Untouched streams
//	         are not paused or rebuilt.
//
// A stream is changed when its block, the region or account, or a file a
// component reads (a WASM module) changed; a change of tags or quota only
// is applied to the API alone.

type reloadRequest struct {
	ctx  context.Context
	done chan error
}

// errNotRunning answers a reload asked for once the daemon has stopped
// serving (one asked for before Run waits for it).
var errNotRunning = errors.New("the daemon is not running")

// Reload reads the configuration again and applies it, returning once it
// is applied or rejected (the previous configuration then keeps running;
// the error lists why).
func (d *Daemon) Reload(ctx context.Context) error {
	req := reloadRequest{ctx: ctx, done: make(chan error, 1)}
	select {
	case d.reloads <- req:
	case <-d.stopped:
		return errNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type reloadMetrics struct {
	total       *prometheus.CounterVec
	successful  prometheus.Gauge
	lastSuccess prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) (*reloadMetrics, error) {
	m := &reloadMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_config_reloads_total",
			Help: "Configuration reloads (SIGHUP, POST /-/reload), by result: success or failure (rejected: the previous configuration keeps running).",
		}, []string{"result"}),
		successful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_config_last_reload_successful",
			Help: "1 when the last reload attempt succeeded (or none was made), 0 when it was rejected.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully (start or reload), in Unix seconds.",
		}),
	}
	for _, c := range []prometheus.Collector{m.total, m.successful, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register reload metrics: %w", err)
		}
	}
	m.total.WithLabelValues("success")
	m.total.WithLabelValues("failure")
	m.successful.Set(1)
	m.lastSuccess.SetToCurrentTime()
	return m, nil
}

// reload runs one reload in the Run goroutine.
func (d *Daemon) reload(ctx context.Context) error {
	start := time.Now()
	err := d.reloadOnce(ctx)
	if err != nil {
		d.m.reload.total.WithLabelValues("failure").Inc()
		d.m.reload.successful.Set(0)
		var ce config.Errors
		if errors.As(err, &ce) {
			for _, e := range ce {
				d.log.Error("configuration reload: error", "err", e.Error())
			}
		}
		d.log.Error("configuration reload rejected; the previous configuration keeps running", "err", err,
			"duration", time.Since(start).Round(time.Millisecond).String())
		return err
	}
	d.m.reload.total.WithLabelValues("success").Inc()
	d.m.reload.successful.Set(1)
	d.m.reload.lastSuccess.SetToCurrentTime()
	return nil
}

// change is what a reload does to one stream.
type change struct {
	name   string
	prints prints
	old    *stream // nil: added
	next   *stream // nil: removed; == old: untouched (or its API view only)
	newBuf bool    // the buffer options changed: reopen the buffer
}

func (d *Daemon) reloadOnce(ctx context.Context) (err error) {
	if d.opts.Load == nil {
		return errors.New("reloading is not enabled")
	}
	cfg, err := d.opts.Load()
	if err != nil {
		// As `sluice validate`: the components of a file with errors are
		// checked too, so that every error is reported at once.
		var all config.Errors
		if cfg == nil || !errors.As(err, &all) {
			return err
		}
		var more config.Errors
		if errors.As(Check(cfg), &more) {
			all = append(all, more...)
		}
		all.Sort()
		return all
	}
	if abs, err := filepath.Abs(cfg.DataDir); err != nil || abs != d.dataDir {
		return fmt.Errorf("data_dir cannot change without a restart (running with %s, the file says %s)", d.dataDir, cfg.DataDir)
	}
	p, err := checkPlan(cfg)
	if err != nil {
		return err
	}
	buildCtx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()

	// Prepare: nothing running changes yet.
	var changes []*change
	committed := false
	defer func() {
		if !committed {
			for _, c := range changes {
				d.discard(buildCtx, c)
			}
		}
	}()
	planned := map[string]bool{}
	var infos []firehoseapi.StreamInfo
	for i := range p.streams {
		sp := &p.streams[i]
		c := &change{name: sp.cfg.Name, old: d.streams[sp.cfg.Name], prints: fingerprints(sp, cfg)}
		planned[c.name] = true
		changes = append(changes, c)
		if err := d.prepare(buildCtx, c, sp, cfg); err != nil {
			return fmt.Errorf("stream %s: %w", c.name, err)
		}
		infos = append(infos, c.next.info)
	}
	for _, name := range d.names() {
		if !planned[name] {
			changes = append(changes, &change{name: name, old: d.streams[name]})
		}
	}
	apiCfg, err := d.apiConfig(cfg, infos)
	if err != nil {
		return err
	}
	nextAudit, err := d.audit.prepare(cfg, d.dataDir)
	if err != nil {
		return err
	}
	defer func() {
		if !committed {
			d.audit.discard(nextAudit)
		}
	}()
	lis, err := d.prepareListeners(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if !committed {
			for _, l := range lis {
				if l.next != nil && l.next != l.old {
					_ = l.next.ln.Close()
				}
			}
		}
	}()

	// Commit: new streams are routed before the API knows them.
	for _, c := range changes {
		if c.old == nil {
			d.router.add(c.name, c.next.buf)
		}
	}
	oldAudit := d.audit.swap(nextAudit)
	if err := d.api.Update(apiCfg); err != nil {
		d.audit.swap(oldAudit)
		for _, c := range changes {
			if c.old == nil {
				d.router.remove(c.name)
			}
		}
		return fmt.Errorf("firehose api: %w", err)
	}
	committed = true
	if err := d.audit.retire(oldAudit, nextAudit); err != nil {
		d.log.Warn("reload", "err", err)
	}
	d.commitListeners(cfg, lis)
	d.ops.token.Store(&cfg.AdminToken)
	deadline, cancelDeadline := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelDeadline()
	var added, removed, changed, apiOnly []string
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for _, c := range changes {
		switch {
		case c.old == nil:
			added = append(added, c.name)
			d.health.set(c.name, c.next.probes)
			d.start(c.next)
			continue
		case c.next == c.old:
			if c.old.prints.api != c.prints.api {
				apiOnly = append(apiOnly, c.name)
				c.old.prints.api = c.prints.api
			}
			continue
		case c.next == nil:
			removed = append(removed, c.name)
		default:
			changed = append(changed, c.name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.replace(deadline, c, cfg); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Errorf("stream %s: %w", c.name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, c := range changes {
		if c.next == nil {
			delete(d.streams, c.name)
		} else {
			d.streams[c.name] = c.next
		}
	}
	d.cfg = cfg
	d.list()
	d.strand.refresh(cfg, d.dataDir, d.log)
	if d.opts.Apply != nil {
		d.opts.Apply(cfg)
	}
	d.log.Info("configuration reloaded", "added", added, "removed", removed, "changed", changed,
		"api_only", apiOnly, "streams", len(d.streams))
	return errors.Join(failures...)
}

// prepare builds what a stream's change needs before anything stops: all
// of an added stream; a changed one's parts (and its source and runner,
// over the buffer it keeps); for an untouched one, its new description.
func (d *Daemon) prepare(ctx context.Context, c *change, sp *streamPlan, cfg *config.Config) error {
	switch {
	case c.old == nil:
		buf, err := openBuffer(sp.cfg, sp.keys, d.dataDir, d.owner(), d.log.With("stream", c.name), d.m)
		if err != nil {
			return err
		}
		if c.next, err = d.buildParts(ctx, sp, cfg); err != nil {
			d.closeBuffer(c.name, buf)
			return err
		}
		c.next.buf = buf // for discard, should attach fail
		return d.attach(ctx, c.next, buf, cfg)
	case c.old.prints.core == c.prints.core:
		c.next = c.old
		info := d.describe(c.old, cfg, c.old.info.KinesisDeliveryStart)
		info.Tags = sp.cfg.Tags
		info.Quota = firehoseapi.Quota{RecordsPerSecond: float64(sp.cfg.Quota.RecordsPerSecond),
			RequestsPerSecond: float64(sp.cfg.Quota.RequestsPerSecond), BytesPerSecond: float64(sp.cfg.Quota.BytesPerSecond)}
		c.old.info = info
		return nil
	default:
		var err error
		if c.next, err = d.buildParts(ctx, sp, cfg); err != nil {
			return err
		}
		c.newBuf = c.old.prints.buf != c.prints.buf
		if c.newBuf {
			// The source and runner are built over the reopened buffer,
			// at commit.
			c.next.info = d.describe(c.next, cfg, c.old.info.KinesisDeliveryStart)
			return nil
		}
		return d.attach(ctx, c.next, c.old.buf, cfg)
	}
}

// discard closes what prepare built for a change that is not committed.
func (d *Daemon) discard(ctx context.Context, c *change) {
	if c.next == nil || c.next == c.old {
		return
	}
	c.next.closeParts(ctx, d)
	if c.old == nil {
		d.closeBuffer(c.name, c.next.buf)
	}
}

// replace stops a removed or changed stream's old runner and source and,
// for a changed one, starts the new over the same buffer (reopened when
// its options changed). ctx is the shutdown_timeout: a removed stream
// delivers what it buffered within it; a changed one finishes its batches
// in flight within it, or leaves them marked for the new runner.
func (d *Daemon) replace(ctx context.Context, c *change, cfg *config.Config) error {
	old := c.old
	closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	log := d.log.With("stream", c.name)
	if c.next == nil {
		d.router.remove(c.name)
		old.stopSource()
		if !old.halt(ctx, true) {
			log.Warn("removed stream not drained within shutdown_timeout: its undelivered records stay in its buffer for a stream of that name")
		}
		old.closeParts(closeCtx, d)
		d.closeBuffer(c.name, old.buf)
		d.health.remove(c.name)
		return nil
	}
	old.stopSource()
	buf := old.buf
	if c.newBuf {
		var err error
		if buf, err = d.reopen(ctx, c, cfg); err != nil {
			return err
		}
	} else if !old.halt(ctx, false) {
		log.Warn("the batches in flight did not finish within shutdown_timeout: the new runner redelivers them")
	}
	if c.newBuf {
		if err := d.attach(closeCtx, c.next, buf, cfg); err != nil {
			c.next.prints.core = "" // the next reload rebuilds it
			return fmt.Errorf("the reopened buffer keeps taking records, but they are not delivered until the next reload or restart: %w", err)
		}
	}
	d.health.set(c.name, c.next.probes)
	d.start(c.next)
	old.closeParts(closeCtx, d)
	return nil
}

// reopen hands a stream's buffer over to its new options: the old runner
// stops, appends to the stream pause, the buffer closes and opens again.
// A memory buffer is drained first (with appends paused), since closing
// it loses what it holds; if it does not drain in time it is kept. If the
// new options do not open, the old ones are opened again.
func (d *Daemon) reopen(ctx context.Context, c *change, cfg *config.Config) (buffer.Buffer, error) {
	old, log := c.old, d.log.With("stream", c.name)
	memory := old.plan.cfg.Buffer.Type == config.BufferMemory
	if !memory && !old.halt(ctx, false) {
		log.Warn("the batches in flight did not finish within shutdown_timeout: the new runner redelivers them")
	}
	resume := d.router.pause(c.name)
	if memory && !old.halt(ctx, true) {
		resume(old.buf)
		log.Error("the memory buffer did not drain within shutdown_timeout: it is kept, with its old options, until the next reload")
		c.next.prints.buf, c.next.prints.core = old.prints.buf, ""
		return old.buf, nil
	}
	d.closeBuffer(c.name, old.buf)
	buf, err := openBuffer(c.next.plan.cfg, c.next.plan.keys, d.dataDir, d.owner(), log, d.m)
	if err == nil {
		resume(buf)
		log.Info("buffer reopened with its new options", "buffer", bufferDescription(c.next.plan.cfg, d.dataDir))
		return buf, nil
	}
	log.Error("the buffer does not open with its new options; opening it with the old ones", "err", err)
	back, err2 := openBuffer(old.plan.cfg, old.plan.keys, d.dataDir, d.owner(), log, d.m)
	if err2 != nil {
		resume(nil)
		d.fail(fmt.Errorf("stream %s: buffer: %w", c.name, errors.Join(err, err2)))
		return nil, err
	}
	resume(back)
	c.next.prints.buf, c.next.prints.core = old.prints.buf, ""
	return back, fmt.Errorf("buffer kept with its old options: %w", err)
}

// listenerPlan is what a reload does to one listener.
type listenerPlan struct {
	name   string
	old    *server     // nil: none before
	next   *server     // nil: none after; == old: kept
	tls    *tls.Config // a kept listener's new TLS settings
	rebind bool        // same address, TLS switched on or off: bound again at commit
	addr   string
	t      config.TLS
	h      http.Handler
}

// prepareListeners binds the listeners whose address changes (so that an
// address in use rejects the reload) and loads the TLS settings.
func (d *Daemon) prepareListeners(cfg *config.Config) ([]*listenerPlan, error) {
	api, err := d.planListener("api", d.apiSrv, cfg.Listen, cfg.TLS, d.front)
	if err != nil {
		return nil, err
	}
	admin, err := d.planListener("admin", d.admin, cfg.AdminListen, cfg.AdminTLS, d.ops)
	if err != nil {
		if api.next != nil && api.next != api.old {
			_ = api.next.ln.Close()
		}
		return nil, err
	}
	return []*listenerPlan{api, admin}, nil
}

func (d *Daemon) planListener(name string, old *server, addr string, t config.TLS, h http.Handler) (*listenerPlan, error) {
	l := &listenerPlan{name: name, old: old, addr: addr, t: t, h: h}
	switch {
	case addr == "":
		return l, nil
	case old != nil && old.addr == addr:
		tc, err := tlsConfig(t, d.log.With("server", name))
		if err != nil {
			return nil, fmt.Errorf("%s listener: %w", name, err)
		}
		if (tc != nil) != old.tls {
			l.rebind = true
			return l, nil
		}
		l.next, l.tls = old, tc
		return l, nil
	default:
		s, err := listen(name, addr, h, t, d.log)
		if err != nil {
			return nil, err
		}
		l.next = s
		return l, nil
	}
}

// commitListeners switches to the planned listeners: a kept one takes its
// new TLS settings for the next handshakes, a replaced one stops
// accepting and finishes its requests within shutdown_timeout.
func (d *Daemon) commitListeners(cfg *config.Config, lis []*listenerPlan) {
	for _, l := range lis {
		switch {
		case l.old != nil && l.next == l.old:
			if l.tls != nil {
				l.old.cur.Store(l.tls)
			}
		case l.rebind:
			d.retire(l.old, cfg.ShutdownTimeout)
			s, err := listenAgain(l, d)
			if err != nil {
				d.fail(err)
				continue
			}
			l.next = s
			d.serve(s)
		default:
			if l.old != nil {
				d.retire(l.old, cfg.ShutdownTimeout)
			}
			d.serve(l.next)
		}
		if l.name == "api" {
			d.apiSrv = l.next
		} else {
			d.admin = l.next
		}
	}
	d.front.withOps.Store(cfg.AdminListen == "")
}

// listenAgain binds an address its previous server is closing: the
// closing takes a moment.
func listenAgain(l *listenerPlan, d *Daemon) (*server, error) {
	var err error
	for range 100 {
		var s *server
		if s, err = listen(l.name, l.addr, l.h, l.t, d.log); err == nil {
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// retire stops a listener in the background: it stops accepting at once
// and its requests in progress finish within timeout.
func (d *Daemon) retire(s *server, timeout time.Duration) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := s.shutdown(ctx); err != nil {
			d.log.Warn("a listener replaced by a reload did not stop cleanly", "err", err)
		}
	}()
}
