package firehoseapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/pipeline"
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

// skipper is an Appender that stores a replay's records above the last
// number it stored, as the daemon's router does, and keeps what it saw.
type skipper struct {
	last  int
	metas []map[string]string
}

func (s *skipper) Append(_ context.Context, _ string, recs []pipeline.Record) error {
	for i := range recs {
		s.metas = append(s.metas, recs[i].Meta)
		seq, err := strconv.Atoi(recs[i].Meta[pipeline.MetaReplaySeq])
		if recs[i].Meta != nil && (err != nil || seq <= s.last) {
			continue // left without an ID
		}
		recs[i].ID = "id-" + strconv.Itoa(i)
		if recs[i].Meta != nil {
			s.last = seq
		}
	}
	return nil
}

// TestReplayHeaders: a PutRecordBatch with the replay headers gives its
// records their run and numbers as metadata; records the Appender leaves
// without an ID are answered with an empty RecordId and counted in
// X-Sluice-Replay-Skipped; the pooled records do not keep the metadata;
// malformed headers, and replay headers on PutRecord, are refused.
func TestReplayHeaders(t *testing.T) {
	app := &skipper{last: 11}
	h, err := NewHandler(Config{Appender: app, Streams: []StreamInfo{{Name: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	send := func(target, body string, hdr map[string]string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("X-Amz-Target", targetPrefix+target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp, out
	}
	run := map[string]string{ReplayIDHeader: "run-1", ReplaySeqHeader: "10"}
	resp, out := send("PutRecordBatch", batchBody("s", []byte("a"), []byte("b"), []byte("c"), []byte("d")), run)
	if resp.StatusCode != 200 || out["FailedPutCount"] != float64(0) || resp.Header.Get(ReplaySkippedHeader) != "2" {
		t.Fatalf("replay batch: %d %v skipped %q", resp.StatusCode, out, resp.Header.Get(ReplaySkippedHeader))
	}
	var ids []string
	for _, e := range out["RequestResponses"].([]any) {
		ids = append(ids, e.(map[string]any)["RecordId"].(string))
	}
	if ids[0] != "" || ids[1] != "" || ids[2] == "" || ids[3] == "" {
		t.Fatalf("RecordIds %q: want the first two (10, 11) empty", ids)
	}
	for i, m := range app.metas {
		if m[pipeline.MetaReplayID] != "run-1" || m[pipeline.MetaReplaySeq] != strconv.Itoa(10+i) {
			t.Fatalf("record %d metadata %v", i, m)
		}
	}
	resp, _ = send("PutRecordBatch", batchBody("s", []byte("plain")), nil)
	if resp.StatusCode != 200 || app.metas[len(app.metas)-1] != nil || resp.Header.Get(ReplaySkippedHeader) != "" {
		t.Fatalf("a plain batch after a replay: %d, metadata %v", resp.StatusCode, app.metas[len(app.metas)-1])
	}
	for _, bad := range []map[string]string{
		{ReplayIDHeader: "run-1"}, {ReplaySeqHeader: "1"}, {ReplayIDHeader: "a b", ReplaySeqHeader: "1"},
		{ReplayIDHeader: "run", ReplaySeqHeader: "-1"},
	} {
		if resp, _ := send("PutRecordBatch", batchBody("s", []byte("x")), bad); resp.StatusCode != 400 {
			t.Fatalf("headers %v: %d", bad, resp.StatusCode)
		}
	}
	if resp, _ := send("PutRecord", putBody("s", []byte("x")), run); resp.StatusCode != 400 {
		t.Fatalf("PutRecord with replay headers: %d", resp.StatusCode)
	}
}

// TestDescribeEncryption: a stream encrypted at rest is described as
// Firehose describes one (ENABLED, its key type and ARN); one that is not,
// DISABLED without a key.
func TestDescribeEncryption(t *testing.T) {
	e := newEnv(t)
	arn := "arn:aws:kms:eu-west-3:" + testAccount + ":key/k1"
	if err := e.h.Update(Config{Region: "eu-west-3", AccountID: testAccount, Appender: e.bufs, Metrics: e.metrics,
		Streams: []StreamInfo{{Name: "alpha", Encryption: &Encryption{KeyType: "CUSTOMER_MANAGED_CMK", KeyARN: arn}}, {Name: "beta"}}}); err != nil {
		t.Fatal(err)
	}
	enc := func(name string) map[string]any {
		r := e.op(t, "DescribeDeliveryStream", `{"DeliveryStreamName":"`+name+`"}`)
		return r.body["DeliveryStreamDescription"].(map[string]any)["DeliveryStreamEncryptionConfiguration"].(map[string]any)
	}
	if got := enc("alpha"); got["Status"] != "ENABLED" || got["KeyType"] != "CUSTOMER_MANAGED_CMK" || got["KeyARN"] != arn {
		t.Fatalf("encrypted stream: %v", got)
	}
	if got := enc("beta"); len(got) != 1 || got["Status"] != "DISABLED" {
		t.Fatalf("plain stream: %v", got)
	}
}
