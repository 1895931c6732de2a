package guest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/wasm"
	"github.com/sluice-dev/sluice/transform/wasm/guest"
)

// guests holds testdata/echo, compiled once per test binary run.
var guests = testpeers.NewGuests()

func TestMain(m *testing.M) {
	code := m.Run()
	guests.Remove()
	os.Exit(code)
}

// echoModule returns the path of testdata/echo built as a wasip1 reactor
// (the SDK's own sources are watched too).
func echoModule(tb testing.TB) string {
	tb.Helper()
	return guests.Go(tb, "testdata/echo", ".")
}

func echoOptions(tb testing.TB) wasm.Options {
	opts := wasm.DefaultOptions()
	opts.Module = echoModule(tb)
	opts.CacheDir = filepath.Join(guests.Dir(tb), "cache")
	opts.Instances = 1
	return opts
}

func testDeps(tb testing.TB) pipeline.Deps {
	return pipeline.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DataDir: tb.TempDir()}
}

type echoed struct {
	ID         string            `json:"id"`
	Arrival    int64             `json:"arrival"`
	Data       string            `json:"data"`
	Meta       map[string]string `json:"meta"`
	Invocation guest.Invocation  `json:"invocation"`
	Config     string            `json:"config"`
	Env        string            `json:"env"`
}

// What the SDK decodes from the real host's input buffers: record fields,
// Kinesis metadata, invocation, configuration and environment.
func TestThroughHost(t *testing.T) {
	opts := echoOptions(t)
	opts.Env = map[string]string{"ECHO": "env value"}
	opts.Config = map[string]any{"table": "clicks", "max": 3}
	opts.Region = "eu-west-3"
	arrived := time.UnixMilli(1700000000123)
	kinesisARN := "arn:aws:kinesis:eu-west-3:123456789012:stream/src"
	meta := map[string]string{
		wasm.MetaSourceKinesisStreamARN: kinesisARN,
		"shardId":                       "shardId-000000000002",
		"partitionKey":                  "pk-1",
		"sequenceNumber":                "49650000000000000000000000",
		"subsequenceNumber":             "0",
	}
	recs := []pipeline.Record{
		{ID: "r0", Data: []byte("héllo"), Arrived: arrived, Meta: meta},
		{ID: "r1", Data: []byte{}, Arrived: arrived.Add(time.Second)},
	}
	res, err := wasm.RunModule(context.Background(), opts, testDeps(t), recs)
	if err != nil {
		t.Fatal(err)
	}
	var got []echoed
	for _, r := range res {
		var e echoed
		if r.Result != wasm.ResultOk {
			t.Fatalf("%+v", r)
		}
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatalf("%s: %v", r.Data, err)
		}
		got = append(got, e)
	}
	inv := got[0].Invocation
	if inv.ID == "" || inv.DeliveryStreamARN != "arn:aws:firehose:eu-west-3:000000000000:deliverystream/test" ||
		inv.Region != "eu-west-3" || inv.SourceKinesisStreamARN != kinesisARN || got[1].Invocation != inv {
		t.Errorf("invocations %+v, %+v", inv, got[1].Invocation)
	}
	for i, e := range got {
		if e.ID != recs[i].ID || e.Arrival != recs[i].Arrived.UnixMilli() || e.Data != string(recs[i].Data) ||
			e.Config != `{"max":3,"table":"clicks"}` || e.Env != "env value" {
			t.Errorf("record %d: %+v", i, e)
		}
	}
	for _, k := range []string{"shardId", "partitionKey", "sequenceNumber", "subsequenceNumber"} {
		if got[0].Meta[k] != meta[k] {
			t.Errorf("meta %s = %q, want %q (meta %v)", k, got[0].Meta[k], meta[k], got[0].Meta)
		}
	}
	if got[1].Meta != nil {
		t.Errorf("record without metadata: meta %v", got[1].Meta)
	}
}

// Every kind of result through the host, including the SDK's conversions of
// panics and invalid results into failed records.
func TestResultsThroughHost(t *testing.T) {
	data := []string{"drop", "fail", "panic", "keys", "empty key", "status", "upper in place", "empty"}
	recs := make([]pipeline.Record, len(data))
	for i, d := range data {
		recs[i] = pipeline.Record{ID: d, Data: []byte(d)}
	}
	res, err := wasm.RunModule(context.Background(), echoOptions(t), testDeps(t), recs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Dropped",
		"ProcessingFailed Lambda.ProcessingFailedStatus failed on purpose",
		"ProcessingFailed Lambda.ProcessingFailedStatus panic: boom",
		"Ok keys map[a:1 b:2]",
		"ProcessingFailed Lambda.ProcessingFailedStatus guest: empty partition key",
		"ProcessingFailed Lambda.ProcessingFailedStatus guest: invalid result status 9",
		"Ok UPPER IN PLACE map[]",
		"Ok  map[]",
	}
	for i, r := range res {
		var got string
		switch r.Result {
		case wasm.ResultOk:
			got = fmt.Sprintf("Ok %s %v", r.Data, r.PartitionKeys)
		case wasm.ResultProcessingFailed:
			got = "ProcessingFailed " + r.ErrorCode + " " + strings.TrimPrefix(r.ErrorMessage, wasm.MsgProcessingFailed+": ")
		default:
			got = r.Result
		}
		if r.RecordID != data[i] || got != want[i] {
			t.Errorf("%s: %q, want %q", r.RecordID, got, want[i])
		}
	}
}

// OnInit's error makes the processor fail to start.
func TestInitFailureThroughHost(t *testing.T) {
	opts := echoOptions(t)
	opts.Config = "fail"
	c, err := opts.Compile()
	if err != nil {
		t.Fatal(err)
	}
	p, err := wasm.New(c, testDeps(t))
	if err == nil {
		_ = p.Close(context.Background())
		t.Fatal("New succeeded with a failing OnInit")
	}
}
