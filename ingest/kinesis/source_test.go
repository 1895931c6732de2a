package kinesis

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/pipeline"
)

// keyedPut puts n records spread over keys partition keys, each record
// "<key>:<i>" with i counting per key, in PutRecords calls of 50.
type keyedPut struct {
	p     *peer
	keys  int
	next  []int
	count int
}

func newKeyedPut(p *peer, keys int) *keyedPut {
	return &keyedPut{p: p, keys: keys, next: make([]int, keys)}
}

func (k *keyedPut) put(n int) {
	k.p.t.Helper()
	for n > 0 {
		var entries []types.PutRecordsRequestEntry
		for j := 0; j < min(50, n); j++ {
			key := (k.count * 7) % k.keys
			k.count++
			entries = append(entries, types.PutRecordsRequestEntry{
				Data: fmt.Appendf(nil, "k%d:%d", key, k.next[key]), PartitionKey: aws.String(fmt.Sprintf("k%d", key))})
			k.next[key]++
		}
		out, err := k.p.client.PutRecords(k.p.ctx, &awskinesis.PutRecordsInput{StreamName: aws.String(k.p.stream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			k.p.t.Fatalf("put records: %v (%v)", err, out)
		}
		n -= len(entries)
	}
}

func (k *keyedPut) total() int {
	n := 0
	for _, c := range k.next {
		n += c
	}
	return n
}

// checkKeyed reads the whole buffer and checks that it holds every record
// put exactly once, each key's in order, with the Kinesis metadata.
func checkKeyed(t *testing.T, l *disk.Log, k *keyedPut) {
	t.Helper()
	ctx := context.Background()
	next := make([]int, k.keys)
	from := l.State().Committed
	n := 0
	for {
		recs, nx, err := l.Read(ctx, from, 1<<20, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			key, i, ok := strings.Cut(string(r.Data), ":")
			kn, _ := strconv.Atoi(strings.TrimPrefix(key, "k"))
			in, _ := strconv.Atoi(i)
			if !ok || kn >= k.keys {
				t.Fatalf("record %q", r.Data)
			}
			if in != next[kn] {
				t.Fatalf("key %s: record %d after %d: out of order, lost or duplicated (record %d of the buffer)", key, in, next[kn]-1, n)
			}
			next[kn]++
			n++
			if r.Meta[pipeline.MetaPartitionKey] != key || r.Meta[pipeline.MetaShardID] == "" || r.Meta[pipeline.MetaSequenceNumber] == "" ||
				r.Meta[pipeline.MetaApproximateArrival] == "" || !strings.HasPrefix(r.Meta[pipeline.MetaSourceKinesisStreamARN], "arn:aws:kinesis:") {
				t.Fatalf("record %q: metadata %v", r.Data, r.Meta)
			}
		}
		from = nx
	}
	if n != k.total() {
		t.Fatalf("%d records buffered, %d put", n, k.total())
	}
}

// openTracked opens a disk buffer tracking shard positions, as a Kinesis
// stream's buffer is opened, closed when the test ends.
func openTracked(t *testing.T, o disk.Options) *disk.Log {
	t.Helper()
	o.Stream = "s"
	o.Track = disk.Track{Key: pipeline.MetaShardID, Value: pipeline.MetaSequenceNumber}
	l, err := disk.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// newMetricsReg returns the source's metrics on a registry of their own.
func newMetricsReg(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// run is one life of a source over the buffer in dir: Run in the
// background until stop.
type run struct {
	l      *disk.Log
	src    *Source
	cancel context.CancelFunc
	done   chan error
}

func startSource(t *testing.T, p *peer, dir string, reg *prometheus.Registry, start Start) *run {
	t.Helper()
	l, err := disk.Open(disk.Options{Dir: dir + "/buffer", Stream: "s", SegmentBytes: 4 << 10,
		Track: disk.Track{Key: pipeline.MetaShardID, Value: pipeline.MetaSequenceNumber}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	local := &Local{Lister: p.client, Stream: p.stream, Dir: dir + "/source", Start: start, Discover: 200 * time.Millisecond}
	src, err := NewSource(SourceOptions{Stream: "s", KinesisStream: p.stream, StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/" + p.stream,
		Client: p.client, Buffer: l, Scheduler: local, Metrics: m,
		Read: ReadOptions{Poll: 50 * time.Millisecond, MinInterval: 10 * time.Millisecond, Limit: 300}})
	if err != nil {
		t.Fatal(err)
	}
	local.Event = src.Event
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{l: l, src: src, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- src.Run(ctx) }()
	return r
}

func (r *run) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("source run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("source did not stop")
	}
	if err := r.l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSourceRestartsAndResharding: a stream of 4 shards read from
// TRIM_HORIZON into a tracked disk buffer, restarted several times while
// records are put, split and merged: every record buffered exactly once,
// each partition key's in order (parents before children).
func TestSourceRestartsAndResharding(t *testing.T) {
	p := newPeer(t, 4)
	k := newKeyedPut(p, 16)
	dir := t.TempDir()
	k.put(500) // before the first start: TRIM_HORIZON reads them
	reg := prometheus.NewRegistry()
	r := startSource(t, p, dir, reg, Start{Position: types.ShardIteratorTypeTrimHorizon})
	shards, err := ListShards(p.ctx, p.client, p.stream)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 6 {
		k.put(300)
		switch round {
		case 1: // split shard 0 in the middle of its hash range
			half := new(big.Int).Rsh(new(big.Int).Lsh(big.NewInt(1), 128), 3)
			if _, err := p.client.SplitShard(p.ctx, &awskinesis.SplitShardInput{StreamName: aws.String(p.stream),
				ShardToSplit: aws.String(shards[0].ID), NewStartingHashKey: aws.String(half.String())}); err != nil {
				t.Fatal(err)
			}
			p.active()
		case 3: // merge shards 2 and 3
			if _, err := p.client.MergeShards(p.ctx, &awskinesis.MergeShardsInput{StreamName: aws.String(p.stream),
				ShardToMerge: aws.String(shards[2].ID), AdjacentShardToMerge: aws.String(shards[3].ID)}); err != nil {
				t.Fatal(err)
			}
			p.active()
		}
		k.put(200)
		if round%2 == 0 {
			// Restart mid-stream, without waiting for the reader to catch
			// up: it resumes from the positions in the buffer.
			r.stop(t)
			// The starting position applies only to the first start.
			r = startSource(t, p, dir, prometheus.NewRegistry(), Start{Position: types.ShardIteratorTypeLatest})
		}
	}
	// The last life reads what is left; wait until every record is in.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := r.l.State()
		if int(st.Head-st.Committed) > 0 && countRecords(t, r.l) == k.total() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records buffered, %d put", countRecords(t, r.l), k.total())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // nothing more may come
	r.stop(t)
	l := openTracked(t, disk.Options{Dir: dir + "/buffer"})
	checkKeyed(t, l, k)
	if n := len(l.Positions()); n != 7 {
		t.Errorf("positions for %d shards, want 7 (4, a split, a merge): %v", n, l.Positions())
	}
}

func countRecords(t *testing.T, l *disk.Log) int {
	t.Helper()
	return len(readBuffer(t, l))
}

// fixedScheduler hands out one assignment and waits for ctx.
type fixedScheduler struct{ a Assignment }

func (f fixedScheduler) Run(ctx context.Context, read func(context.Context, Assignment) error) error {
	err := read(ctx, f.a)
	<-ctx.Done()
	return err
}

// TestSourceCountsRedelivered: a fleet assignment resuming after a
// checkpoint behind the previous owner's pending sequence number counts
// the records read again up to it, and only those; Intend comes before
// each append and Progress after it, with the page's last sequence number.
func TestSourceCountsRedelivered(t *testing.T) {
	p := newPeer(t, 1)
	seqs := p.put(0, 30)
	shards, err := ListShards(p.ctx, p.client, p.stream)
	if err != nil {
		t.Fatal(err)
	}
	l := openTracked(t, disk.Options{Dir: t.TempDir()})
	m, reg := newMetricsReg(t)
	var mu sync.Mutex
	var calls []string
	note := func(what string) func(context.Context, string) error {
		return func(_ context.Context, seq string) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, what+" "+seq)
			return nil
		}
	}
	// Checkpoint at record 9, the dead owner was about to buffer up to 19.
	a := Assignment{Shard: shards[0].ID, Start: Start{After: seqs[9]}, Pending: seqs[19], Intend: note("intend"), Progress: note("progress")}
	src, err := NewSource(SourceOptions{Stream: "s", KinesisStream: p.stream, Client: p.client, Buffer: l, Scheduler: fixedScheduler{a}, Metrics: m,
		Read: ReadOptions{Poll: 20 * time.Millisecond, MinInterval: 5 * time.Millisecond, Limit: 7}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for countRecords(t, l) < 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := countRecords(t, l); n != 20 {
		t.Fatalf("%d records buffered, want the 20 after the checkpoint", n)
	}
	if got := counterSum(reg, MetricRedelivered); got != 10 {
		t.Fatalf("%v redelivered, want 10 (records 10 to 19)", got)
	}
	// Pages of 7: records 10-16, 17-23, 24-29.
	want := []string{"intend " + seqs[16], "progress " + seqs[16], "intend " + seqs[23], "progress " + seqs[23], "intend " + seqs[29], "progress " + seqs[29]}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(calls, ",") != strings.Join(want, ",") {
		t.Fatalf("calls %v, want %v", calls, want)
	}
}

func counterSum(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestSourceLatest: LATEST applies to the first start only. Records put
// before it are not read; records put while the source is down are read
// after a restart, also on a shard that had no record yet (it resumes
// AT_TIMESTAMP of the first start, from shards.json); a shard made by a
// split after the start is read from its beginning.
func TestSourceLatest(t *testing.T) {
	p := newPeer(t, 2)
	k := newKeyedPut(p, 1) // one key: one shard gets every record, the other none
	k.put(40)              // before the first start: not read
	dir := t.TempDir()
	r := startSource(t, p, dir, prometheus.NewRegistry(), Start{Position: types.ShardIteratorTypeLatest})
	// Wait for both shards' readers to hold their LATEST iterators.
	deadline := time.Now().Add(10 * time.Second)
	for r.src.reading.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	r.stop(t)
	before := k.total()
	k.put(30) // while it is down
	r = startSource(t, p, dir, prometheus.NewRegistry(), Start{Position: types.ShardIteratorTypeLatest})
	// Split the shard that holds the key: its records go to a child now,
	// found by a later listing; the child is read from its start.
	var holder string
	for holder == "" && time.Now().Before(deadline) {
		for sh := range r.l.Positions() {
			holder = sh
		}
		time.Sleep(10 * time.Millisecond)
	}
	shards, err := ListShards(p.ctx, p.client, p.stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		if sh.ID != holder {
			continue
		}
		var lo big.Int
		lo.SetString(map[bool]string{true: "0", false: "170141183460469231731687303715884105728"}[sh.ID == shards[0].ID], 10)
		mid := new(big.Int).Add(&lo, new(big.Int).Lsh(big.NewInt(1), 126))
		if _, err := p.client.SplitShard(p.ctx, &awskinesis.SplitShardInput{StreamName: aws.String(p.stream),
			ShardToSplit: aws.String(holder), NewStartingHashKey: aws.String(mid.String())}); err != nil {
			t.Fatal(err)
		}
		p.active()
	}
	k.put(20)
	for countRecords(t, r.l) < 50 && time.Now().Before(deadline.Add(10*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	r.stop(t)
	l := openTracked(t, disk.Options{Dir: dir + "/buffer"})
	recs := readBuffer(t, l)
	if len(recs) != 50 || recs[0] != fmt.Sprintf("k0:%d", before) || recs[49] != fmt.Sprintf("k0:%d", before+49) {
		t.Fatalf("buffered %d records %v, want the 50 put from k0:%d on (while the source was down, then after a split)", len(recs), recs, before)
	}
	if len(l.Positions()) != 2 {
		t.Fatalf("positions %v: want the split shard and its child", l.Positions())
	}
}

func readBuffer(t *testing.T, l *disk.Log) []string {
	t.Helper()
	var out []string
	from := l.State().Committed
	for {
		recs, next, err := l.Read(context.Background(), from, 1<<20, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			out = append(out, string(r.Data))
		}
		from = next
	}
}

// TestBind: the first Bind records the stream; the same one again (by
// name or ARN) is fine; another is refused, naming both.
func TestBind(t *testing.T) {
	dir := t.TempDir() + "/source/s"
	first, err := Bind(dir, "clicks")
	if err != nil || time.Since(first) > time.Minute {
		t.Fatal(first, err)
	}
	again, err := Bind(dir, "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks")
	if err != nil || !again.Equal(first) {
		t.Fatalf("second bind: %v %v, first %v", again, err, first)
	}
	_, err = Bind(dir, "orders")
	if err == nil || !strings.Contains(err.Error(), `"orders"`) || !strings.Contains(err.Error(), `"clicks"`) {
		t.Fatalf("another stream over the same buffer: %v", err)
	}
}

// TestSourceBackpressure: a buffer whose quota holds a fraction of the
// stream makes the readers wait (counted), never drop: as a slow consumer
// commits, every record arrives once and in order.
func TestSourceBackpressure(t *testing.T) {
	p := newPeer(t, 1)
	p.put(0, 3000) // ~40 KiB of frames
	l := openTracked(t, disk.Options{Dir: t.TempDir(), MaxBytes: 8 << 10, SegmentBytes: 4 << 10})
	m, reg := newMetricsReg(t)
	local := &Local{Lister: p.client, Stream: p.stream, Dir: t.TempDir(), Start: Start{Position: types.ShardIteratorTypeTrimHorizon}, Discover: time.Second}
	src, err := NewSource(SourceOptions{Stream: "s", KinesisStream: p.stream, Client: p.client, Buffer: l, Scheduler: local, Metrics: m,
		Read: ReadOptions{Poll: 20 * time.Millisecond, MinInterval: 5 * time.Millisecond, Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	var got []string
	from := l.State().Committed
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < 3000 && time.Now().Before(deadline) {
		recs, next, err := l.Read(ctx, from, 2<<10, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got = append(got, string(r.Data))
		}
		if len(recs) > 0 {
			if err := l.Commit(ctx, next); err != nil {
				t.Fatal(err)
			}
			from = next
		}
		time.Sleep(5 * time.Millisecond) // slower than the reader
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantRecs(t, got, 0, 3000)
	if w := counterSum(reg, MetricBufferWaits); w == 0 {
		t.Fatal("the buffer was never full: the test does not exercise backpressure")
	}
}
