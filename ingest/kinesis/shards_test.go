package kinesis

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestCompareSeq against math/big on random numbers of up to 129 digits,
// many of equal length and sharing long prefixes.
func TestCompareSeq(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	num := func() string {
		n := 1 + r.IntN(129)
		b := []byte(strings.Repeat("4968", 33)[:n])
		for range 1 + r.IntN(3) {
			b[r.IntN(n)] = byte('0' + r.IntN(10))
		}
		if b[0] == '0' {
			b[0] = '1'
		}
		return string(b)
	}
	for range 20000 {
		a, b := num(), num()
		if r.IntN(4) == 0 {
			b = a
		}
		x, _ := new(big.Int).SetString(a, 10)
		y, _ := new(big.Int).SetString(b, 10)
		if got, want := CompareSeq(a, b), x.Cmp(y); got != want {
			t.Fatalf("CompareSeq(%s, %s) = %d, want %d", a, b, got, want)
		}
	}
	for s, ok := range map[string]bool{"0": true, "49680775272984839362964585739577976104208791989873803266": true,
		"": false, "01": false, "12a": false, "-1": false, strings.Repeat("9", 129): true, strings.Repeat("9", 130): false} {
		if validSeq(s) != ok {
			t.Errorf("validSeq(%q) = %v", s, !ok)
		}
	}
}

// TestReadable: children wait for every listed parent to be finished; a
// parent trimmed from the listing does not hold them back.
func TestReadable(t *testing.T) {
	shards := []Shard{
		{ID: "a", EndingSeq: "9"},                            // split into c and d
		{ID: "b", EndingSeq: "9"},                            // merged with d into e
		{ID: "c", Parent: "a"},                               // open
		{ID: "d", Parent: "a", EndingSeq: "9"},               // merged into e
		{ID: "e", Parent: "b", AdjacentParent: "d"},          // open
		{ID: "f", Parent: "trimmed", AdjacentParent: "gone"}, // parents past retention
	}
	ids := func(finished ...string) []string {
		f := map[string]bool{}
		for _, id := range finished {
			f[id] = true
		}
		var out []string
		for _, s := range Readable(shards, f) {
			out = append(out, s.ID)
		}
		return out
	}
	for _, c := range []struct {
		finished []string
		want     []string
	}{
		{nil, []string{"a", "b", "f"}},
		{[]string{"a"}, []string{"b", "c", "d", "f"}},
		{[]string{"a", "d"}, []string{"b", "c", "f"}}, // e still waits for b
		{[]string{"a", "b", "d"}, []string{"c", "e", "f"}},
		{[]string{"a", "b", "c", "d", "e", "f"}, nil},
	} {
		if got := ids(c.finished...); !slices.Equal(got, c.want) {
			t.Errorf("finished %v: readable %v, want %v", c.finished, got, c.want)
		}
	}
}

// TestListShardsKinesalite: a stream of 4 shards, one split and two merged,
// listed in pages of 2, with the lineage kinesalite
// reports; Readable then orders parents before children.
func TestListShardsKinesalite(t *testing.T) {
	p := newPeer(t, 4)
	ctx, client, stream, active := p.ctx, p.client, p.stream, p.active
	before, err := ListShards(ctx, client, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 4 || slices.ContainsFunc(before, Shard.Closed) {
		t.Fatalf("a new stream of 4 shards: %+v", before)
	}
	// Split shard 0 at the middle of its hash range; merge shards 2 and 3.
	half := new(big.Int).Rsh(new(big.Int).Lsh(big.NewInt(1), 128), 3) // 2^125: inside shard 0's quarter
	if _, err := client.SplitShard(ctx, &awskinesis.SplitShardInput{StreamName: aws.String(stream),
		ShardToSplit: aws.String(before[0].ID), NewStartingHashKey: aws.String(half.String())}); err != nil {
		t.Fatal(err)
	}
	active()
	if _, err := client.MergeShards(ctx, &awskinesis.MergeShardsInput{StreamName: aws.String(stream),
		ShardToMerge: aws.String(before[2].ID), AdjacentShardToMerge: aws.String(before[3].ID)}); err != nil {
		t.Fatal(err)
	}
	active()

	// By name: kinesalite 3.3.3 predates ListShards' StreamARN ("Either
	// NextToken or StreamName should be provided"); TestListShardsRequests
	// covers the ARN.
	name := stream
	shards, err := listShards(ctx, client, name, aws.Int32(2))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(shards) != 7 {
		t.Fatalf("%s: %d shards after a split and a merge, want 7: %+v", name, len(shards), shards)
	}
	byID := map[string]Shard{}
	for _, s := range shards {
		byID[s.ID] = s
	}
	for _, id := range []string{before[0].ID, before[2].ID, before[3].ID} {
		if !byID[id].Closed() {
			t.Errorf("%s: parent %s not closed: %+v", name, id, byID[id])
		}
	}
	var splitKids, merged []Shard
	for _, s := range shards {
		switch {
		case s.Parent == before[0].ID && s.AdjacentParent == "":
			splitKids = append(splitKids, s)
		case s.AdjacentParent != "":
			merged = append(merged, s)
		}
	}
	if len(splitKids) != 2 || len(merged) != 1 ||
		!(merged[0].Parent == before[2].ID && merged[0].AdjacentParent == before[3].ID) {
		t.Fatalf("%s: lineage: split children %+v, merged %+v", name, splitKids, merged)
	}
	readable := Readable(shards, nil)
	want := []string{before[0].ID, before[1].ID, before[2].ID, before[3].ID}
	var got []string
	for _, s := range readable {
		got = append(got, s.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: readable first %v, want the four parents %v", name, got, want)
	}
	after := Readable(shards, map[string]bool{before[0].ID: true, before[2].ID: true})
	for _, s := range after {
		if s.ID == merged[0].ID {
			t.Fatalf("%s: the merged child is readable while its parent %s is not finished", name, before[3].ID)
		}
	}
	if !slices.ContainsFunc(after, func(s Shard) bool { return s.ID == splitKids[0].ID }) {
		t.Fatalf("%s: split child %s not readable after its parent finished: %+v", name, splitKids[0].ID, after)
	}
}

// recorder answers ListShards from pages and keeps the inputs: the shape
// of the requests (an ARN as StreamARN, a NextToken alone) is ours to get
// right, and kinesalite does not take StreamARN.
type recorder struct {
	pages [][]types.Shard
	ins   []awskinesis.ListShardsInput
}

func (r *recorder) ListShards(_ context.Context, in *awskinesis.ListShardsInput, _ ...func(*awskinesis.Options)) (*awskinesis.ListShardsOutput, error) {
	r.ins = append(r.ins, *in)
	out := &awskinesis.ListShardsOutput{Shards: r.pages[len(r.ins)-1]}
	if len(r.ins) < len(r.pages) {
		out.NextToken = aws.String(fmt.Sprintf("token-%d", len(r.ins)))
	}
	return out, nil
}

func TestListShardsRequests(t *testing.T) {
	shard := func(id, start string) types.Shard {
		return types.Shard{ShardId: aws.String(id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String(start)}}
	}
	r := &recorder{pages: [][]types.Shard{{shard("s0", "1")}, {shard("s1", "2")}, {shard("s2", "3")}}}
	arn := "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks"
	shards, err := ListShards(context.Background(), r, arn)
	if err != nil || len(shards) != 3 || shards[2].ID != "s2" {
		t.Fatalf("shards %+v, err %v", shards, err)
	}
	if in := r.ins[0]; aws.ToString(in.StreamARN) != arn || in.StreamName != nil || in.NextToken != nil {
		t.Errorf("first request %+v: want the ARN as StreamARN", in)
	}
	for i, in := range r.ins[1:] {
		if aws.ToString(in.NextToken) != fmt.Sprintf("token-%d", i+1) || in.StreamARN != nil || in.StreamName != nil {
			t.Errorf("request %d %+v: want the NextToken alone", i+2, in)
		}
	}
	r = &recorder{pages: [][]types.Shard{{shard("s0", "01")}}}
	if _, err := ListShards(context.Background(), r, "clicks"); err == nil || aws.ToString(r.ins[0].StreamName) != "clicks" {
		t.Errorf("a malformed sequence number: err %v (request %+v)", err, r.ins[0])
	}
}
