package kinesis

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Shard is what the reader needs of a shard: its lineage and whether it
// is closed (a closed shard has an ending sequence number and, once read
// to its end, no next iterator).
type Shard struct {
	ID             string
	Parent         string // "" for a shard of the stream's creation
	AdjacentParent string // the second parent of a merge
	StartingSeq    string
	EndingSeq      string // "" while the shard is open
}

// Closed reports whether the shard was split or merged away: it takes no
// more records.
func (s Shard) Closed() bool { return s.EndingSeq != "" }

// ShardLister is the part of the Kinesis client discovery uses.
type ShardLister interface {
	ListShards(ctx context.Context, in *awskinesis.ListShardsInput, opts ...func(*awskinesis.Options)) (*awskinesis.ListShardsOutput, error)
}

// ListShards returns every shard of the stream (named, or an ARN),
// following NextToken (which names no stream: the API refuses both).
func ListShards(ctx context.Context, api ShardLister, stream string) ([]Shard, error) {
	return listShards(ctx, api, stream, nil)
}

// listShards is ListShards asking for pages of at most pageSize shards
// (nil: the server's default).
func listShards(ctx context.Context, api ShardLister, stream string, pageSize *int32) ([]Shard, error) {
	in := &awskinesis.ListShardsInput{MaxResults: pageSize}
	if isARN(stream) {
		in.StreamARN = aws.String(stream)
	} else {
		in.StreamName = aws.String(stream)
	}
	var shards []Shard
	for {
		out, err := api.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", stream, err)
		}
		for _, s := range out.Shards {
			sh := Shard{ID: aws.ToString(s.ShardId), Parent: aws.ToString(s.ParentShardId), AdjacentParent: aws.ToString(s.AdjacentParentShardId)}
			if r := s.SequenceNumberRange; r != nil {
				sh.StartingSeq, sh.EndingSeq = aws.ToString(r.StartingSequenceNumber), aws.ToString(r.EndingSequenceNumber)
			}
			if sh.ID == "" || sh.StartingSeq != "" && !validSeq(sh.StartingSeq) || sh.EndingSeq != "" && !validSeq(sh.EndingSeq) {
				return nil, fmt.Errorf("list shards of %s: a malformed shard %q (sequence numbers %q to %q)", stream, sh.ID, sh.StartingSeq, sh.EndingSeq)
			}
			shards = append(shards, sh)
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return shards, nil
		}
		in = &awskinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: pageSize}
	}
}

func isARN(s string) bool { return len(s) > 4 && s[:4] == "arn:" }

// Readable returns, in the order listed, the shards that may be read now:
// not finished, and every parent finished or no longer listed (trimmed
// past the stream's retention, so nothing of it is left to read). This is
// the resharding rule: a child is read only after its parents are read to
// their end, so each partition key's records come in order; a merged
// child waits for both parents.
func Readable(shards []Shard, finished map[string]bool) []Shard {
	listed := make(map[string]bool, len(shards))
	for _, s := range shards {
		listed[s.ID] = true
	}
	done := func(id string) bool { return id == "" || finished[id] || !listed[id] }
	var out []Shard
	for _, s := range shards {
		if !finished[s.ID] && done(s.Parent) && done(s.AdjacentParent) {
			out = append(out, s)
		}
	}
	return out
}
