// Command kinesisceiling is the ceiling for Sluice's Kinesis source
// benchmark: a minimal GetRecords loop over every shard of a stream, with
// nothing but the essential work, so that the source's read rate can be
// compared, in the same run, with what the server hands the simplest
// possible reader.
//
//	kinesisceiling -endpoint http://127.0.0.1:4567 -stream bench -records 1000000
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
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: endpoint,
		Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", "")})
	if err := run(ctx, client, *stream, *want, int32(*limit)); err != nil {
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
