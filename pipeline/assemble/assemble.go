// Package assemble turns a loaded configuration into running streams. It is
// the one place that knows every implementation (see builtin.go) and owns
// the start-up and shutdown order:
//
//	start:    buffers → destinations → runners → listeners
//	shutdown: listeners stop intake → runners drain (within shutdown_timeout)
//	          → runners stop → destinations close → buffers close
package assemble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/config"
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
	streams []*stream
	servers []*server
}

// stream is one delivery stream's parts.
type stream struct {
	name   string
	buf    buffer.Buffer
	dest   pipeline.Destination
	procs  []pipeline.Processor
	runner *runner.Runner
}

// Check decodes and validates every component of cfg without opening
// anything: what `sluice validate` runs after config.Load.
func Check(cfg *config.Config) error {
	var errs config.Errors
	kinds := destinationKinds()
	pkinds := processorKinds()
	for i := range cfg.Streams {
		s := &cfg.Streams[i]
		k, ok := kinds[s.Destination.Type]
		if !ok {
			errs = append(errs, s.Destination.Pos.Errorf("stream %q: unknown destination type %q (known: %s)", s.Name, s.Destination.Type, kindNames(kinds)))
			continue
		}
		if err := k.check(s.Destination); err != nil {
			errs = appendErr(errs, s.Destination.Pos, err)
		}
		errs = append(errs, checkPartitionKeys(s, pkinds)...)
		last := -1
		for _, p := range s.Processors {
			pk, ok := pkinds[p.Type]
			if !ok {
				errs = append(errs, p.Pos.Errorf("stream %q: unknown processor type %q (known: %s)", s.Name, p.Type, kindNames(pkinds)))
				continue
			}
			if err := pk.check(p); err != nil {
				errs = appendErr(errs, p.Pos, err)
				continue
			}
			if r := pk.rank(p); r < last {
				errs = append(errs, p.Pos.Errorf("stream %q: processor %s must come before %s: processors run in Firehose's order: %s",
					s.Name, rankNames[r], rankNames[last], strings.Join(rankNames, ", ")))
			} else {
				last = r
			}
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return errs
	}
	return nil
}

func appendErr(errs config.Errors, at config.Pos, err error) config.Errors {
	var ce config.Errors
	if errors.As(err, &ce) {
		return append(errs, ce...)
	}
	return append(errs, at.Errorf("%v", err))
}

// New checks cfg, then provisions every stream: opens its buffer, builds its
// destination and runner, and binds the listeners. On error everything
// opened so far is closed again.
func New(cfg *config.Config, opts Options) (d *Daemon, err error) {
	if err := Check(cfg); err != nil {
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

	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	deps := pipeline.Deps{Logger: log, Registry: reg, DataDir: dataDir, Region: cfg.Region, AccountID: cfg.AccountID}
	kinds := destinationKinds()
	var infos []firehoseapi.StreamInfo
	bufs := map[string]buffer.Buffer{}
	started := time.Now()
	for i := range cfg.Streams {
		sc := &cfg.Streams[i]
		slog := log.With("stream", sc.Name)
		s := &stream{name: sc.Name}
		d.streams = append(d.streams, s)
		if s.buf, err = openBuffer(sc, dataDir, slog, m); err != nil {
			return nil, err
		}
		bufs[sc.Name] = s.buf
		built, err := kinds[sc.Destination.Type].build(sc, deps)
		if err != nil {
			return nil, fmt.Errorf("stream %s: destination %s: %w", sc.Name, sc.Destination.Type, err)
		}
		s.dest = built.dest
		for _, pc := range sc.Processors {
			p, err := processorKinds()[pc.Type].build(pc, deps)
			if err != nil {
				return nil, fmt.Errorf("stream %s: processor %s: %w", sc.Name, pc.Type, err)
			}
			s.procs = append(s.procs, p)
		}
		s.runner, err = runner.New(runner.Options{
			Processors:      s.procs,
			Stream:          sc.Name,
			Buffer:          s.buf,
			Destination:     built.dest,
			DestinationName: sc.Destination.Type,
			DeadLetters:     built.deadLetters,
			SizeBytes:       int(sc.Buffering.Bytes()),
			Interval:        sc.Buffering.Age(),
			RetryDuration:   sc.Retry.Budget(),
			Logger:          log, // the runner adds stream and destination
			Metrics:         m.runner,
		})
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", sc.Name, err)
		}
		info := built.info
		info.Name, info.Type, info.Created, info.VersionID, info.Tags = sc.Name, sc.Type, started, "1", sc.Tags
		info.Destination.BufferingSizeMiB = sc.Buffering.Size
		info.Destination.BufferingIntervalSeconds = sc.Buffering.Interval
		infos = append(infos, info)
		slog.Info("stream ready", "destination", sc.Destination.Type, "writes_to", built.where,
			"buffer", bufferDescription(sc, dataDir), "buffering_size_mib", sc.Buffering.Size,
			"buffering_interval_s", sc.Buffering.Interval)
	}

	api, err := firehoseapi.NewHandler(firehoseapi.Config{
		Region: cfg.Region, AccountID: cfg.AccountID, Streams: infos,
		Appender: router(bufs), Logger: log, Metrics: m.api,
	})
	if err != nil {
		return nil, fmt.Errorf("firehose api: %w", err)
	}
	ops := opsHandler(reg, d.ready)
	if cfg.AdminListen == "" {
		s, err := listen("api", cfg.Listen, apiWithOps(api, ops), log)
		if err != nil {
			return nil, err
		}
		d.servers = append(d.servers, s)
	} else {
		s, err := listen("api", cfg.Listen, api, log)
		if err != nil {
			return nil, err
		}
		d.servers = append(d.servers, s)
		a, err := listen("admin", cfg.AdminListen, ops, log)
		if err != nil {
			return nil, err
		}
		d.servers = append(d.servers, a)
	}
	return d, nil
}

// ready reports whether every buffer is open; destinations are checked by
// their runners' delivery results (see the delivery metrics).
func (d *Daemon) ready() error {
	for _, s := range d.streams {
		if s.buf == nil {
			return fmt.Errorf("stream %s: buffer not open", s.name)
		}
	}
	return nil
}

// Run serves until ctx is cancelled, then shuts down in order: stop intake,
// drain the runners within shutdown_timeout, close everything. Buffered
// records that could not be delivered in time stay in the buffers and are
// delivered after the next start.
func (d *Daemon) Run(ctx context.Context) error {
	runCtx, stopRunners := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunners()
	var wg sync.WaitGroup
	runErrs := make(chan error, len(d.streams))
	for _, s := range d.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.runner.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				runErrs <- fmt.Errorf("stream %s: %w", s.name, err)
			}
		}()
	}
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
	for _, s := range d.streams {
		s.runner.Drain()
	}
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
		d.log.Info("all streams drained")
	case <-deadline.Done():
		d.log.Warn("shutdown timeout: undelivered records stay buffered for the next start")
		stopRunners()
		<-drained
	}
	d.close(deadline)
	return runErr
}

// close releases destinations and buffers (and listeners never served).
func (d *Daemon) close(ctx context.Context) {
	for _, s := range d.servers {
		_ = s.srv.Close()
		_ = s.ln.Close()
	}
	for _, s := range d.streams {
		for _, p := range s.procs {
			if c, ok := p.(interface{ Close() error }); ok {
				if err := c.Close(); err != nil {
					d.log.Warn("closing processor", "stream", s.name, "err", err)
				}
			}
		}
		if s.dest != nil {
			if err := s.dest.Close(ctx); err != nil {
				d.log.Warn("closing destination", "stream", s.name, "err", err)
			}
		}
		if s.buf != nil {
			if err := s.buf.Close(); err != nil {
				d.log.Warn("closing buffer", "stream", s.name, "err", err)
			}
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
