// Package kinesis reads Kinesis Data Streams shards (Firehose's
// KinesisStreamAsSource) with aws-sdk-go-v2's kinesis client, against AWS
// or any Kinesis-compatible server, into a stream's buffer.
//
// A Source runs one reader (ReadShard) per shard a Scheduler assigns:
// Local for an instance on its own (shards.json beside the buffer), or
// package lease's Fleet for instances sharing the stream through leases
// in PostgreSQL. Records are appended with their metadata (Records); the
// buffer tracks each shard's last sequence number with the records
// themselves, so the checkpoint is durable in the same group commit, and
// a reader resumes after it. Shards are discovered with ListShards and read
// in resharding order (Readable: children after their parents end).
// docs/architecture.md ("Kinesis source") has the design.
package kinesis
