package main

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/deploy/testpeers/receiver"
)

// kinesisPeer is a kinesalite with one stream and a client of it.
type kinesisPeer struct {
	k      *testpeers.Kinesalite
	client *awskinesis.Client
	stream string
}

func startKinesis(t *testing.T, shards int32) *kinesisPeer {
	t.Helper()
	k := testpeers.StartKinesalite(t)
	p := &kinesisPeer{k: k, stream: fmt.Sprintf("clicks-%d", time.Now().UnixNano()%1e9), client: awskinesis.New(awskinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(k.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("any", "any", ""),
	})}
	ctx := context.Background()
	if _, err := p.client.CreateStream(ctx, &awskinesis.CreateStreamInput{StreamName: aws.String(p.stream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	p.waitActive(t)
	return p
}

func (p *kinesisPeer) env() []string {
	return []string{"KINESIS_STREAM=" + p.stream, "KINESIS_ENDPOINT=" + p.k.Endpoint,
		"AWS_ACCESS_KEY_ID=any", "AWS_SECRET_ACCESS_KEY=any", "AWS_REGION=us-east-1"}
}

func (p *kinesisPeer) waitActive(t *testing.T) {
	t.Helper()
	for range 500 {
		out, err := p.client.DescribeStreamSummary(context.Background(), &awskinesis.DescribeStreamSummaryInput{StreamName: aws.String(p.stream)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("stream not active")
}

// putLines puts each line as one record, partition key from its index.
func (p *kinesisPeer) putLines(t *testing.T, lines []string) {
	t.Helper()
	for i := 0; i < len(lines); i += 500 {
		var entries []types.PutRecordsRequestEntry
		for j := i; j < min(i+500, len(lines)); j++ {
			entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(lines[j]), PartitionKey: aws.String(fmt.Sprintf("user-%d", j%64))})
		}
		out, err := p.client.PutRecords(context.Background(), &awskinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put records: %v (%v)", err, out)
		}
	}
}

// TestKinesisExample runs examples/kinesis.yaml against kinesalite: the
// clickstream put into a stream of 4 shards (some before the start, some
// after) arrives once under data/kinesis/, one record per line; a
// Firehose put to the stream gets Firehose's error; DescribeDeliveryStream
// reports the Kinesis source; the source's metrics count the records.
func TestKinesisExample(t *testing.T) {
	p := startKinesis(t, 4)
	data, err := os.ReadFile("../../examples/data/clickstream.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	lines := splitLines(data)
	half := len(lines) / 2
	p.putLines(t, lines[:half]) // before the start: TRIM_HORIZON reads them
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := exampleConfig(t, "kinesis.yaml", dir, addr)
	d := startDaemonEnv(t, cfg, dir, addr, p.env())
	p.putLines(t, lines[half:])
	var got map[string]int
	if !waitFor(30*time.Second, func() bool { got = deliveredLines(t, filepath.Join(dir, "kinesis")); return len(got) >= len(lines) }) {
		t.Fatalf("%d of %d records delivered\n%s", len(got), len(lines), d.log.String())
	}
	for _, l := range lines {
		if got[l] != 1 {
			t.Fatalf("record %.60q… delivered %d times", l, got[l])
		}
	}

	// A put is refused as Firehose refuses it on a KinesisStreamAsSource stream.
	status, body := firehoseCall(t, addr, "PutRecord", `{"DeliveryStreamName":"kinesis","Record":{"Data":"eyJhIjoxfQ=="}}`)
	if status != 400 || !strings.Contains(body, `"InvalidArgumentException"`) || !strings.Contains(body, "KinesisStreamAsSource") {
		t.Fatalf("PutRecord to a Kinesis-sourced stream: %d %s", status, body)
	}
	status, body = firehoseCall(t, addr, "DescribeDeliveryStream", `{"DeliveryStreamName":"kinesis"}`)
	var desc struct {
		DeliveryStreamDescription struct {
			DeliveryStreamType string
			Source             struct {
				KinesisStreamSourceDescription struct {
					KinesisStreamARN       string
					DeliveryStartTimestamp float64
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &desc); err != nil || status != 200 {
		t.Fatalf("describe: %d %s", status, body)
	}
	dd := desc.DeliveryStreamDescription
	ks := dd.Source.KinesisStreamSourceDescription
	if dd.DeliveryStreamType != "KinesisStreamAsSource" || !strings.HasSuffix(ks.KinesisStreamARN, ":stream/"+p.stream) ||
		time.Since(time.UnixMilli(int64(ks.DeliveryStartTimestamp*1000))) > time.Minute {
		t.Fatalf("describe: %s", body)
	}
	metrics := scrape(t, addr)
	if v := metricSum(metrics, "sluice_kinesis_read_records_total"); int(v) != len(lines) {
		t.Fatalf("sluice_kinesis_read_records_total %v, want %d", v, len(lines))
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func firehoseCall(t *testing.T, addr, op, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Firehose_20150804."+op)
	return do(t, req)
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricSum adds the values of every series of a metric family.
func metricSum(text, name string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// keyedProducer puts records "<key>:<n>" with n counting per key, from
// one goroutine, until stopped; it never re-sends: Kinesis either took a
// PutRecords entry (it answered with its sequence number) or the record
// is abandoned, so every record it counts was put exactly once.
type keyedProducer struct {
	p    *kinesisPeer
	keys int

	mu   sync.Mutex
	next []int      // per key, the next n
	put  [][]string // per key, the records Kinesis took, in order
}

func (kp *keyedProducer) run(ctx context.Context, t *testing.T) {
	kp.next = make([]int, kp.keys)
	kp.put = make([][]string, kp.keys)
	for c := 0; ctx.Err() == nil; c++ {
		var entries []types.PutRecordsRequestEntry
		var keys []int
		kp.mu.Lock()
		for j := range 100 {
			key := (c*100 + j) % kp.keys
			entries = append(entries, types.PutRecordsRequestEntry{Data: fmt.Appendf(nil, "k%d:%d", key, kp.next[key]), PartitionKey: aws.String(fmt.Sprintf("k%d", key))})
			keys = append(keys, key)
			kp.next[key]++
		}
		kp.mu.Unlock()
		// Not cancelled by ctx: an answer lost would leave records put
		// but not counted.
		out, err := kp.p.client.PutRecords(context.Background(), &awskinesis.PutRecordsInput{StreamName: aws.String(kp.p.stream), Records: entries})
		if err != nil {
			t.Errorf("put records: %v", err)
			return
		}
		kp.mu.Lock()
		for i, r := range out.Records {
			if r.SequenceNumber != nil {
				kp.put[keys[i]] = append(kp.put[keys[i]], string(entries[i].Data))
			} else {
				// Abandoned: a later record of the key must not look like a gap.
				t.Errorf("kinesalite refused a record: %v", aws.ToString(r.ErrorMessage))
			}
		}
		kp.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// fileOut delivers a stream to files under out/, one record per line.
const fileOut = "    destination: {type: file, path: out, append_newline: true}\n"

// kinesisConfig is a one-stream config reading p's stream from
// TRIM_HORIZON, with extra source keys, delivering as dest says (the
// stream's destination lines, fileOut for files under out/).
func kinesisConfig(t *testing.T, dir, addr string, p *kinesisPeer, extra, dest string) string {
	t.Helper()
	cfg := fmt.Sprintf(`listen: %s
streams:
  kin:
    type: KinesisStreamAsSource
    source:
      type: kinesis
      stream: %s
      endpoint: %s
      starting_position: TRIM_HORIZON
      discover_interval: 1s
      poll_interval: 200ms
%s    buffering: {size: 1, interval: 1}
%s`, addr, p.stream, p.k.Endpoint, extra, dest)
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKinesisKill9Resharding: a producer puts keyed records into a stream
// of 4 shards without pause; the daemon is killed with SIGKILL at random
// moments 6 times and restarted, while a shard is split and two are
// merged. Every record put reaches the HTTP endpoint exactly once (a
// batch redelivered after a kill has its request id again, which the
// endpoint deduplicates on), and each key's records in order (a parent's
// before its children's): the checkpoints ride with the records in the
// buffer, so a restart neither loses nor re-reads one.
func TestKinesisKill9Resharding(t *testing.T) {
	p := startKinesis(t, 4)
	dir := t.TempDir()
	addr := freeAddr(t)
	// One batch in flight: the receiver gets the batches in buffer order,
	// each redelivered one under its request id again.
	r := startReceiver(t, receiver.Config{})
	cfg := kinesisConfig(t, dir, addr, p, "", fmt.Sprintf(`    max_in_flight: 1
    destination: {type: http_endpoint, url: %q}
    error_output: {type: file, path: errors}
`, r.URL()))
	env := []string{"AWS_ACCESS_KEY_ID=any", "AWS_SECRET_ACCESS_KEY=any"}
	d := startDaemonEnv(t, cfg, dir, addr, env)
	kp := &keyedProducer{p: p, keys: 24}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); kp.run(ctx, t) }()
	shards, err := p.client.ListShards(context.Background(), &awskinesis.ListShardsInput{StreamName: aws.String(p.stream)})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(i int) *string { return shards.Shards[i].ShardId }
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 10))
	for kill := range 6 {
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		d.kill()
		switch kill {
		case 1:
			half := new(big.Int).Rsh(new(big.Int).Lsh(big.NewInt(1), 128), 3)
			if _, err := p.client.SplitShard(context.Background(), &awskinesis.SplitShardInput{StreamName: aws.String(p.stream),
				ShardToSplit: ids(0), NewStartingHashKey: aws.String(half.String())}); err != nil {
				t.Fatal(err)
			}
			p.waitActive(t)
		case 3:
			if _, err := p.client.MergeShards(context.Background(), &awskinesis.MergeShardsInput{StreamName: aws.String(p.stream),
				ShardToMerge: ids(2), AdjacentShardToMerge: ids(3)}); err != nil {
				t.Fatal(err)
			}
			p.waitActive(t)
		}
		d = startDaemonEnv(t, cfg, dir, addr, env)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	<-done
	total := 0
	for _, recs := range kp.put {
		total += len(recs)
	}
	if !waitFor(60*time.Second, func() bool { return len(r.UniqueRecords()) >= total }) {
		t.Fatalf("%d of %d records delivered\n%s", len(r.UniqueRecords()), total, d.log.String())
	}
	time.Sleep(1500 * time.Millisecond) // anything more (a duplicate) would come now
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	got := make([][]string, kp.keys)
	for _, rec := range r.UniqueRecords() {
		k, _, _ := strings.Cut(string(rec), ":")
		kn, err := strconv.Atoi(strings.TrimPrefix(k, "k"))
		if err != nil || kn >= kp.keys {
			t.Fatalf("unexpected record %q", rec)
		}
		got[kn] = append(got[kn], string(rec))
	}
	for k := range kp.keys {
		if g, w := strings.Join(got[k], ","), strings.Join(kp.put[k], ","); g != w {
			t.Fatalf("key k%d: delivered %d records, put %d: lost, duplicated or out of order\ngot  %.300s\nwant %.300s", k, len(got[k]), len(kp.put[k]), g, w)
		}
	}
	if errs := deliveredLines(t, filepath.Join(dir, "errors")); len(errs) != 0 {
		t.Fatalf("%d records dead-lettered", len(errs))
	}
	t.Logf("%d records put over 7 shards, delivered once each and in order per key across 6 kills (%d batches redelivered under their request id)",
		total, len(r.Deliveries())-len(r.UniqueDeliveries()))
}

// TestKinesisReadiness: /readyz turns 503, naming the stream and its
// source, when the Kinesis endpoint stops answering, and 200 again when
// it is back; records put then are delivered.
func TestKinesisReadiness(t *testing.T) {
	p := startKinesis(t, 2)
	dir := t.TempDir()
	addr := freeAddr(t)
	d := startDaemonEnv(t, kinesisConfig(t, dir, addr, p, "", fileOut), dir, addr, []string{"AWS_ACCESS_KEY_ID=any", "AWS_SECRET_ACCESS_KEY=any"})
	readyz := func(status int, contains string) {
		t.Helper()
		var code int
		var text string
		if !waitFor(15*time.Second, func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			code, text = resp.StatusCode, string(b)
			return code == status && strings.Contains(text, contains)
		}) {
			t.Fatalf("/readyz answered %d %q, want %d containing %q\n%s", code, text, status, contains, d.log.String())
		}
	}
	readyz(200, "ready")
	p.k.Stop()
	readyz(503, "stream kin")
	readyz(503, "source kinesis")
	// kinesalite keeps its streams in memory: the same stream is made
	// again (its shards have the same ids).
	p.k.Start()
	if _, err := p.client.CreateStream(context.Background(), &awskinesis.CreateStreamInput{StreamName: aws.String(p.stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	p.waitActive(t)
	readyz(200, "ready")
	lines := []string{`{"after":"outage","n":1}`, `{"after":"outage","n":2}`, `{"after":"outage","n":3}`}
	p.putLines(t, lines)
	if !waitFor(15*time.Second, func() bool { return len(deliveredLines(t, filepath.Join(dir, "out"))) == len(lines) }) {
		t.Fatalf("records put after the outage not delivered: %v\n%s", deliveredLines(t, filepath.Join(dir, "out")), d.log.String())
	}
	if n := strings.Count(d.log.String(), "calls to Kinesis fail"); n > 3 {
		t.Errorf("the outage was logged %d times: once when it begins is enough", n)
	}
}

// fleetMember is one daemon of a fleet sharing a stream.
type fleetMember struct {
	name, dir, addr, cfg string
	d                    *daemon
}

func (m *fleetMember) leases(t *testing.T) int {
	return int(metricSum(scrape(t, m.addr), "sluice_kinesis_leases_held"))
}

// TestKinesisFleet: two, then three daemons share a stream of 4 shards
// through leases in PostgreSQL and split its shards evenly (2/2, then at
// most 2 each); one is killed with SIGKILL and the others take its
// shards within the failover time. It is restarted (what it had buffered
// is on its disk) and rejoins. Every record put is delivered; a
// record delivered twice lies in the killed daemon's un-checkpointed
// window, and the daemons that took over count at least as many
// redelivered records as there are duplicates.
func TestKinesisFleet(t *testing.T) {
	p := startKinesis(t, 4)
	dsn, schema := testpeers.PostgresSchema(t, "fleet")
	const leaseDuration = 3 * time.Second
	env := []string{"AWS_ACCESS_KEY_ID=any", "AWS_SECRET_ACCESS_KEY=any"}
	member := func(name string) *fleetMember {
		m := &fleetMember{name: name, dir: t.TempDir(), addr: freeAddr(t)}
		m.cfg = kinesisConfig(t, m.dir, m.addr, p, fmt.Sprintf("      fleet: {dsn: %q, schema: %s, worker: %s, lease_duration: %s}\n", dsn, schema, name, leaseDuration), fileOut)
		m.d = startDaemonEnv(t, m.cfg, m.dir, m.addr, env)
		return m
	}
	balanced := func(ms []*fleetMember, most int) bool {
		total := 0
		for _, m := range ms {
			n := m.leases(t)
			if n > most || n == 0 {
				return false
			}
			total += n
		}
		return total == 4
	}
	kp := &keyedProducer{p: p, keys: 24}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); kp.run(ctx, t) }()

	a, b := member("a"), member("b")
	if !waitFor(20*time.Second, func() bool { return balanced([]*fleetMember{a, b}, 2) }) {
		t.Fatalf("two members: leases %d/%d, want 2/2\n%s\n%s", a.leases(t), b.leases(t), a.d.log.String(), b.d.log.String())
	}
	c := member("c")
	all := []*fleetMember{a, b, c}
	if !waitFor(20*time.Second, func() bool { return balanced(all, 2) }) {
		t.Fatalf("three members: leases %d/%d/%d, want at most 2 each, 4 in all", a.leases(t), b.leases(t), c.leases(t))
	}
	time.Sleep(time.Second)
	// Kill the one holding the most: its shards must move to the others.
	victim := a
	for _, m := range all {
		if m.leases(t) > victim.leases(t) {
			victim = m
		}
	}
	var rest []*fleetMember
	for _, m := range all {
		if m != victim {
			rest = append(rest, m)
		}
	}
	victim.d.kill()
	killed := time.Now()
	// Failover time: the lease duration (by the survivors' clocks) plus
	// one take round (half of it); 2x is the bound with some slack.
	if !waitFor(2*leaseDuration, func() bool {
		n := 0
		for _, m := range rest {
			n += m.leases(t)
		}
		return n == 4
	}) {
		t.Fatalf("the survivors hold %d and %d leases %v after the kill", rest[0].leases(t), rest[1].leases(t), 2*leaseDuration)
	}
	failover := time.Since(killed)
	time.Sleep(time.Second)
	// The records it had buffered (and checkpointed) are on its disk:
	// they are delivered when it comes back, as after any crash. It
	// rejoins the fleet.
	victim.d = startDaemonEnv(t, victim.cfg, victim.dir, victim.addr, env)
	time.Sleep(time.Second)
	stop()
	<-done

	total := 0
	for _, recs := range kp.put {
		total += len(recs)
	}
	seen := map[string]int{}
	count := func() int {
		clear(seen)
		n := 0
		for _, m := range all {
			for l, c := range deliveredLines(t, filepath.Join(m.dir, "out")) {
				seen[l] += c
				n += c
			}
		}
		return len(seen)
	}
	if !waitFor(60*time.Second, func() bool { return count() >= total }) {
		t.Fatalf("%d of %d records delivered", count(), total)
	}
	time.Sleep(1500 * time.Millisecond)
	count()
	redelivered := 0.0
	for _, m := range rest {
		redelivered += metricSum(scrape(t, m.addr), "sluice_kinesis_redelivered_records_total")
	}
	dups := 0
	for k, recs := range kp.put {
		for _, r := range recs {
			switch seen[r] {
			case 0:
				t.Fatalf("key k%d: record %q lost", k, r)
			case 1:
			default:
				dups += seen[r] - 1
			}
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct records delivered, %d put", len(seen), total)
	}
	if float64(dups) > redelivered {
		t.Fatalf("%d records delivered twice, but only %v counted as redelivered after the takeover", dups, redelivered)
	}
	for _, m := range all {
		if err := m.d.stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d records put; failover in %v (lease duration %v); %d duplicates, %v counted as redelivered",
		total, failover.Round(100*time.Millisecond), leaseDuration, dups, redelivered)
}

// kplRecord frames user records as one KPL aggregated record (magic,
// protobuf AggregatedRecord, MD5), written here from the format's
// specification, independent of the de-aggregator under test.
func kplRecord(keys []string, data []string) []byte {
	var msg []byte
	varint := func(b []byte, v uint64) []byte {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		return append(b, byte(v))
	}
	field := func(b []byte, num int, v []byte) []byte {
		b = varint(b, uint64(num)<<3|2)
		b = varint(b, uint64(len(v)))
		return append(b, v...)
	}
	for _, k := range keys {
		msg = field(msg, 1, []byte(k)) // partition_key_table
	}
	for i, d := range data {
		var rec []byte
		rec = varint(rec, 1<<3) // field 1 (partition_key_index), varint wire type 0
		rec = varint(rec, uint64(i%len(keys)))
		rec = field(rec, 3, []byte(d)) // data
		msg = field(msg, 3, rec)       // records
	}
	sum := md5.Sum(msg)
	return append(append([]byte{0xF3, 0x89, 0x9A, 0xC2}, msg...), sum[:]...)
}

// TestKinesisKPLAndWasmMetadata: KPL-aggregated records read from
// kinesalite are de-aggregated (record_deaggregation KPL), and a wasm
// transform receives each user record with Firehose's
// kinesisRecordMetadata (shardId, partitionKey of the user record,
// approximateArrivalTimestamp, sequenceNumber, subsequenceNumber) and the
// source stream's ARN.
func TestKinesisKPLAndWasmMetadata(t *testing.T) {
	p := startKinesis(t, 2)
	mod := goGuest(t, "testdata/kinesismeta")
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := kinesisConfig(t, dir, addr, p, "", fmt.Sprintf(`    processors:
      - {type: record_deaggregation, sub_record_type: KPL}
      - {type: wasm, module: %s}
`, mod)+fileOut)
	d := startDaemonEnv(t, cfg, dir, addr, []string{"AWS_ACCESS_KEY_ID=any", "AWS_SECRET_ACCESS_KEY=any"})
	agg := kplRecord([]string{"user-a", "user-b"}, []string{"one", "two", "three"})
	out, err := p.client.PutRecord(context.Background(), &awskinesis.PutRecordInput{StreamName: aws.String(p.stream), Data: agg, PartitionKey: aws.String("agg")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.PutRecord(context.Background(), &awskinesis.PutRecordInput{StreamName: aws.String(p.stream), Data: []byte("plain"), PartitionKey: aws.String("solo")}); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if !waitFor(20*time.Second, func() bool { got = deliveredLines(t, filepath.Join(dir, "out")); return len(got) >= 4 }) {
		t.Fatalf("delivered %v\n%s", got, d.log.String())
	}
	type line struct {
		Data      string            `json:"data"`
		Meta      map[string]string `json:"meta"`
		SourceARN string            `json:"source_arn"`
	}
	byData := map[string]line{}
	for l := range got {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		byData[v.Data] = v
	}
	for i, want := range []struct{ data, key, sub string }{{"one", "user-a", "0"}, {"two", "user-b", "1"}, {"three", "user-a", "2"}} {
		v, ok := byData[want.data]
		m := v.Meta
		if !ok || m["partitionKey"] != want.key || m["subsequenceNumber"] != want.sub || m["sequenceNumber"] != aws.ToString(out.SequenceNumber) ||
			m["shardId"] != aws.ToString(out.ShardId) || m["approximateArrivalTimestamp"] == "" || !strings.HasSuffix(v.SourceARN, ":stream/"+p.stream) {
			t.Fatalf("user record %d: %+v", i, v)
		}
	}
	if v := byData["plain"]; v.Meta["partitionKey"] != "solo" || v.Meta["subsequenceNumber"] != "" {
		t.Fatalf("a record that is not aggregated: %+v", v)
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
}
