package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

// browserResult is what deploy/testpeers/status-browser.mjs prints.
type browserResult struct {
	Status           int                           `json:"status"`
	Title            string                        `json:"title"`
	ConsoleErrors    []string                      `json:"consoleErrors"`
	PageErrors       []string                      `json:"pageErrors"`
	FailedRequests   []string                      `json:"failedRequests"`
	FormatMismatches []map[string]any              `json:"formatMismatches"`
	ComparedFormats  int                           `json:"comparedFormats"`
	Refreshes        int                           `json:"refreshes"`
	Stale            bool                          `json:"stale"`
	Problem          string                        `json:"problem"`
	Scripts          int                           `json:"scripts"`
	Process          map[string]any                `json:"process"`
	Streams          map[string]map[string]any     `json:"streams"`
	SparkPoints      map[string]map[string]int     `json:"sparkPoints"`
	Lists            map[string]map[string][][]any `json:"lists"`
	Texts            map[string]string             `json:"texts"`
}

// The page's counters and the families of /metrics they must equal.
var statusCounters = map[string]string{
	"incoming.records_total":  "sluice_incoming_records_total",
	"incoming.bytes_total":    "sluice_incoming_bytes_total",
	"delivered.records_total": "sluice_delivery_records_total",
	"delivered.bytes_total":   "sluice_delivery_bytes_total",
	"retries.total":           "sluice_delivery_retries_total",
	"dead_letters.total":      "sluice_dead_letter_records_total",
	"stalled_retries.total":   "sluice_runner_stalled_retries_total",
}

// And its gauges, which match exactly once the daemon is idle.
var statusGauges = map[string]string{
	"backlog_bytes":       "sluice_buffer_backlog_bytes",
	"in_flight_batches":   "sluice_delivery_in_flight_batches",
	"backlog_age_seconds": "sluice_delivery_data_freshness_seconds",
}

// TestStatusPageInBrowser is issue 12's acceptance of the status page: the
// real daemon with three streams (file; file with dynamic partitioning,
// whose non-JSON records are dead-lettered; an HTTP endpoint nobody
// listens on, retried then dead-lettered) under a load; the page loaded
// in Debian's headless Chromium shows every stream with no console or
// page error, refreshes itself, and shows the numbers of /metrics: during
// the load between a scrape before and one after, once the daemon is idle
// exactly. A screenshot is taken each time. sluice top reads the same
// daemon.
func TestStatusPageInBrowser(t *testing.T) {
	script := filepath.Join(testpeers.Dir(), "status-browser.mjs")
	if _, err := os.Stat(filepath.Join(testpeers.Dir(), "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is required (deploy/install-test-deps.sh installs it): %v", err)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("Debian's chromium is required (deploy/install-test-deps.sh installs it): %v", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required (deploy/install-test-deps.sh installs it): %v", err)
	}
	shots := os.Getenv("SLUICE_TEST_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	const token = "status-page-token-0123456789"
	dir := t.TempDir()
	d := startWithEnv(t, dir, fmt.Sprintf(`admin_token: ${ADMIN_TOKEN}
streams:
  alpha:
    buffering: {size: 1, interval: 1}
    destination: {type: file, path: alpha, append_newline: true}
  beta:
    buffering: {size: 1, interval: 1}
    processors:
      - type: metadata_extraction
        query: '{customer: .customer}'
    destination:
      type: file
      path: beta
      append_newline: true
      prefix: "customer=!{partitionKeyFromQuery:customer}/"
      error_output_prefix: "errors/!{firehose:error-output-type}/"
  gamma:
    buffering: {size: 1, interval: 1}
    retry: {duration: 2}
    destination: {type: http_endpoint, url: "http://%s/"}
    error_output: {type: file, path: gamma-errors}
`, freeAddr(t)), []string{"ADMIN_TOKEN=" + token})
	streams := []string{"alpha", "beta", "gamma"}
	base := "http://" + d.addr

	// The page is behind the admin token, as /metrics is.
	for _, p := range []string{"/status", "/status.json"} {
		if code, _ := authGet(t, base+p, ""); code != http.StatusUnauthorized {
			t.Fatalf("GET %s without the token: %d, want 401", p, code)
		}
	}

	// The load: every stream gets batches until stopped; one beta record
	// in ten is not JSON (dead-lettered by the processor).
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var wg sync.WaitGroup
	var loadErr error
	var errMu sync.Mutex
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				recs := make([][]byte, 50)
				for j := range recs {
					if s == "beta" && j%10 == 0 {
						recs[j] = fmt.Appendf(nil, "not json %d-%d", i, j)
					} else {
						recs[j] = fmt.Appendf(nil, `{"customer":"c%d","n":%d,"pad":"%s"}`, j%5, i*50+j, strings.Repeat("x", 100))
					}
				}
				if _, err := putBatch(ctx, client, d.addr, s, recs); err != nil && ctx.Err() == nil {
					errMu.Lock()
					loadErr = fmt.Errorf("put to %s: %w", s, err)
					errMu.Unlock()
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(40 * time.Millisecond):
				}
			}
		}()
	}

	// Wait until the sampler has two samples with the load in them.
	var doc map[string]any
	if !waitFor(45*time.Second, func() bool {
		doc = statusJSON(t, base, token)
		for _, s := range streamDocs(doc) {
			if r, _ := lookupAny(s, "incoming.records_per_second").(float64); r <= 0 {
				return false
			}
		}
		return len(streamDocs(doc)) == len(streams)
	}) {
		t.Fatalf("no incoming rate on every stream after 45 s: %v", doc)
	}

	// During the load: the page's counters lie between a scrape before it
	// loaded and one after.
	before := scrapeAuth(t, base, token)
	during := runBrowser(t, script, base+"/status?refresh=1", filepath.Join(shots, "status-under-load.png"), token, 1)
	after := scrapeAuth(t, base, token)
	checkBrowser(t, during, streams)
	for _, s := range streams {
		got := during.Streams[s]
		for field, family := range statusCounters {
			lo, hi := seriesSum(before, family, "stream", s), seriesSum(after, family, "stream", s)
			v, ok := got[field].(float64)
			if !ok || v < lo || v > hi {
				t.Errorf("under load, %s %s = %v, not within /metrics' %v..%v", s, field, got[field], lo, hi)
			}
		}
		if r, _ := got["incoming.records_per_second"].(float64); r <= 0 {
			t.Errorf("under load, %s shows incoming %v records/s", s, got["incoming.records_per_second"])
		}
	}
	if r, _ := during.Streams["alpha"]["delivered.records_per_second"].(float64); r <= 0 {
		t.Errorf("under load, alpha shows %v delivered records/s", during.Streams["alpha"]["delivered.records_per_second"])
	}

	stopLoad()
	wg.Wait()
	if loadErr != nil {
		t.Fatal(loadErr)
	}

	// Idle: nothing left in any buffer, and the counters stopped moving.
	var idle string
	if !waitFor(60*time.Second, func() bool {
		a := scrapeAuth(t, base, token)
		for _, s := range streams {
			if seriesSum(a, "sluice_buffer_backlog_bytes", "stream", s) != 0 || seriesSum(a, "sluice_delivery_in_flight_batches", "stream", s) != 0 {
				return false
			}
		}
		time.Sleep(500 * time.Millisecond)
		b := scrapeAuth(t, base, token)
		for _, s := range streams {
			for _, family := range statusCounters {
				if seriesSum(a, family, "stream", s) != seriesSum(b, family, "stream", s) {
					return false
				}
			}
		}
		idle = b
		return true
	}) {
		t.Fatalf("the daemon did not drain within 60 s:\n%s", d.log.String())
	}

	final := runBrowser(t, script, base+"/status?refresh=1", filepath.Join(shots, "status-idle.png"), token, 1)
	again := scrapeAuth(t, base, token)
	checkBrowser(t, final, streams)
	for _, s := range streams {
		got := final.Streams[s]
		for field, family := range statusCounters {
			want := seriesSum(idle, family, "stream", s)
			if w2 := seriesSum(again, family, "stream", s); w2 != want {
				t.Fatalf("%s %s moved while idle: %v then %v", s, family, want, w2)
			}
			if v, ok := got[field].(float64); !ok || v != want {
				t.Errorf("idle, %s %s = %v, /metrics says %v", s, field, got[field], want)
			}
		}
		for field, family := range statusGauges {
			want := seriesSum(idle, family, "stream", s)
			if v, ok := got[field].(float64); !ok || v != want {
				t.Errorf("idle, %s %s = %v, /metrics says %v", s, field, got[field], want)
			}
		}
		// Dead letters by code, row by row: [code, total, per second].
		rows := final.Lists[s]["dead_letters.by_code"]
		var codes []string
		for _, row := range rows {
			code, _ := row[0].(string)
			codes = append(codes, code)
			if want := seriesSum(idle, "sluice_dead_letter_records_total", "stream", s, "code", code); row[1] != want {
				t.Errorf("%s dead letters %q: page %v, /metrics %v", s, code, row[1], want)
			}
		}
		if want := familyLabels(idle, "sluice_dead_letter_records_total", "code", "stream", s); !slices.Equal(codes, want) {
			t.Errorf("%s dead-letter codes: page %v, /metrics %v", s, codes, want)
		}
		for path, n := range final.SparkPoints[s] {
			if n < 2 {
				t.Errorf("%s sparkline %s has %d points", s, path, n)
			}
		}
	}

	// What the load did, as the page shows it.
	alpha, beta, gamma := final.Streams["alpha"], final.Streams["beta"], final.Streams["gamma"]
	if alpha["incoming.records_total"] != alpha["delivered.records_total"] || alpha["dead_letters.total"] != 0.0 || alpha["ready"] != true {
		t.Errorf("alpha: %v", alpha)
	}
	in, _ := beta["incoming.records_total"].(float64)
	out, _ := beta["delivered.records_total"].(float64)
	if dead, _ := beta["dead_letters.total"].(float64); dead <= 0 || out <= 0 || out+dead != in {
		t.Errorf("beta: %v in, %v delivered, %v dead letters", in, out, dead)
	}
	if gamma["dead_letters.total"] != gamma["incoming.records_total"] || gamma["delivered.records_total"] != 0.0 {
		t.Errorf("gamma: every record should be dead-lettered: %v", gamma)
	}
	if r, _ := gamma["retries.total"].(float64); r <= 0 {
		t.Errorf("gamma shows %v retries", gamma["retries.total"])
	}
	if gamma["ready"] != false || gamma["not_ready_reason"] == nil || !strings.Contains(final.Texts["gamma"], "not ready") {
		t.Errorf("gamma shows ready %v (%v)", gamma["ready"], gamma["not_ready_reason"])
	}
	if msg, _ := gamma["last_error.message"].(string); msg == "" {
		t.Errorf("gamma shows no last error: %v", gamma)
	}
	if alpha["source"] != "DirectPut" || alpha["destination"] != "file" || gamma["destination"] != "http_endpoint" || gamma["error_output"] == nil {
		t.Errorf("facts: alpha %v %v, gamma %v %v", alpha["source"], alpha["destination"], gamma["destination"], gamma["error_output"])
	}
	if final.Process["version"] != "dev" {
		t.Errorf("version %v", final.Process["version"])
	}
	if up, _ := final.Process["uptime_seconds"].(float64); up <= 0 {
		t.Errorf("uptime %v", final.Process["uptime_seconds"])
	}

	// sluice top reads the same daemon, with the token from the environment.
	top := exec.Command(sluiceBin, "top", "--once", "--endpoint", base)
	top.Env = append(os.Environ(), "SLUICE_ADMIN_TOKEN="+token)
	table, err := top.CombinedOutput()
	if err != nil {
		t.Fatalf("sluice top --once: %v\n%s", err, table)
	}
	t.Logf("sluice top --once:\n%s", table)
	for _, s := range streams {
		if !bytes.Contains(table, []byte("\n"+s+" ")) {
			t.Errorf("sluice top shows no %s", s)
		}
	}
	if !bytes.Contains(table, []byte("NOT READY")) {
		t.Error("sluice top does not show gamma not ready")
	}
}

// runBrowser runs the Node script and returns its result; the screenshot
// must be a PNG.
func runBrowser(t *testing.T, script, url, shot, token string, refreshes int) browserResult {
	t.Helper()
	cmd := exec.Command("node", script, url, shot, strconv.Itoa(refreshes))
	cmd.Env = append(os.Environ(), "SLUICE_ADMIN_TOKEN="+token)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s%s", filepath.Base(script), err, out, stderr.String())
	}
	var r browserResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("the browser script's output: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	head := make([]byte, 8)
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the screenshot %s is not a PNG (%q, %v)", shot, head, err)
	}
	st, _ := f.Stat()
	t.Logf("screenshot: %s (%d bytes)", shot, st.Size())
	return r
}

// checkBrowser: the page loaded, without console, page or request
// errors, refreshed itself, shows exactly the configured streams, and its
// script formats values as the server does.
func checkBrowser(t *testing.T, r browserResult, streams []string) {
	t.Helper()
	if r.Status != 200 || r.Title != "Sluice status" {
		t.Errorf("the page answered %d, title %q", r.Status, r.Title)
	}
	if len(r.ConsoleErrors)+len(r.PageErrors)+len(r.FailedRequests) > 0 {
		t.Errorf("console %q, page errors %q, failed requests %q", r.ConsoleErrors, r.PageErrors, r.FailedRequests)
	}
	if r.Refreshes < 1 || r.Stale || r.Problem != "" {
		t.Errorf("refreshes %d, stale %v, problem %q", r.Refreshes, r.Stale, r.Problem)
	}
	if r.Scripts != 1 {
		t.Errorf("%d scripts on the page", r.Scripts)
	}
	if len(r.FormatMismatches) > 0 || r.ComparedFormats == 0 {
		t.Errorf("the script formats differently from the server (%d compared): %v", r.ComparedFormats, r.FormatMismatches)
	}
	var shown []string
	for name, fields := range r.Streams {
		shown = append(shown, name)
		for k := range fields {
			if strings.HasSuffix(k, "(differs)") {
				t.Errorf("stream %s shows %s two ways", name, k)
			}
		}
	}
	slices.Sort(shown)
	if !slices.Equal(shown, streams) {
		t.Errorf("the page shows streams %v, want %v", shown, streams)
	}
}

func authGet(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func scrapeAuth(t *testing.T, base, token string) string {
	t.Helper()
	code, b := authGet(t, base+"/metrics", token)
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, b)
	}
	return string(b)
}

func statusJSON(t *testing.T, base, token string) map[string]any {
	t.Helper()
	code, b := authGet(t, base+"/status.json", token)
	if code != 200 {
		t.Fatalf("GET /status.json: %d %s", code, b)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("/status.json: %v\n%s", err, b)
	}
	return doc
}

func streamDocs(doc map[string]any) []any {
	s, _ := doc["streams"].([]any)
	return s
}

func lookupAny(v any, path string) any {
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// seriesSum adds the values of a family's series (Prometheus text format)
// that carry every given label="value" pair.
func seriesSum(text, family string, labels ...string) float64 {
	var sum float64
	for line := range strings.SplitSeq(text, "\n") {
		set, ok := seriesLabels(line, family)
		if !ok || !hasLabels(set, labels) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// familyLabels is the sorted distinct values of label among a family's
// series that carry the given pairs.
func familyLabels(text, family, label string, labels ...string) []string {
	seen := map[string]bool{}
	for line := range strings.SplitSeq(text, "\n") {
		set, ok := seriesLabels(line, family)
		if ok && hasLabels(set, labels) {
			if v, ok := set[label]; ok {
				seen[v] = true
			}
		}
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// seriesLabels parses `family{a="x",b="y"} value` (label values without
// escapes, as this test's are).
func seriesLabels(line, family string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(line, family)
	if !ok {
		return nil, false
	}
	set := map[string]string{}
	if strings.HasPrefix(rest, " ") {
		return set, true
	}
	inner, ok := strings.CutPrefix(rest, "{")
	if !ok {
		return nil, false
	}
	inner, _, ok = strings.Cut(inner, "}")
	if !ok {
		return nil, false
	}
	for pair := range strings.SplitSeq(inner, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if ok {
			set[k] = strings.Trim(v, `"`)
		}
	}
	return set, true
}

func hasLabels(set map[string]string, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if set[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}
