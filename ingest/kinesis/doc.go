// Package kinesis reads Kinesis Data Streams shards (Firehose's
// KinesisStreamAsSource) with aws-sdk-go-v2's kinesis client, against AWS
// or any Kinesis-compatible server.
//
// Built so far: shard discovery (ListShards, paged), the resharding order
// (a child is read only after every parent is read to its end),
// sequence-number comparison, and the shard reader (ReadShard: polling,
// throttling and failures retried with backoff, expired iterators renewed
// after the last record taken, shard end reported), and the fleet's lease
// table (package lease). The checkpoints written with the records, the
// workers that run readers under leases, and the configuration follow
// (issue 10); no configuration reaches this package yet.
package kinesis
