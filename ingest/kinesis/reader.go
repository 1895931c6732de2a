package kinesis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluice-dev/sluice/pipeline"
)

// RecordReader is the part of the Kinesis client a shard reader uses.
type RecordReader interface {
	GetShardIterator(ctx context.Context, in *awskinesis.GetShardIteratorInput, opts ...func(*awskinesis.Options)) (*awskinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *awskinesis.GetRecordsInput, opts ...func(*awskinesis.Options)) (*awskinesis.GetRecordsOutput, error)
}

// Start is where a shard is read from: a checkpoint (after its sequence
// number), or, for a shard without one, the stream's starting position.
type Start struct {
	// After is the last sequence number already taken ("" for none).
	After string
	// Position applies without After: TRIM_HORIZON, LATEST or
	// AT_TIMESTAMP (with Timestamp).
	Position  types.ShardIteratorType
	Timestamp time.Time
}

// Page is one GetRecords answer handed to the reader's caller.
type Page struct {
	Records            []types.Record
	MillisBehindLatest int64
	// End says the shard is closed and read to its end: its children may
	// be read once their other parents end too.
	End         bool
	ChildShards []types.ChildShard
}

// ReadOptions are a shard reader's pace and limits.
type ReadOptions struct {
	// Poll is the wait after an empty answer (Firehose polls each shard
	// once a second). Behind the tip, the next call waits only
	// MinInterval.
	Poll time.Duration
	// MinInterval spaces calls on a shard (5 GetRecords calls/s per shard
	// for all its consumers: 200 ms is all of them).
	MinInterval time.Duration
	// Limit is GetRecords' record limit (1..10000).
	Limit int32
	// BackoffBase and BackoffMax bound the full-jitter backoff after a
	// throttled or failed call.
	BackoffBase, BackoffMax time.Duration
	// ThrottleMin is the least wait after a throttled GetRecords: a
	// shard's read limits are per second, so sooner is throttled again.
	ThrottleMin time.Duration
	// Event, if set, is told of throttles ("ThrottledGetRecords",
	// "ThrottledGetShardIterator"), expired iterators ("ExpiredIterator")
	// and other failures ("Error", with the error), for metrics and
	// readiness; a successful call reports "OK".
	Event func(kind string, err error)
}

func (o *ReadOptions) defaults() {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.MinInterval <= 0 {
		o.MinInterval = 200 * time.Millisecond
	}
	if o.Limit <= 0 || o.Limit > 10000 {
		o.Limit = 10000
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 100 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 10 * time.Second
	}
	if o.ThrottleMin <= 0 {
		o.ThrottleMin = time.Second
	}
	if o.Event == nil {
		o.Event = func(string, error) {}
	}
}

// ReadShard reads shard of stream from start until the shard ends (its
// last page has End set) or ctx ends, handing every page with records,
// and the last one, to emit in order. It retries throttled and failed
// calls with backoff for as long as ctx lasts; an expired iterator is
// replaced by one after the last record emitted. emit's error stops the
// reader and is returned: a page is taken only when emit returns nil, and
// the next iterator then starts after it.
func ReadShard(ctx context.Context, api RecordReader, stream, shard string, start Start, o ReadOptions,
	emit func(context.Context, Page) error) error {
	o.defaults()
	after := start.After
	iterator, err := shardIterator(ctx, api, stream, shard, start, after, o)
	if err != nil {
		return err
	}
	var last time.Time
	for fails := 0; ; {
		if err := pipeline.Sleep(ctx, time.Until(last.Add(o.MinInterval))); err != nil {
			return err
		}
		last = time.Now()
		out, err := api.GetRecords(ctx, &awskinesis.GetRecordsInput{ShardIterator: aws.String(iterator), Limit: aws.Int32(o.Limit)})
		var expired *types.ExpiredIteratorException
		var throttled *types.ProvisionedThroughputExceededException
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &expired):
			// Iterators last 5 minutes: a long stall (a full buffer) outlives
			// one. Start again after the last record taken.
			o.Event("ExpiredIterator", err)
			if iterator, err = shardIterator(ctx, api, stream, shard, start, after, o); err != nil {
				return err
			}
			continue
		case errors.As(err, &throttled):
			o.Event("ThrottledGetRecords", err)
			fails++
			if err := pipeline.Sleep(ctx, max(pipeline.Backoff(o.BackoffBase, o.BackoffMax, fails-1), o.ThrottleMin)); err != nil {
				return err
			}
			continue
		case err != nil:
			o.Event("Error", fmt.Errorf("get records of %s shard %s: %w", stream, shard, err))
			fails++
			if err := pipeline.Sleep(ctx, pipeline.Backoff(o.BackoffBase, o.BackoffMax, fails-1)); err != nil {
				return err
			}
			continue
		}
		fails = 0
		o.Event("OK", nil)
		page := Page{Records: out.Records, MillisBehindLatest: aws.ToInt64(out.MillisBehindLatest),
			End: out.NextShardIterator == nil, ChildShards: out.ChildShards}
		if len(page.Records) > 0 || page.End {
			if err := emit(ctx, page); err != nil {
				return err
			}
			if n := len(page.Records); n > 0 {
				after = aws.ToString(page.Records[n-1].SequenceNumber)
			}
		}
		if page.End {
			return nil
		}
		iterator = aws.ToString(out.NextShardIterator)
		if len(page.Records) == 0 || page.MillisBehindLatest == 0 && len(page.Records) < int(o.Limit) {
			// At the tip: wait a poll interval (from this call's start).
			// A full page is not the tip, whatever MillisBehindLatest says
			// (kinesalite always says 0).
			if err := pipeline.Sleep(ctx, time.Until(last.Add(o.Poll))); err != nil {
				return err
			}
		}
	}
}

// shardIterator gets an iterator after the sequence number after, or at
// start's position when there is none, retrying throttles and failures.
func shardIterator(ctx context.Context, api RecordReader, stream, shard string, start Start, after string, o ReadOptions) (string, error) {
	in := &awskinesis.GetShardIteratorInput{ShardId: aws.String(shard)}
	if isARN(stream) {
		in.StreamARN = aws.String(stream)
	} else {
		in.StreamName = aws.String(stream)
	}
	switch {
	case after != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(after)
	case start.Position == types.ShardIteratorTypeAtTimestamp:
		in.ShardIteratorType, in.Timestamp = start.Position, aws.Time(start.Timestamp)
	case start.Position == "":
		in.ShardIteratorType = types.ShardIteratorTypeLatest // Firehose's default
	default:
		in.ShardIteratorType = start.Position
	}
	for fails := 0; ; fails++ {
		out, err := api.GetShardIterator(ctx, in)
		if err == nil {
			return aws.ToString(out.ShardIterator), nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var throttled *types.ProvisionedThroughputExceededException
		if errors.As(err, &throttled) {
			o.Event("ThrottledGetShardIterator", err)
		} else {
			o.Event("Error", fmt.Errorf("get shard iterator of %s shard %s: %w", stream, shard, err))
		}
		if err := pipeline.Sleep(ctx, pipeline.Backoff(o.BackoffBase, o.BackoffMax, fails)); err != nil {
			return "", err
		}
	}
}
