package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuotaThrottlesPerRecord: a producer offering 3 times a stream's
// records-per-second quota gets "Slow down." for the records over it
// (PutRecordBatch: 200 with per-record errors; PutRecord: 503), exact
// counts: sluice_throttled_records_total equals the refused entries, and
// every accepted record is delivered, no refused one.
func TestQuotaThrottlesPerRecord(t *testing.T) {
	d, dir := startWith(t, `streams:
  limited:
    quota: {records_per_second: 200}
    buffering: {size: 1, interval: 1}
    destination: {type: file, path: out, append_newline: true}
`)
	ctx := context.Background()
	accepted, refused := map[string]bool{}, 0
	start := time.Now()
	n := 0
	for time.Since(start) < 3*time.Second {
		recs := make([][]byte, 40)
		for i := range recs {
			recs[i] = fmt.Appendf(nil, "rec-%05d", n)
			n++
		}
		codes, err := putBatchCodes(ctx, http.DefaultClient, d.addr, "limited", recs)
		if err != nil {
			t.Fatal(err)
		}
		seenRefusal := false
		for i, c := range codes {
			switch c {
			case "":
				if seenRefusal {
					t.Fatalf("record %d accepted after a refused one in the same batch", i)
				}
				accepted[string(recs[i])] = true
			case "ServiceUnavailableException":
				seenRefusal = true
				refused++
			default:
				t.Fatalf("record %d: %s", i, c)
			}
		}
		// 40 records every 10 ms and more: well over 600 a second, 3x the
		// quota, even on a loaded machine (50 ms was not, once, in CI).
		time.Sleep(10 * time.Millisecond)
	}
	offered := time.Since(start).Seconds()
	if rate := float64(n) / offered; rate < 600 {
		t.Fatalf("offered %.0f records/s: not 3x the quota", rate)
	}
	// PutRecord over the quota: 503 "Slow down.". A whole second's worth
	// is taken at once first: one PutRecord at a time, on a loaded machine,
	// may not outrun the refill.
	drain, err := putBatchCodes(ctx, http.DefaultClient, d.addr, "limited", make([][]byte, 500))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range drain {
		if c != "" {
			refused++
		}
	}
	got503 := false
	for range 400 {
		status, body := firehoseCall(t, d.addr, "PutRecord", `{"DeliveryStreamName":"limited","Record":{"Data":"eA=="}}`)
		if status == 503 {
			if !strings.Contains(body, `"ServiceUnavailableException"`) || !strings.Contains(body, "Slow down.") {
				t.Fatalf("PutRecord over the quota: %s", body)
			}
			refused++
			got503 = true
			break
		}
		if status != 200 {
			t.Fatalf("PutRecord: %d %s", status, body)
		}
		accepted["x"] = true
	}
	if !got503 {
		t.Fatal("PutRecord was never throttled")
	}
	if v := int(metricSum(scrape(t, d.addr), "sluice_throttled_records_total")); v != refused {
		t.Fatalf("sluice_throttled_records_total %d, refused entries %d", v, refused)
	}
	// About the quota's worth got in: 200 a second plus the first second's
	// burst, not the 600 offered.
	if max := int(200*(offered+1.5)) + 1; len(accepted) > max || len(accepted) < 200*int(offered)/2 {
		t.Fatalf("%d records accepted in %.1fs at a quota of 200/s", len(accepted), offered)
	}
	delete(accepted, "x")
	var got map[string]int
	if !waitFor(15*time.Second, func() bool {
		got = deliveredLines(t, filepath.Join(dir, "out"))
		n := 0
		for l := range got {
			if strings.HasPrefix(l, "rec-") {
				n++
			}
		}
		return n >= len(accepted)
	}) {
		t.Fatalf("delivered %d of %d accepted", len(got), len(accepted))
	}
	for l, c := range got {
		if strings.HasPrefix(l, "rec-") && (!accepted[l] || c != 1) {
			t.Fatalf("%s delivered %d times (accepted: %v)", l, c, accepted[l])
		}
	}
	t.Logf("offered %d records in %.1fs: %d accepted, %d refused", n, offered, len(accepted), refused)
}
