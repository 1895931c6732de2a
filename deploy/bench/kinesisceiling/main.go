// Command kinesisceiling is the ceiling for Sluice's Kinesis source
// benchmark: a minimal GetRecords loop over every shard of a stream, with
// nothing but the essential work, so that the source's read rate can be
// compared, in the same run, with what the server hands the simplest
// possible reader.
//
//	kinesisceiling -endpoint http://127.0.0.1:4567 -stream bench -fill 100000 -shards 4 -size 1024
//	kinesisceiling -endpoint http://127.0.0.1:4567 -stream bench -records 100000
//
// With -fill N it only prepares the benchmark: it creates the stream with
// -shards shards (unless it exists), puts N records of -size bytes (JSON,
// partition keys spread over the shards) with PutRecords, 500 a call, 4
// calls at a time, prints {"put":N,"seconds":S} and exits.
//
// One goroutine per shard takes a TRIM_HORIZON iterator and calls
// GetRecords (-limit records a call) back to back until -records records
// were read in all, sleeping 100 ms after a throttle or an empty answer.
// It prints one JSON line: {"records":N,"bytes":B,"seconds":S,
// "records_per_sec":R}, the time running from the first call until the
// last record.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:4567", "Kinesis endpoint URL")
	stream := flag.String("stream", "bench", "stream name")
	want := flag.Int64("records", 100_000, "stop after reading this many records")
	limit := flag.Int("limit", 10000, "GetRecords limit (1..10000)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	fill := flag.Int("fill", 0, "create the stream and put this many records, then exit")
	shards := flag.Int("shards", 4, "with -fill: the stream's shard count")
	size := flag.Int("size", 1024, "with -fill: bytes per record")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: endpoint,
		Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", "")})
	var err error
	if *fill > 0 {
		err = prepare(ctx, client, *stream, int32(*shards), *fill, *size)
	} else {
		err = run(ctx, client, *stream, *want, int32(*limit))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kinesisceiling: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, client *kinesis.Client, stream string, want int64, limit int32) error {
	var shards []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := client.ListShards(ctx, in)
		if err != nil {
			return fmt.Errorf("list shards: %w", err)
		}
		for _, s := range out.Shards {
			shards = append(shards, aws.ToString(s.ShardId))
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var records, bytes atomic.Int64
	var last atomic.Int64 // unix nanos of the last record
	start := time.Now()
	var wg sync.WaitGroup
	for _, shard := range shards {
		wg.Go(func() {
			it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
				ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				stop(fmt.Errorf("shard %s: %w", shard, err))
				return
			}
			iter := it.ShardIterator
			for iter != nil && ctx.Err() == nil {
				out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(limit)})
				var throttled *types.ProvisionedThroughputExceededException
				switch {
				case ctx.Err() != nil:
					return
				case errors.As(err, &throttled):
					time.Sleep(100 * time.Millisecond)
					continue
				case err != nil:
					stop(fmt.Errorf("shard %s: %w", shard, err))
					return
				}
				var b int64
				for _, r := range out.Records {
					b += int64(len(r.Data))
				}
				bytes.Add(b)
				if len(out.Records) > 0 {
					last.Store(time.Now().UnixNano())
					if records.Add(int64(len(out.Records))) >= want {
						stop(nil)
						return
					}
				} else {
					time.Sleep(100 * time.Millisecond)
				}
				iter = out.NextShardIterator
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	n := records.Load()
	if n < want {
		return fmt.Errorf("read %d records of %d", n, want)
	}
	secs := time.Unix(0, last.Load()).Sub(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"records": n, "bytes": bytes.Load(), "seconds": secs, "records_per_sec": float64(n) / secs})
}

// prepare creates the stream (if missing) and puts n records of size bytes.
func prepare(ctx context.Context, client *kinesis.Client, stream string, shards int32, n, size int) error {
	_, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(shards)})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create stream: %w", err)
	}
	for {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			return fmt.Errorf("describe stream: %w", err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	calls := make(chan int)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			pad := make([]byte, max(0, size-64))
			for i := range pad {
				pad[i] = 'a' + byte(i%26)
			}
			for first := range calls {
				var entries []types.PutRecordsRequestEntry
				for i := first; i < min(first+500, n); i++ {
					data := fmt.Appendf(nil, `{"id":%d,"pad":"%s"}`, i, pad)
					entries = append(entries, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(fmt.Sprintf("key-%d", i%1024))})
				}
				out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
				if err == nil && aws.ToInt32(out.FailedRecordCount) > 0 {
					err = fmt.Errorf("%d records refused", aws.ToInt32(out.FailedRecordCount))
				}
				if err != nil {
					errs <- fmt.Errorf("put records: %w", err)
					return
				}
			}
		})
	}
feed:
	for first := 0; first < n; first += 500 {
		select {
		case calls <- first:
		case err := <-errs:
			close(calls)
			wg.Wait()
			return err
		case <-ctx.Done():
			break feed
		}
	}
	close(calls)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"put": n, "seconds": time.Since(start).Seconds()})
}
