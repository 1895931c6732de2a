package kinesis

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

// peer is a kinesalite with a client and one fresh stream.
type peer struct {
	t      *testing.T
	ctx    context.Context
	client *awskinesis.Client
	stream string
}

func newPeer(t *testing.T, shards int32) *peer {
	k := testpeers.StartKinesalite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	p := &peer{t: t, ctx: ctx, stream: fmt.Sprintf("s-%d", time.Now().UnixNano()), client: awskinesis.New(awskinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(k.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})}
	if _, err := p.client.CreateStream(ctx, &awskinesis.CreateStreamInput{StreamName: aws.String(p.stream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	p.active()
	return p
}

func (p *peer) active() {
	p.t.Helper()
	for {
		out, err := p.client.DescribeStreamSummary(p.ctx, &awskinesis.DescribeStreamSummaryInput{StreamName: aws.String(p.stream)})
		if err != nil {
			p.t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// put puts records "rec-FROM" .. "rec-(TO-1)" with PutRecords, in order,
// and returns their sequence numbers.
func (p *peer) put(from, to int) []string {
	p.t.Helper()
	var seqs []string
	for i := from; i < to; i += 500 {
		var entries []types.PutRecordsRequestEntry
		for j := i; j < min(i+500, to); j++ {
			entries = append(entries, types.PutRecordsRequestEntry{Data: fmt.Appendf(nil, "rec-%d", j), PartitionKey: aws.String("k")})
		}
		out, err := p.client.PutRecords(p.ctx, &awskinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			p.t.Fatalf("put records: %v (%v failed)", err, out)
		}
		for _, r := range out.Records {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
	}
	return seqs
}

// collect reads the stream's first shard from start with api until want
// records came or the shard ended, and returns them as strings and the
// pages' End flag.
func collect(t *testing.T, ctx context.Context, api RecordReader, stream, shard string, start Start, o ReadOptions, want int) (recs []string, ended bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	o.Poll, o.MinInterval, o.BackoffBase, o.BackoffMax, o.ThrottleMin = 10*time.Millisecond, time.Millisecond, time.Millisecond, 5*time.Millisecond, time.Millisecond
	err := ReadShard(ctx, api, stream, shard, start, o, func(_ context.Context, pg Page) error {
		var prev string
		for _, r := range pg.Records {
			if s := aws.ToString(r.SequenceNumber); prev != "" && CompareSeq(prev, s) >= 0 {
				t.Errorf("sequence numbers out of order: %s then %s", prev, s)
			}
			prev = aws.ToString(r.SequenceNumber)
			recs = append(recs, string(r.Data))
		}
		ended = ended || pg.End
		if len(recs) >= want && !pg.End {
			cancel()
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		t.Fatalf("read shard: %v", err)
	}
	return recs, ended
}

func wantRecs(t *testing.T, got []string, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("%d records, want %d", len(got), to-from)
	}
	for i, g := range got {
		if want := fmt.Sprintf("rec-%d", from+i); g != want {
			t.Fatalf("record %d is %q, want %q", i, g, want)
		}
	}
}

// TestReadShard: from TRIM_HORIZON in pages of 100, every record once and
// in order; after a checkpoint, only the records after it; a split shard
// is read to its end.
func TestReadShard(t *testing.T) {
	p := newPeer(t, 1)
	seqs := p.put(0, 1200)
	shards, err := ListShards(p.ctx, p.client, p.stream)
	if err != nil {
		t.Fatal(err)
	}
	shard := shards[0].ID
	got, _ := collect(t, p.ctx, p.client, p.stream, shard, Start{Position: types.ShardIteratorTypeTrimHorizon}, ReadOptions{Limit: 100}, 1200)
	wantRecs(t, got, 0, 1200)

	got, _ = collect(t, p.ctx, p.client, p.stream, shard, Start{After: seqs[499]}, ReadOptions{}, 700)
	wantRecs(t, got, 500, 1200)

	if _, err := p.client.SplitShard(p.ctx, &awskinesis.SplitShardInput{StreamName: aws.String(p.stream), ShardToSplit: aws.String(shard),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	p.active()
	got, ended := collect(t, p.ctx, p.client, p.stream, shard, Start{After: seqs[1099]}, ReadOptions{}, 1<<30)
	wantRecs(t, got, 1100, 1200)
	if !ended {
		t.Fatal("the split parent was not read to its end")
	}
}

// faulty is kinesalite behind injected errors it cannot produce itself:
// every third GetRecords is throttled, and the fifth answers that the
// iterator expired (Kinesis does after 5 minutes).
type faulty struct {
	RecordReader
	mu     sync.Mutex
	calls  int
	events map[string]int
}

func (f *faulty) GetRecords(ctx context.Context, in *awskinesis.GetRecordsInput, opts ...func(*awskinesis.Options)) (*awskinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	switch {
	case n == 5:
		return nil, &types.ExpiredIteratorException{Message: aws.String("Iterator expired")}
	case n%3 == 0:
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("Rate exceeded for shard")}
	}
	return f.RecordReader.GetRecords(ctx, in, opts...)
}

func TestReadShardFaults(t *testing.T) {
	p := newPeer(t, 1)
	p.put(0, 1000)
	shards, err := ListShards(p.ctx, p.client, p.stream)
	if err != nil {
		t.Fatal(err)
	}
	f := &faulty{RecordReader: p.client, events: map[string]int{}}
	o := ReadOptions{Limit: 50, Event: func(kind string, _ error) { f.mu.Lock(); f.events[kind]++; f.mu.Unlock() }}
	got, _ := collect(t, p.ctx, f, p.stream, shards[0].ID, Start{Position: types.ShardIteratorTypeTrimHorizon}, o, 1000)
	wantRecs(t, got, 0, 1000)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.events["ExpiredIterator"] != 1 || f.events["ThrottledGetRecords"] < 5 || f.events["OK"] < 20 {
		t.Fatalf("events %v", f.events)
	}
}
