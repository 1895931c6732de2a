package assemble

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/ingest/kinesis"
	"github.com/sluice-dev/sluice/ingest/kinesis/lease"
)

// sourceKind describes one source type: what a KinesisStreamAsSource
// stream's source block may hold.
type sourceKind struct {
	options any
	check   func(c config.Component) (checked, config.Errors)
}

func sourceKinds() map[string]sourceKind {
	return map[string]sourceKind{
		"kinesis": {
			options: kinesis.Options{},
			check: func(c config.Component) (checked, config.Errors) {
				return decodeAndCompile(c, kinesis.DefaultOptions, kinesis.Compile)
			},
		},
	}
}

// checkSource checks a stream's source block (present exactly when the
// stream's type is KinesisStreamAsSource: config checks that).
func checkSource(s *config.Stream, sp *streamPlan) config.Errors {
	if s.Source.IsZero() {
		return nil
	}
	kinds := sourceKinds()
	k, ok := kinds[s.Source.Type]
	if !ok {
		return config.Errors{s.Source.KeyErrorf("type", "unknown source type %q (known: %s)", s.Source.Type, kindNames(kinds))}
	}
	v, errs := k.check(s.Source)
	if len(errs) > 0 {
		return errs
	}
	sp.src = v.(kinesis.Compiled)
	sp.hasSrc = true
	return nil
}

// runnable is a built source: Run reads until ctx ends.
type runnable interface {
	Run(ctx context.Context) error
	Ready(ctx context.Context) error
}

// buildSource builds a stream's Kinesis source over its buffer (opened
// with the source positions tracked) and its scheduler: Local, with its
// state under <data_dir>/source/<stream>, or the fleet's leases.
func (d *Daemon) buildSource(ctx context.Context, sp *streamPlan, buf buffer.Buffer, cfg *config.Config) (runnable, func(), time.Time, error) {
	sc := sp.cfg
	tracked, ok := buf.(kinesis.Buffer)
	if !ok {
		return nil, nil, time.Time{}, fmt.Errorf("source kinesis: the stream's buffer does not track source positions")
	}
	var none time.Time
	stateDir := filepath.Join(d.dataDir, "source", sc.Name)
	started, err := kinesis.Bind(stateDir, sp.src.Stream())
	if err != nil {
		return nil, nil, none, fmt.Errorf("source kinesis: %w", err)
	}
	client, err := kinesis.NewClient(ctx, sp.src)
	if err != nil {
		return nil, nil, none, err
	}
	log := d.log.With("stream", sc.Name, "source", "kinesis", "kinesis_stream", sp.src.Stream())
	so := kinesis.SourceOptions{
		Stream:        sc.Name,
		KinesisStream: sp.src.Stream(),
		StreamARN:     sp.src.ARN(cfg.Region, cfg.AccountID),
		Client:        client,
		Buffer:        tracked,
		Read:          sp.src.Read(),
		Metrics:       d.m.kinesis,
		Logger:        log,
	}
	cleanup := func() {}
	var local *kinesis.Local
	var fleet *lease.Fleet
	if fo := sp.src.FleetOptions(); fo != nil {
		worker := fo.Worker
		if worker == "" {
			host, _ := os.Hostname()
			worker = host + "/" + cfg.Listen
		}
		fleet, err = lease.NewFleet(ctx, lease.FleetConfig{
			DSN: fo.DSN, Schema: fo.Schema, Table: fo.Table, Worker: worker, Duration: fo.LeaseDuration,
			Stream: sp.src.Stream(), Lister: client, Start: sp.src.Start(), Discover: sp.src.Discover(), Logger: log,
		})
		if err != nil {
			return nil, nil, none, fmt.Errorf("source kinesis: %w", err)
		}
		cleanup = fleet.Close
		so.Scheduler = fleet
	} else {
		local = &kinesis.Local{Lister: client, Stream: sp.src.Stream(), Dir: stateDir,
			Start: sp.src.Start(), Discover: sp.src.Discover(), Logger: log}
		so.Scheduler = local
	}
	src, err := kinesis.NewSource(so)
	if err != nil {
		cleanup()
		return nil, nil, none, err
	}
	if local != nil {
		local.Event = src.Event
	}
	if fleet != nil {
		fleet.SetEvents(src.Event, src.LeaseEvent)
	}
	return src, cleanup, started, nil
}

// trackPositions is the buffer option of a stream with a Kinesis source:
// its checkpoints are the shard ids and sequence numbers of its records.
func trackPositions(s *config.Stream) bool { return s.Type == config.StreamKinesisStreamAsSource }
