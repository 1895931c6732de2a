package firehoseapi

import (
	"testing"

	"github.com/sluice-dev/sluice/buffer/memory"
)

// TestUpdate: a stream added by Update takes puts, a removed one is not
// found, the region changes the ARNs, and an unchanged quota keeps its
// tokens while a changed one starts afresh. A bad configuration changes
// nothing.
func TestUpdate(t *testing.T) {
	e := newEnv(t)
	e.bufs["delta"] = memory.New(memory.Options{})
	quota := Quota{RequestsPerSecond: 1}
	base := Config{Region: "eu-west-3", AccountID: testAccount, Appender: e.bufs, Metrics: e.metrics,
		Streams: []StreamInfo{{Name: "alpha", Quota: quota}}}
	if err := e.h.Update(base); err != nil {
		t.Fatal(err)
	}
	if r := e.op(t, "PutRecord", putBody("alpha", []byte("a"))); r.status != 200 {
		t.Fatalf("alpha: %d %s", r.status, r.raw)
	}
	wantError(t, e.op(t, "PutRecord", putBody("beta", []byte("b"))), 400, errResourceNotFound, "beta")

	// The same quota: its only request token of this second is spent.
	next := base
	next.Streams = []StreamInfo{{Name: "alpha", Quota: quota}, {Name: "delta"}}
	next.Region = "us-west-2"
	if err := e.h.Update(next); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.op(t, "PutRecord", putBody("alpha", []byte("a"))), 503, errServiceUnavailable, "Slow down.")
	if r := e.op(t, "PutRecord", putBody("delta", []byte("d"))); r.status != 200 {
		t.Fatalf("delta: %d %s", r.status, r.raw)
	}
	r := e.op(t, "DescribeDeliveryStream", `{"DeliveryStreamName":"delta"}`)
	arn, _ := r.body["DeliveryStreamDescription"].(map[string]any)["DeliveryStreamARN"].(string)
	if want := "arn:aws:firehose:us-west-2:" + testAccount + ":deliverystream/delta"; arn != want {
		t.Fatalf("ARN %q, want %q", arn, want)
	}

	// A changed quota starts with a full bucket.
	next.Streams[0].Quota = Quota{RequestsPerSecond: 2}
	if err := e.h.Update(next); err != nil {
		t.Fatal(err)
	}
	if r := e.op(t, "PutRecord", putBody("alpha", []byte("a"))); r.status != 200 {
		t.Fatalf("alpha after its quota changed: %d %s", r.status, r.raw)
	}

	bad := next
	bad.Streams = append(bad.Streams, StreamInfo{Name: "delta"})
	if err := e.h.Update(bad); err == nil {
		t.Fatal("a stream defined twice was accepted")
	}
	if r := e.op(t, "PutRecord", putBody("delta", []byte("d"))); r.status != 200 {
		t.Fatalf("delta after a rejected update: %d %s", r.status, r.raw)
	}
	e.wantStored(t, "delta", 2)
}
