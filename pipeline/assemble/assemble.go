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
package assemble

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/ingest/firehoseapi"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/runner"
)

// Options are the process-level inputs that do not come from the file.
type Options struct {
	Logger  *slog.Logger
	Version string
}

// Daemon is a provisioned set of streams and listeners, ready to Run.
type Daemon struct {
	cfg     *config.Config
	dataDir string
	log     *slog.Logger
	reg     *prometheus.Registry
	lock    *disk.DirLock
	streams []*stream
	servers []*server
	health  *health
}

// stream is one delivery stream's parts.
type stream struct {
	name   string
	buf    buffer.Buffer
	src    runnable // nil for a DirectPut stream
	srcEnd func()   // releases what the source holds (a fleet's pool)
	dest   pipeline.Destination
	out    pipeline.ErrorOutput // nil when dest is its own error output
	procs  []pipeline.Processor
	runner *runner.Runner
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
	d = &Daemon{cfg: cfg, dataDir: dataDir, log: log, reg: reg}
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
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if err := reportStranded(cfg, dataDir, log, reg); err != nil {
		return nil, err
	}
	d.health = newHealth(log, m.health)
	deps := pipeline.Deps{Logger: log, Registry: reg, DataDir: dataDir, Region: cfg.Region, AccountID: cfg.AccountID}
	var infos []firehoseapi.StreamInfo
	bufs := map[string]buffer.Buffer{}
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	for i := range p.streams {
		sp := &p.streams[i]
		s, info, err := d.buildStream(ctx, sp, deps, m, started)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", sp.cfg.Name, err)
		}
		bufs[s.name] = s.buf
		infos = append(infos, info)
	}

	verifier, allow, err := authHooks(cfg.Auth)
	if err != nil {
		return nil, err
	}
	apiCfg := firehoseapi.Config{
		Region: cfg.Region, AccountID: cfg.AccountID, Streams: infos,
		Appender: router(bufs), Logger: log, Metrics: m.api, Allow: allow,
	}
	if verifier != nil {
		apiCfg.Verify = verifier.VerifyPayload
		log.Info("the Firehose API requires SigV4 signatures", "keys", len(cfg.Auth.Keys), "region", cmp.Or(cfg.Auth.Region, "any"))
	} else if !loopback(cfg.Listen) {
		log.Warn("the Firehose API accepts every request, signed or not (auth mode none) on a listener that is not loopback: for trusted networks only", "listen", cfg.Listen)
	}
	api, err := firehoseapi.NewHandler(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("firehose api: %w", err)
	}
	ops := opsHandler(reg, d.health.ready, cfg.AdminToken)
	if cfg.AdminListen == "" {
		s, err := listen("api", cfg.Listen, apiWithOps(api, ops), cfg.TLS, log)
		if err != nil {
			return nil, err
		}
		d.servers = append(d.servers, s)
	} else {
		s, err := listen("api", cfg.Listen, api, cfg.TLS, log)
		if err != nil {
			return nil, err
		}
		d.servers = append(d.servers, s)
		a, err := listen("admin", cfg.AdminListen, ops, cfg.AdminTLS, log)
		if err != nil {
			return nil, err
		}
		d.servers = append(d.servers, a)
	}
	return d, nil
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

// buildStream provisions one stream from its plan; the stream is recorded
// in d.streams first, so that a failure closes what was built.
func (d *Daemon) buildStream(ctx context.Context, sp *streamPlan, deps pipeline.Deps, m metrics, started time.Time) (*stream, firehoseapi.StreamInfo, error) {
	var none firehoseapi.StreamInfo
	sc := sp.cfg
	log := d.log.With("stream", sc.Name)
	s := &stream{name: sc.Name}
	d.streams = append(d.streams, s)
	var err error
	if s.buf, err = openBuffer(sc, d.dataDir, d.owner(), log, m); err != nil {
		return nil, none, err
	}
	var srcStart time.Time
	if sp.hasSrc {
		if s.src, s.srcEnd, srcStart, err = d.buildSource(ctx, sp, s.buf, m); err != nil {
			return nil, none, err
		}
		d.health.add(sc.Name, probe{what: "source kinesis", check: s.src.Ready})
	}
	for _, pp := range sp.procs {
		proc, err := pp.kind.build(pp.v, deps)
		if err != nil {
			return nil, none, fmt.Errorf("processor %s: %w", pp.cfg.Type, err)
		}
		s.procs = append(s.procs, proc)
	}
	if s.dest, err = sp.dest.build(ctx, sp.destV, sc.Name, deps); err != nil {
		return nil, none, fmt.Errorf("destination %s: %w", sc.Destination.Type, err)
	}
	errOut, ok := s.dest.(pipeline.ErrorOutput)
	if sp.out != nil {
		built, err := sp.out.build(ctx, sp.outV, sc.Name, deps)
		if err != nil {
			return nil, none, fmt.Errorf("error output %s: %w", sc.ErrorOutput.Type, err)
		}
		if errOut, ok = built.(pipeline.ErrorOutput); !ok {
			_ = built.Close(ctx)
			return nil, none, fmt.Errorf("error output %s: not an object store", sc.ErrorOutput.Type)
		}
		s.out = errOut
	} else if !ok {
		return nil, none, fmt.Errorf("destination %s is not an object store: it needs an error_output", sc.Destination.Type)
	}
	s.runner, err = runner.New(runner.Options{
		Processors:      s.procs,
		Stream:          sc.Name,
		Buffer:          s.buf,
		Destination:     s.dest,
		DestinationName: sc.Destination.Type,
		ErrorOutput:     errOut,
		BackupAll:       sp.mode == pipeline.BackupAllData,
		MaxInFlight:     sp.maxInFlight,
		SizeBytes:       int(sc.Buffering.Bytes()),
		Interval:        sc.Buffering.Age(),
		RetryDuration:   time.Duration(sp.retry) * time.Second,
		BackoffMax:      sp.dest.backoffMax,
		Logger:          d.log, // the runner adds stream and destination
		Metrics:         m.runner,
	})
	if err != nil {
		return nil, none, err
	}
	d.health.add(sc.Name,
		probe{what: "buffer", check: func(context.Context) error { return s.buf.Healthy() }},
		probe{what: "destination " + sc.Destination.Type, check: s.dest.Ready})
	if s.out != nil {
		d.health.add(sc.Name, probe{what: "error output " + sc.ErrorOutput.Type, check: s.out.Ready})
	}

	info := firehoseapi.StreamInfo{Name: sc.Name, Type: sc.Type, Created: started, VersionID: "1", Tags: sc.Tags,
		Quota: firehoseapi.Quota{RecordsPerSecond: float64(sc.Quota.RecordsPerSecond),
			RequestsPerSecond: float64(sc.Quota.RequestsPerSecond), BytesPerSecond: float64(sc.Quota.BytesPerSecond)}}
	if sp.hasSrc {
		info.KinesisStreamARN = sp.src.ARN(d.cfg.Region, d.cfg.AccountID)
		info.KinesisDeliveryStart = srcStart
	}
	in := pipeline.DescribeInput{
		Stream:                   sc.Name,
		StreamARN:                fmt.Sprintf("arn:aws:firehose:%s:%s:deliverystream/%s", d.cfg.Region, d.cfg.AccountID, sc.Name),
		RoleARN:                  "arn:aws:iam::" + d.cfg.AccountID + ":role/sluice",
		BufferingSizeMiB:         sc.Buffering.Size,
		BufferingIntervalSeconds: sc.Buffering.Interval,
		RetryDurationSeconds:     sp.retry,
	}
	if sp.out != nil {
		in.BackupMode = sp.mode
		if w, ok := s.out.(*object.Writer); ok {
			in.Backup = w.S3DestinationDescription(in)
		}
	}
	info.Destination = s.dest.Describe(in)
	log.Info("stream ready", "destination", sc.Destination.Type, "error_output", errorOutputName(sc),
		"backup_mode", sp.mode, "max_in_flight", sp.maxInFlight,
		"buffer", bufferDescription(sc, d.dataDir), "buffering_size_mib", sc.Buffering.Size,
		"buffering_interval_s", sc.Buffering.Interval)
	return s, info, nil
}

func errorOutputName(sc *config.Stream) string {
	if sc.ErrorOutput.IsZero() {
		return "the destination (" + sc.Destination.Type + ")"
	}
	return sc.ErrorOutput.Type
}

// Run serves until ctx is cancelled, then shuts down in order: stop intake,
// drain the runners within shutdown_timeout, close everything. Buffered
// records that could not be delivered in time stay in the buffers and are
// delivered after the next start.
func (d *Daemon) Run(ctx context.Context) error {
	runCtx, stopRunners := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunners()
	var wg sync.WaitGroup
	runErrs := make(chan error, 2*len(d.streams))
	for _, s := range d.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.runner.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				runErrs <- fmt.Errorf("stream %s: %w", s.name, err)
			}
		}()
	}
	// Sources stop with intake, before the runners drain.
	srcCtx, stopSources := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSources()
	var srcWG sync.WaitGroup
	for _, s := range d.streams {
		if s.src == nil {
			continue
		}
		srcWG.Add(1)
		go func() {
			defer srcWG.Done()
			if err := s.src.Run(srcCtx); err != nil {
				runErrs <- fmt.Errorf("stream %s: source: %w", s.name, err)
			}
		}()
	}
	healthCtx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	go d.health.run(healthCtx)
	srvErrs := make(chan error, len(d.servers))
	for _, s := range d.servers {
		s.serve(srvErrs)
		d.log.Info("listening", "server", s.name, "addr", s.ln.Addr().String(), "data_dir", d.dataDir)
	}

	var runErr error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down: intake stops, buffers drain", "timeout", d.cfg.ShutdownTimeout.String())
	case runErr = <-srvErrs:
		d.log.Error("listener failed; shutting down", "err", runErr)
	case runErr = <-runErrs:
		d.log.Error("stream failed; shutting down", "err", runErr)
	}

	deadline, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range d.servers {
		if err := s.shutdown(deadline); err != nil {
			d.log.Warn("listener did not stop cleanly", "err", err)
		}
	}
	stopSources()
	srcWG.Wait()
	for _, s := range d.streams {
		s.runner.Drain()
	}
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
		d.log.Info("all streams drained")
	case <-deadline.Done():
		d.log.Warn("shutdown timeout: undelivered records stay buffered for the next start",
			"streams_not_drained", d.undrained())
		stopRunners()
		<-drained
	}
	// The deadline may be spent: closing gets a moment of its own.
	closeCtx, cancelClose := context.WithTimeout(context.Background(), closeTimeout)
	defer cancelClose()
	d.close(closeCtx)
	return runErr
}

// closeTimeout bounds closing the components after the drain.
const closeTimeout = 5 * time.Second

// undrained names the streams whose buffers still hold undelivered
// records.
func (d *Daemon) undrained() []string {
	var names []string
	for _, s := range d.streams {
		if st := s.buf.State(); st.Head > st.Committed {
			names = append(names, s.name)
		}
	}
	return names
}

// close releases every component once: listeners never served, then per
// stream its processors, destination and error output, its buffer, and
// finally the data directory's lock.
func (d *Daemon) close(ctx context.Context) {
	for _, s := range d.servers {
		_ = s.srv.Close()
		_ = s.ln.Close()
	}
	for _, s := range d.streams {
		var cs []closer
		for _, p := range s.procs {
			if c, ok := p.(closer); ok {
				cs = append(cs, c)
			}
		}
		if s.dest != nil {
			cs = append(cs, s.dest)
		}
		if s.out != nil {
			cs = append(cs, s.out)
		}
		if err := closeAll(ctx, "stream "+s.name, cs...); err != nil {
			d.log.Warn("closing stream components", "stream", s.name, "err", err)
		}
		if s.srcEnd != nil {
			s.srcEnd()
		}
		if s.buf != nil {
			if err := s.buf.Close(); err != nil {
				d.log.Warn("closing buffer", "stream", s.name, "err", err)
			}
		}
	}
	if d.lock != nil {
		if err := d.lock.Unlock(); err != nil {
			d.log.Warn("unlocking the data directory", "err", err)
		}
	}
}

// router is the Appender the API writes to: one buffer per stream.
type router map[string]buffer.Buffer

func (r router) Append(ctx context.Context, stream string, recs []pipeline.Record) error {
	b, ok := r[stream]
	if !ok {
		return fmt.Errorf("no buffer for stream %q", stream)
	}
	return b.Append(ctx, recs)
}
