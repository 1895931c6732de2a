// Package assemble turns a loaded configuration into running streams. It is
// the one place that knows every implementation (see builtin.go) and owns
// the start-up and shutdown order:
//
//	start:    lock the data directory → per stream: buffer → processors →
//	          destination → error output → runner → listeners
//	shutdown: listeners stop intake → runners drain (within shutdown_timeout)
//	          → runners stop → processors, destinations, error outputs close
//	          → buffers close → the data directory is unlocked
//
// Components go through one lifecycle (kinds.go): checked once (Check, what
// `sluice validate` runs), built once from the checked value, closed once.
// A configuration reload (reload.go) prepares what is new while the old
// runs, then swaps stream by stream.
package assemble

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/ingest/firehoseapi"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/status"
)

// Options are the process-level inputs that do not come from the file.
type Options struct {
	Logger  *slog.Logger
	Version string
	// Load reads the configuration again, for a reload (SIGHUP, POST
	// /-/reload); nil: reloads are refused. With config.Errors it may
	// return the configuration as far as it was read, whose components
	// are then checked too.
	Load func() (*config.Config, error)
	// Apply, when set, is called with every configuration the daemon
	// takes on at a reload, once it runs (the process settings the
	// daemon does not own: the log level, the memory limit).
	Apply func(*config.Config)
}

// Daemon is a provisioned set of streams and listeners, ready to Run.
// The streams and listeners are the Run goroutine's: a reload runs in it.
type Daemon struct {
	opts    Options
	cfg     *config.Config
	dataDir string
	log     *slog.Logger
	reg     *prometheus.Registry
	m       metrics
	lock    *disk.DirLock
	started time.Time
	health  *health
	strand  *stranded

	streams map[string]*stream
	router  *router
	api     *firehoseapi.Handler
	audit   *auditor // the audit log of API calls (audit.go)
	ops     *ops
	front   *front
	apiSrv  *server
	admin   *server // nil without admin_listen

	status *status.Page
	listed atomic.Pointer[[]*stream] // d.streams for other goroutines

	reloads chan reloadRequest
	stopped chan struct{} // closed when Run stops taking reloads
	errs    chan error    // a stream or listener failed: Run shuts down
}

// New checks cfg, then provisions every stream: locks the data directory,
// opens each stream's buffer, builds its processors, destination and error
// output and its runner, and binds the listeners. On error everything
// opened so far is closed again.
func New(cfg *config.Config, opts Options) (d *Daemon, err error) {
	p, err := checkPlan(cfg)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %q: %w", cfg.DataDir, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_build_info", Help: "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": opts.Version},
	}, func() float64 { return 1 }))
	d = &Daemon{opts: opts, cfg: cfg, dataDir: dataDir, log: log, reg: reg, started: time.Now(),
		streams: map[string]*stream{}, router: newRouter(),
		reloads: make(chan reloadRequest), stopped: make(chan struct{}), errs: make(chan error, 1)}
	partial := d // the named result is nil by the time an error return runs
	defer func() {
		if err != nil {
			partial.close(context.Background())
		}
	}()
	// Before anything else touches the data directory: one daemon per
	// data directory.
	if err := disk.MakeDir(dataDir); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if d.lock, err = disk.Lock(filepath.Join(dataDir, lockName), d.owner()); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	if d.m, err = newMetrics(reg); err != nil {
		return nil, err
	}
	if d.strand, err = newStranded(reg); err != nil {
		return nil, err
	}
	d.strand.refresh(cfg, dataDir, log)
	d.health = newHealth(log, d.m.health)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	var infos []firehoseapi.StreamInfo
	for i := range p.streams {
		sp := &p.streams[i]
		s, err := d.buildStream(ctx, sp, cfg)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", sp.cfg.Name, err)
		}
		infos = append(infos, s.info)
	}
	if d.audit, err = newAuditor(cfg, dataDir, reg); err != nil {
		return nil, err
	}
	apiCfg, err := d.apiConfig(cfg, infos)
	if err != nil {
		return nil, err
	}
	if d.api, err = firehoseapi.NewHandler(apiCfg); err != nil {
		return nil, fmt.Errorf("firehose api: %w", err)
	}
	d.ops = newOps(reg, d.health.ready, d.Reload)
	d.ops.token.Store(&cfg.AdminToken)
	if err := d.newStatus(); err != nil {
		return nil, err
	}
	d.list()
	d.front = &front{api: d.api, ops: d.ops}
	d.front.withOps.Store(cfg.AdminListen == "")
	if d.apiSrv, err = listen("api", cfg.Listen, d.front, cfg.TLS, log); err != nil {
		return nil, err
	}
	if cfg.AdminListen != "" {
		if d.admin, err = listen("admin", cfg.AdminListen, d.ops, cfg.AdminTLS, log); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// deps are what components are built with.
func (d *Daemon) deps(cfg *config.Config) pipeline.Deps {
	return pipeline.Deps{Logger: d.log, Registry: d.reg, DataDir: d.dataDir, Region: cfg.Region, AccountID: cfg.AccountID}
}

// buildStream provisions a new stream from its plan: its buffer, parts,
// source and runner. It is recorded in d.streams and the router, so that
// a failure closes what was built.
func (d *Daemon) buildStream(ctx context.Context, sp *streamPlan, cfg *config.Config) (*stream, error) {
	buf, err := openBuffer(sp.cfg, sp.keys, d.dataDir, d.owner(), d.log.With("stream", sp.cfg.Name), d.m)
	if err != nil {
		return nil, err
	}
	s, err := d.buildParts(ctx, sp, cfg)
	if err != nil {
		d.closeBuffer(sp.cfg.Name, buf)
		return nil, err
	}
	d.streams[s.name] = s
	s.buf = buf
	if err := d.attach(ctx, s, buf, cfg); err != nil {
		return nil, err
	}
	d.router.add(s.name, buf)
	d.health.set(s.name, s.probes)
	return s, nil
}

// apiConfig is the Firehose API's configuration for cfg's streams.
func (d *Daemon) apiConfig(cfg *config.Config, infos []firehoseapi.StreamInfo) (firehoseapi.Config, error) {
	verifier, allow, err := authHooks(cfg.Auth)
	if err != nil {
		return firehoseapi.Config{}, err
	}
	c := firehoseapi.Config{
		Region: cfg.Region, AccountID: cfg.AccountID, Streams: infos,
		Appender: d.router, Logger: d.log, Metrics: d.m.api, Allow: allow, Audit: d.audit.hook(cfg),
	}
	if verifier != nil {
		c.Verify = verifier.VerifyPayload
		d.log.Info("the Firehose API requires SigV4 signatures", "keys", len(cfg.Auth.Keys), "region", cmp.Or(cfg.Auth.Region, "any"))
	} else if !loopback(cfg.Listen) {
		d.log.Warn("the Firehose API accepts every request, signed or not (auth mode none) on a listener that is not loopback: for trusted networks only", "listen", cfg.Listen)
	}
	return c, nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// owner describes this daemon in lock files, for the error a second one
// gets.
func (d *Daemon) owner() string { return "sluice (listen " + d.cfg.Listen + ")" }

// buildTimeout bounds the start-up work of building the components (an
// S3 client loading credentials, say).
const buildTimeout = 30 * time.Second

// fail reports a stream's or a listener's failure to Run, which shuts
// down; the first failure is enough.
func (d *Daemon) fail(err error) {
	select {
	case d.errs <- err:
	default:
	}
}

// Run serves until ctx is cancelled, then shuts down in order: stop intake,
// drain the runners within shutdown_timeout, close everything. Buffered
// records that could not be delivered in time stay in the buffers and are
// delivered after the next start. Reloads run here, one at a time.
func (d *Daemon) Run(ctx context.Context) error {
	for _, name := range d.names() {
		d.start(d.streams[name])
	}
	healthCtx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	go d.health.run(healthCtx)
	go d.status.Run(healthCtx)
	d.serve(d.apiSrv)
	d.serve(d.admin)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			d.log.Info("shutting down: intake stops, buffers drain", "timeout", d.cfg.ShutdownTimeout.String())
			break loop
		case runErr = <-d.errs:
			d.log.Error("shutting down after a failure", "err", runErr)
			break loop
		case req := <-d.reloads:
			req.done <- d.reload(req.ctx)
		}
	}

	close(d.stopped)
	deadline, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range []*server{d.apiSrv, d.admin} {
		if s == nil {
			continue
		}
		if err := s.shutdown(deadline); err != nil {
			d.log.Warn("listener did not stop cleanly", "err", err)
		}
	}
	// Sources stop with intake, before the runners drain.
	for _, s := range d.streams {
		s.stopSource()
	}
	var wg sync.WaitGroup
	var undrained []string
	var mu sync.Mutex
	for _, s := range d.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !s.halt(deadline, true) {
				mu.Lock()
				undrained = append(undrained, s.name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(undrained) > 0 {
		slices.Sort(undrained)
		d.log.Warn("shutdown timeout: undelivered records stay buffered for the next start", "streams_not_drained", undrained)
	} else {
		d.log.Info("all streams drained")
	}
	// The deadline may be spent: closing gets a moment of its own.
	closeCtx, cancelClose := context.WithTimeout(context.Background(), closeTimeout)
	defer cancelClose()
	d.close(closeCtx)
	return runErr
}

// serve starts a listener (nil: none), its failures reported to Run.
func (d *Daemon) serve(s *server) {
	if s == nil {
		return
	}
	errc := make(chan error, 1)
	s.serve(errc)
	go func() {
		if err, ok := <-errc; ok {
			d.fail(err)
		}
	}()
	d.log.Info("listening", "server", s.name, "addr", s.ln.Addr().String(), "tls", s.tls, "data_dir", d.dataDir)
}

// names are the streams' names, sorted.
func (d *Daemon) names() []string {
	return slices.Sorted(maps.Keys(d.streams))
}

// closeTimeout bounds closing the components after the drain.
const closeTimeout = 5 * time.Second

// close releases every component once: listeners never served, then per
// stream its processors, destination and error output, its buffer, and
// finally the data directory's lock.
func (d *Daemon) close(ctx context.Context) {
	for _, s := range []*server{d.apiSrv, d.admin} {
		if s != nil {
			_ = s.srv.Close()
			_ = s.ln.Close()
		}
	}
	for _, name := range d.names() {
		s := d.streams[name]
		s.closeParts(ctx, d)
		d.closeBuffer(s.name, s.buf)
	}
	if err := d.audit.close(); err != nil {
		d.log.Warn("closing the audit log", "err", err)
	}
	if d.lock != nil {
		if err := d.lock.Unlock(); err != nil {
			d.log.Warn("unlocking the data directory", "err", err)
		}
	}
}
