package assemble

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/ingest/firehoseapi"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/runner"
)

// stream is one delivery stream's parts and the goroutines running them.
// Its parts are built in two steps, so that a reload can build a changed
// stream's new parts while the old ones still run: buildParts (processors,
// destination, error output: no buffer needed) and attach (the source and
// the runner over a buffer).
type stream struct {
	name   string
	plan   *streamPlan
	prints prints

	buf    buffer.Buffer
	src    runnable // nil for a DirectPut stream
	srcEnd func()   // releases what the source holds (a fleet's pool)
	dest   pipeline.Destination
	out    pipeline.ErrorOutput // nil when dest is its own error output
	procs  []pipeline.Processor
	runner *runner.Runner
	probes []probe
	info   firehoseapi.StreamInfo

	// The running goroutines: hard stops and completion.
	stopRunner context.CancelFunc
	runnerDone chan struct{}
	stopSrc    context.CancelFunc
	srcDone    chan struct{}
}

// prints are a stream block's fingerprints, which a reload compares: api
// covers what only the API uses (tags, quota), core everything the
// runner and its components use (with the contents of the files they
// read, such as a WASM module), buf the buffer's options.
type prints struct{ api, core, buf string }

// filer is implemented by checked options whose component reads files
// when it is built (a WASM module): a reload rebuilds the stream when
// one of them changes, even if the configuration does not.
type filer interface{ Files() []string }

func fingerprints(sp *streamPlan, cfg *config.Config) prints {
	s := sp.cfg
	node := func(c config.Component) string {
		if c.IsZero() {
			return ""
		}
		b, err := yaml.Marshal(c.Node)
		if err != nil {
			return "unprintable: " + err.Error()
		}
		return string(b)
	}
	files := map[string]string{}
	vals := []checked{sp.destV, sp.outV}
	for _, p := range sp.procs {
		vals = append(vals, p.v)
	}
	if sp.hasSrc {
		vals = append(vals, sp.src)
	}
	for _, v := range vals {
		f, ok := v.(filer)
		if !ok {
			continue
		}
		for _, path := range f.Files() {
			b, err := os.ReadFile(path)
			if err != nil {
				files[path] = err.Error()
				continue
			}
			sum := sha256.Sum256(b)
			files[path] = hex.EncodeToString(sum[:])
		}
	}
	var procs []string
	for _, p := range s.Processors {
		procs = append(procs, node(p))
	}
	print := func(v any) string {
		b, _ := json.Marshal(v) // plain values: cannot fail
		return string(b)
	}
	buf := print(struct {
		Buffer     config.Buffer
		Track      bool
		Encryption config.StreamEncryption
		Keys       string
	}{s.Buffer, trackPositions(s), s.Encryption, sp.keyPrint})
	return prints{
		api: print(struct {
			Tags  map[string]string
			Quota config.Quota
		}{s.Tags, s.Quota}),
		buf: buf,
		core: print(struct {
			Type, Buf, Source, Destination, ErrorOutput string
			Buffering                                   config.Buffering
			Retry                                       int
			RetryWritten                                bool
			MaxInFlight                                 int
			Processors                                  []string
			Region, AccountID                           string
			Files                                       map[string]string
		}{s.Type, buf, node(s.Source), node(s.Destination), node(s.ErrorOutput), s.Buffering, s.Retry.Duration,
			s.Retry.Written, s.MaxInFlight, procs, cfg.Region, cfg.AccountID, files}),
	}
}

// buildParts builds a stream's processors, destination and error output.
// On error what it built is closed again.
func (d *Daemon) buildParts(ctx context.Context, sp *streamPlan, cfg *config.Config) (s *stream, err error) {
	sc := sp.cfg
	s = &stream{name: sc.Name, plan: sp, prints: fingerprints(sp, cfg)}
	defer func() {
		if err != nil {
			s.closeParts(ctx, d)
			s = nil
		}
	}()
	deps := d.deps(cfg)
	deps.Keys = sp.keys
	for _, pp := range sp.procs {
		proc, err := pp.kind.build(pp.v, deps)
		if err != nil {
			return nil, fmt.Errorf("processor %s: %w", pp.cfg.Type, err)
		}
		s.procs = append(s.procs, proc)
	}
	if s.dest, err = sp.dest.build(ctx, sp.destV, sc.Name, deps); err != nil {
		return nil, fmt.Errorf("destination %s: %w", sc.Destination.Type, err)
	}
	_, ok := s.dest.(pipeline.ErrorOutput)
	if sp.out != nil {
		built, err := sp.out.build(ctx, sp.outV, sc.Name, deps)
		if err != nil {
			return nil, fmt.Errorf("error output %s: %w", sc.ErrorOutput.Type, err)
		}
		if s.out, ok = built.(pipeline.ErrorOutput); !ok {
			_ = built.Close(ctx)
			return nil, fmt.Errorf("error output %s: not an object store", sc.ErrorOutput.Type)
		}
	} else if !ok {
		return nil, fmt.Errorf("destination %s is not an object store: it needs an error_output", sc.Destination.Type)
	}
	return s, nil
}

// attach builds the stream's source (when it has one) and runner over buf,
// its readiness probes and its description for the API. On error the
// source built is released; the caller closes the rest.
func (d *Daemon) attach(ctx context.Context, s *stream, buf buffer.Buffer, cfg *config.Config) error {
	sp, sc := s.plan, s.plan.cfg
	s.buf = buf
	var srcStart time.Time
	var err error
	s.probes = nil
	if sp.hasSrc {
		if s.src, s.srcEnd, srcStart, err = d.buildSource(ctx, sp, buf, cfg); err != nil {
			return err
		}
		s.probes = append(s.probes, probe{what: "source kinesis", check: s.src.Ready})
	}
	errOut := s.out
	if errOut == nil {
		errOut = s.dest.(pipeline.ErrorOutput) // buildParts checked it
	}
	s.runner, err = runner.New(runner.Options{
		Processors:      s.procs,
		Stream:          sc.Name,
		Buffer:          buf,
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
		Metrics:         d.m.runner,
	})
	if err != nil {
		return err
	}
	s.probes = append(s.probes,
		probe{what: "buffer", check: func(context.Context) error { return buf.Healthy() }},
		probe{what: "destination " + sc.Destination.Type, check: s.dest.Ready})
	if s.out != nil {
		s.probes = append(s.probes, probe{what: "error output " + sc.ErrorOutput.Type, check: s.out.Ready})
	}
	s.info = d.describe(s, cfg, srcStart)
	d.log.Info("stream ready", "stream", sc.Name, "destination", sc.Destination.Type, "error_output", errorOutputName(sc),
		"backup_mode", sp.mode, "max_in_flight", sp.maxInFlight,
		"buffer", bufferDescription(sc, d.dataDir), "buffering_size_mib", sc.Buffering.Size,
		"buffering_interval_s", sc.Buffering.Interval)
	return nil
}

// describe is the stream as the API reports it.
func (d *Daemon) describe(s *stream, cfg *config.Config, srcStart time.Time) firehoseapi.StreamInfo {
	sp, sc := s.plan, s.plan.cfg
	info := firehoseapi.StreamInfo{Name: sc.Name, Type: sc.Type, Created: d.started, VersionID: "1", Tags: sc.Tags,
		Quota: firehoseapi.Quota{RecordsPerSecond: float64(sc.Quota.RecordsPerSecond),
			RequestsPerSecond: float64(sc.Quota.RequestsPerSecond), BytesPerSecond: float64(sc.Quota.BytesPerSecond)}}
	if sp.hasSrc {
		info.KinesisStreamARN = sp.src.ARN(cfg.Region, cfg.AccountID)
		info.KinesisDeliveryStart = srcStart
	}
	if sp.keys.Sealing() {
		// The operator's own key, as a customer managed KMS key is: its
		// ARN names the key id (the key is not in KMS).
		info.Encryption = &firehoseapi.Encryption{KeyType: "CUSTOMER_MANAGED_CMK",
			KeyARN: fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", cfg.Region, cfg.AccountID, sp.keys.Current())}
	}
	in := pipeline.DescribeInput{
		Stream:                   sc.Name,
		StreamARN:                fmt.Sprintf("arn:aws:firehose:%s:%s:deliverystream/%s", cfg.Region, cfg.AccountID, sc.Name),
		RoleARN:                  "arn:aws:iam::" + cfg.AccountID + ":role/sluice",
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
	return info
}

func errorOutputName(sc *config.Stream) string {
	if sc.ErrorOutput.IsZero() {
		return "the destination (" + sc.Destination.Type + ")"
	}
	return sc.ErrorOutput.Type
}

// start runs the stream's runner and source, each in its own goroutine
// until stopped; an error other than a stop's goes to d.runErrs.
func (d *Daemon) start(s *stream) {
	runCtx, stopRunner := context.WithCancel(context.Background())
	s.stopRunner, s.runnerDone = stopRunner, make(chan struct{})
	go func() {
		defer close(s.runnerDone)
		if err := s.runner.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			d.fail(fmt.Errorf("stream %s: %w", s.name, err))
		}
	}()
	if s.src == nil {
		return
	}
	srcCtx, stopSrc := context.WithCancel(context.Background())
	s.stopSrc, s.srcDone = stopSrc, make(chan struct{})
	go func() {
		defer close(s.srcDone)
		if err := s.src.Run(srcCtx); err != nil && !errors.Is(err, context.Canceled) {
			d.fail(fmt.Errorf("stream %s: source: %w", s.name, err))
		}
	}()
}

// stopSource stops the stream's source and waits for it.
func (s *stream) stopSource() {
	if s.stopSrc == nil {
		return
	}
	s.stopSrc()
	<-s.srcDone
}

// halt stops the runner and waits for it: drain delivers everything
// buffered first, otherwise it finishes the batches in flight only (Stop).
// When ctx ends first the deliveries are abandoned (their batches stay
// marked in flight, for the next runner to redeliver identically); halt
// reports whether the runner finished in time.
func (s *stream) halt(ctx context.Context, drain bool) bool {
	if s.runnerDone == nil {
		return true
	}
	if drain {
		s.runner.Drain()
	} else {
		s.runner.Stop()
	}
	select {
	case <-s.runnerDone:
		return true
	case <-ctx.Done():
		s.stopRunner()
		<-s.runnerDone
		return false
	}
}

// closeParts closes the processors, destination and error output once,
// and releases the source.
func (s *stream) closeParts(ctx context.Context, d *Daemon) {
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
	s.procs, s.dest, s.out = nil, nil, nil
	if s.srcEnd != nil {
		s.srcEnd()
		s.srcEnd = nil
	}
}

// closeBuffer closes the stream's buffer (its records stay on disk).
func (d *Daemon) closeBuffer(name string, b buffer.Buffer) {
	if b == nil {
		return
	}
	if err := b.Close(); err != nil {
		d.log.Warn("closing buffer", "stream", name, "err", err)
	}
}
