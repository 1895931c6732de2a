package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluice-dev/sluice/pipeline"
)

// Client is the part of the Kinesis client a source uses.
type Client interface {
	ShardLister
	RecordReader
}

// Buffer is what a source needs of its stream's buffer: appends that are
// durable when they return, and the source positions (shard id →
// sequence number) of the records durable in it, tracked with the records
// themselves (buffer/disk Options.Track on pipeline.MetaShardID and
// pipeline.MetaSequenceNumber).
type Buffer interface {
	Append(ctx context.Context, recs []pipeline.Record) error
	Positions() map[string]string
}

// Assignment is a shard this instance is to read now, from a Scheduler.
type Assignment struct {
	Shard string
	// Start is where to read from when no record of the shard is
	// buffered here, or when Start.After is later than the last one
	// buffered (a fleet's checkpoint written by another instance).
	Start Start
	// Pending, in a fleet, is the last sequence number the shard's
	// previous owner was about to buffer: when it died, records after
	// Start.After up to Pending may be buffered there already. Those read
	// again are counted (MetricRedelivered).
	Pending string
	// Intend, if set, is called before records up to seq are appended
	// (a fleet notes the window); Progress after they are durable (a
	// fleet checkpoints its lease). An error stops the reader: in a fleet
	// it means the lease is lost.
	Intend, Progress func(ctx context.Context, seq string) error
	// Finish is called once the shard is read to its end, with the
	// children Kinesis reported (possibly none: the scheduler lists the
	// shards again).
	Finish func(ctx context.Context, children []types.ChildShard) error
}

// Scheduler decides which shards this instance reads: Run calls read, in
// a goroutine per shard, for every shard to read now, cancels its context
// when it must stop, and returns when ctx ends and every read returned.
// Local (one instance: shards.json beside the buffer) and package lease's
// fleet scheduler implement it.
type Scheduler interface {
	Run(ctx context.Context, read func(ctx context.Context, a Assignment) error) error
}

// SourceOptions are what a Source is built from besides its options.
type SourceOptions struct {
	// Stream is the delivery stream the records go to (metrics, logs).
	Stream string
	// KinesisStream is the Kinesis stream as configured: its name or ARN.
	KinesisStream string
	// StreamARN is the Kinesis stream's ARN, set on every record
	// (sourceKinesisStreamArn).
	StreamARN string
	Client    Client
	Buffer    Buffer
	Scheduler Scheduler
	Read      ReadOptions
	Metrics   *Metrics
	Logger    *slog.Logger
}

// Source reads a Kinesis stream's shards into a stream's buffer.
type Source struct {
	o   SourceOptions
	log *slog.Logger
	m   *streamMetrics

	reading atomic.Int64
	mu      sync.Mutex
	lastOK  time.Time
	lastErr error
	errAt   time.Time
}

// NewSource returns a source; Run starts it.
func NewSource(o SourceOptions) (*Source, error) {
	if o.Client == nil || o.Buffer == nil || o.Scheduler == nil || o.KinesisStream == "" {
		return nil, errors.New("kinesis source: KinesisStream, Client, Buffer and Scheduler are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		o.Metrics = m
	}
	o.Read.defaults()
	return &Source{o: o, log: o.Logger, m: o.Metrics.forStream(o.Stream)}, nil
}

// Run reads until ctx ends, then returns nil once every shard reader has
// stopped. Records taken are durable in the buffer; nothing is lost or
// read twice when Run starts again on the same buffer.
func (s *Source) Run(ctx context.Context) error {
	err := s.o.Scheduler.Run(ctx, s.read)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Ready reports whether the source can reach Kinesis: the last call to
// it (any shard's, or the scheduler's ListShards) succeeded, or the
// failure is not newer than the last success.
func (s *Source) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil && !s.errAt.Before(s.lastOK) {
		return s.lastErr
	}
	return nil
}

// Event records the outcome of a Kinesis call, for readiness and metrics:
// the shard readers' ReadOptions.Event, and a scheduler's for its own
// calls (ListShards).
// Failures are logged when they begin (and recoveries when they end), not
// at every retry.
func (s *Source) Event(kind string, err error) {
	switch kind {
	case "OK":
		s.mu.Lock()
		failing := s.lastErr != nil && !s.errAt.Before(s.lastOK)
		s.lastOK = time.Now()
		s.mu.Unlock()
		if failing {
			s.log.Info("kinesis source: Kinesis answers again")
		}
	case "ThrottledGetRecords":
		s.m.throttledRecords.Inc()
		s.ok()
	case "ThrottledGetShardIterator":
		s.m.throttledIterators.Inc()
		s.ok()
	case "ExpiredIterator":
		s.m.expired.Inc()
		s.ok()
	default:
		s.m.errors.Inc()
		s.mu.Lock()
		failing := s.lastErr != nil && !s.errAt.Before(s.lastOK)
		s.lastErr, s.errAt = err, time.Now()
		s.mu.Unlock()
		if !failing {
			s.log.Warn("kinesis source: calls to Kinesis fail; retrying with backoff (the stream is not ready meanwhile)", "err", err)
		}
	}
}

// ok notes an answer from Kinesis (a throttle is one: the endpoint is up).
func (s *Source) ok() { s.Event("OK", nil) }

// LeaseEvent counts a fleet's lease change ("taken", "stolen", "lost",
// "released"; "" for none) and sets the number of leases held after it.
func (s *Source) LeaseEvent(event string, held int) {
	if event != "" {
		s.m.leaseEvent(event)
	}
	s.m.leases.Set(float64(held))
}

// read reads one assigned shard until it ends or ctx does.
func (s *Source) read(ctx context.Context, a Assignment) error {
	log := s.log.With("shard", a.Shard)
	sm := s.m.forShard(a.Shard)
	s.m.shards.Set(float64(s.reading.Add(1)))
	defer func() {
		s.m.shards.Set(float64(s.reading.Add(-1)))
		s.m.dropShard(a.Shard)
	}()
	start := a.Start
	if local := s.o.Buffer.Positions()[a.Shard]; local != "" && (start.After == "" || CompareSeq(local, start.After) > 0) {
		// Buffered here already (a fleet's checkpoint can lag behind
		// what this instance buffered before it lost the lease).
		start.After = local
	}
	pending := a.Pending
	if pending != "" && start.After != "" && CompareSeq(pending, start.After) <= 0 {
		pending = ""
	}
	log.Info("kinesis source: reading shard", "after", start.After, "position", start.Position)
	ro := s.o.Read
	ro.Event = s.Event
	var recs []pipeline.Record
	var children []types.ChildShard
	err := ReadShard(ctx, s.o.Client, s.o.KinesisStream, a.Shard, start, ro, func(ctx context.Context, p Page) error {
		sm.behind.Set(float64(p.MillisBehindLatest))
		if p.End {
			children = p.ChildShards
		}
		if len(p.Records) == 0 {
			return nil
		}
		last := aws.ToString(p.Records[len(p.Records)-1].SequenceNumber)
		if a.Intend != nil {
			if err := a.Intend(ctx, last); err != nil {
				return err
			}
		}
		recs = Records(recs[:0], s.o.StreamARN, a.Shard, p.Records)
		if err := s.append(ctx, recs); err != nil {
			return err
		}
		n, bytes := 0, 0
		for i := range recs {
			bytes += len(recs[i].Data)
			if pending != "" && CompareSeq(recs[i].Meta[pipeline.MetaSequenceNumber], pending) <= 0 {
				n++
			}
		}
		sm.records.Add(float64(len(recs)))
		sm.bytes.Add(float64(bytes))
		if n > 0 {
			s.m.redelivered.Add(float64(n))
		}
		clear(recs)
		if a.Progress != nil {
			sm.uncheckpointed.Set(float64(len(p.Records)))
			if err := a.Progress(ctx, last); err != nil {
				return err
			}
			sm.uncheckpointed.Set(0)
			sm.checkpointT.SetToCurrentTime()
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Read to its end: everything in it is buffered.
	log.Info("kinesis source: shard read to its end")
	if a.Finish != nil {
		if err := a.Finish(ctx, children); err != nil {
			return fmt.Errorf("shard %s ended: %w", a.Shard, err)
		}
	}
	return nil
}

// append appends recs, waiting while the buffer is full (backpressure:
// the shard is not read meanwhile, nothing is dropped) or failing (a
// failed fsync, which the buffer recovers from by itself), until ctx ends.
// A page that does not fit is appended in smaller runs (halved until one
// fits, down to one record), so a page larger than the buffer's quota
// still goes in as the buffer drains; each run is durable with its
// records' positions, so a crash between runs loses and repeats nothing.
func (s *Source) append(ctx context.Context, recs []pipeline.Record) error {
	for len(recs) > 0 {
		n := len(recs)
		for fails := 0; ; {
			err := s.o.Buffer.Append(ctx, recs[:n])
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, pipeline.ErrClosed) {
				return err
			}
			if errors.Is(err, pipeline.ErrFull) {
				if n > 1 {
					n = (n + 1) / 2
					continue
				}
				s.m.waits.Inc()
			} else if fails%10 == 0 {
				s.log.Warn("kinesis source: the buffer refuses records; retrying", "err", err)
			}
			if err := pipeline.Sleep(ctx, pipeline.Backoff(50*time.Millisecond, 2*time.Second, min(fails, 10))); err != nil {
				return err
			}
			fails++
		}
		recs = recs[n:]
	}
	return nil
}
