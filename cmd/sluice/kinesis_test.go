package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
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
				KinesisStreamSourceDescription struct{ KinesisStreamARN string }
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &desc); err != nil || status != 200 {
		t.Fatalf("describe: %d %s", status, body)
	}
	dd := desc.DeliveryStreamDescription
	if dd.DeliveryStreamType != "KinesisStreamAsSource" || !strings.HasSuffix(dd.Source.KinesisStreamSourceDescription.KinesisStreamARN, ":stream/"+p.stream) {
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
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
		out, err := kp.p.client.PutRecords(ctx, &awskinesis.PutRecordsInput{StreamName: aws.String(kp.p.stream), Records: entries})
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("put records: %v", err)
			}
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

// checkKeyedDelivery checks that every record put was delivered exactly
// once and, per key, in order across the delivered files (sorted by the
// batch identity in their names).
func checkKeyedDelivery(t *testing.T, root string, kp *keyedProducer) (dups int) {
	t.Helper()
	type file struct {
		name  string
		lines []string
	}
	var files []file
	err := filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, file{e.Name(), splitLines(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(files, func(i, j int) bool { return batchOf(files[i].name) < batchOf(files[j].name) })
	got := make([][]string, kp.keys)
	for _, f := range files {
		for _, l := range f.lines {
			k, _, _ := strings.Cut(l, ":")
			kn, err := strconv.Atoi(strings.TrimPrefix(k, "k"))
			if err != nil || kn >= kp.keys {
				t.Fatalf("unexpected line %q in %s", l, f.name)
			}
			got[kn] = append(got[kn], l)
		}
	}
	for k := range kp.keys {
		want := kp.put[k]
		if strings.Join(got[k], ",") != strings.Join(want, ",") {
			seen := map[string]int{}
			for _, l := range got[k] {
				seen[l]++
			}
			lost, twice := 0, 0
			for _, w := range want {
				switch seen[w] {
				case 0:
					lost++
				case 1:
				default:
					twice++
				}
			}
			t.Fatalf("key k%d: %d records delivered, %d put: %d lost, %d more than once, or out of order", k, len(got[k]), len(want), lost, twice)
		}
	}
	return 0
}

// batchOf returns the part of a delivered file's name that orders it:
// the batch identity ("<first>-<end>" in hex) after the stream name.
func batchOf(name string) string {
	i := strings.Index(name, "-1-")
	if i < 0 {
		return name
	}
	return name[i:]
}
