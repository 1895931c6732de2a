package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers/receiver"
	"github.com/sluice-dev/sluice/deploy/testpeers/testcert"
)

// reloadStream is one stream block of the reload test's configurations.
func reloadStream(name, body string) string {
	return "  " + name + ":\n" + body
}

func reloadFile(t *testing.T, path, addr string, streams ...string) {
	t.Helper()
	cfg := fmt.Sprintf("listen: %s\nshutdown_timeout: 20s\nstreams:\n%s", addr, strings.Join(streams, ""))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// producer puts numbered records into one stream until stopped or until
// a request fails, and keeps the records acknowledged by complete
// answers. Records in a failed request are never sent again.
type producer struct {
	stream string
	id     int
	mu     sync.Mutex
	acked  []string
	sent   map[string]bool // every record sent, answered or not
	errs   []error
	done   chan struct{}
}

// With untilGone, the producer stops once the stream is not found.
func startProducer(ctx context.Context, addr, stream string, id int, untilGone bool) *producer {
	p := &producer{stream: stream, id: id, done: make(chan struct{}), sent: map[string]bool{}}
	c := &http.Client{Timeout: 30 * time.Second}
	go func() {
		defer close(p.done)
		for n := 0; ctx.Err() == nil; {
			recs := make([][]byte, 25)
			for i := range recs {
				recs[i] = fmt.Appendf(nil, `{"stream":%q,"producer":%d,"n":%d}`, stream, id, n)
				p.mu.Lock()
				p.sent[string(recs[i])] = true
				p.mu.Unlock()
				n++
			}
			ok, err := putBatch(ctx, c, addr, stream, recs)
			if ctx.Err() != nil {
				return // an answer cut by the stop is neither acked nor an error
			}
			p.mu.Lock()
			if err != nil {
				p.errs = append(p.errs, err)
			}
			for i, good := range ok {
				if good {
					p.acked = append(p.acked, string(recs[i]))
				} else {
					p.errs = append(p.errs, fmt.Errorf("record %s failed", recs[i]))
				}
			}
			gone := err != nil && strings.Contains(err.Error(), "ResourceNotFoundException")
			p.mu.Unlock()
			if gone && untilGone {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return p
}

func (p *producer) result() ([]string, []error) {
	<-p.done
	return p.acked, p.errs
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

func reload(t *testing.T, addr string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/-/reload", nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// TestReloadUnderLoad: while producers put into every stream, reloads add
// a stream, remove one, change one (its buffer options, which reopens the
// buffer, then its destination's prefix over the same buffer) and change
// one in its tags only; a bad file is rejected with each of its errors
// while the old configuration keeps serving. The untouched stream's
// producers see no error at all, and every record acknowledged in any
// stream is delivered exactly once.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	file := func(name, extra string) string {
		return fmt.Sprintf("    buffering: {size: 1, interval: 1}\n%s    destination: {type: file, path: out/%s, append_newline: true}\n", extra, name)
	}
	keep := reloadStream("keep", file("keep", ""))
	reloadFile(t, cfg, addr, keep, reloadStream("change", file("change", "")), reloadStream("drop", file("drop", "")))
	d := startDaemonBin(t, raceDaemonBin(t), cfg, dir, addr, nil)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	keepers := []*producer{startProducer(ctx, addr, "keep", 1, false), startProducer(ctx, addr, "keep", 2, false)}
	changer := startProducer(ctx, addr, "change", 1, false)
	dropper := startProducer(ctx, addr, "drop", 1, true)
	progress := func(ps ...*producer) {
		t.Helper()
		before := make([]int, len(ps))
		for i, p := range ps {
			before[i] = p.count()
		}
		if !waitFor(10*time.Second, func() bool {
			for i, p := range ps {
				if p.count() < before[i]+200 {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("producers stalled:\n%s", d.log.String())
		}
	}
	progress(keepers[0], keepers[1], changer, dropper)

	// 1: add, remove, and change the buffer options (reopened).
	reloadFile(t, cfg, addr, keep,
		reloadStream("change", file("change", "    buffer: {durability: os, segment_bytes: 8MiB}\n")),
		reloadStream("added", file("added", "")))
	if code, body := reload(t, addr); code != http.StatusOK {
		t.Fatalf("reload 1: HTTP %d %s\n%s", code, body, d.log.String())
	}
	// (A request already past the API when the stream went may fail
	// otherwise; its records are not acknowledged.)
	if _, errs := dropper.result(); len(errs) == 0 || !strings.Contains(errs[len(errs)-1].Error(), "ResourceNotFoundException") {
		t.Fatalf("the removed stream still takes records, or fails otherwise: %v", errs)
	}
	adder := startProducer(ctx, addr, "added", 1, false)
	progress(keepers[0], keepers[1], changer, adder)

	// 2: a bad file is rejected with all its errors; nothing changes.
	reloadFile(t, cfg, addr, keep,
		reloadStream("change", "    buffering: {size: 999}\n    destination: {type: file, path: out/change}\n"),
		reloadStream("broken", "    destination: {type: nosuch}\n"))
	code, body := reload(t, addr)
	if code != http.StatusBadRequest || !strings.Contains(body, "size") || !strings.Contains(body, `unknown destination type "nosuch"`) {
		t.Fatalf("bad reload: HTTP %d %s", code, body)
	}
	progress(keepers[0], keepers[1], changer, adder)

	// 3 (SIGHUP): the changed stream gets a new prefix over the same
	// buffer; the added one new tags only.
	reloadFile(t, cfg, addr, keep,
		reloadStream("change", "    buffer: {durability: os, segment_bytes: 8MiB}\n    buffering: {size: 1, interval: 1}\n    destination: {type: file, path: out/change, prefix: v3/, append_newline: true}\n"),
		reloadStream("added", file("added", "    tags: {team: data}\n")))
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return strings.Count(d.log.String(), `msg="configuration reloaded"`) == 2 }) {
		t.Fatalf("SIGHUP reload not logged:\n%s", d.log.String())
	}
	logs := d.log.String()
	if !strings.Contains(logs, "changed=[change] api_only=[added]") {
		t.Fatalf("the third reload did not change exactly 'change', and 'added' in its API view only:\n%s", logs)
	}
	progress(keepers[0], keepers[1], changer, adder)
	m := scrape(t, addr)
	for _, want := range []string{`sluice_config_reloads_total{result="success"} 2`, `sluice_config_reloads_total{result="failure"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	stop()
	if err := d.stop(30 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, d.log.String())
	}

	got := deliveredLines(t, filepath.Join(dir, "out"))
	sent := map[string]bool{}
	total := 0
	for _, p := range append(keepers, changer, dropper, adder) {
		acked, errs := p.result()
		if p.stream != "drop" && len(errs) > 0 {
			t.Errorf("stream %s, producer %d: %d errors, first: %v", p.stream, p.id, len(errs), errs[0])
		}
		for _, r := range acked {
			if got[r] != 1 {
				t.Errorf("acknowledged record delivered %d times: %s", got[r], r)
			}
		}
		total += len(acked)
		for r := range p.sent {
			sent[r] = true
		}
	}
	for r, n := range got {
		if !sent[r] || n != 1 {
			t.Errorf("delivered %d times, sent: %v: %s", n, sent[r], r)
		}
	}
	for _, want := range []string{"out/change/v3/", "out/added/", "out/drop/"} {
		matches, _ := filepath.Glob(filepath.Join(dir, want+"*"))
		if len(matches) == 0 {
			t.Errorf("nothing delivered under %s", want)
		}
	}
	t.Logf("%d records acknowledged and delivered once across three reloads", total)
}

// TestReloadListenersAndAuth: a reload moves the operational endpoints to
// a new admin listener behind a token, turns SigV4 auth on and off, moves
// the API to another address and switches it to TLS, each taking effect
// at once.
func TestReloadListenersAndAuth(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	api, admin, moved := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	write := func(listen, top string) {
		t.Helper()
		body := fmt.Sprintf("listen: %s\n%sstreams:\n  s:\n    destination: {type: file, path: out}\n", listen, top)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &http.Client{Timeout: 5 * time.Second}
	get := func(url, token string) int {
		t.Helper()
		code, _ := authGet(t, url, token)
		return code
	}
	reloadAt := func(addr, token string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/-/reload", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if code, body := do(t, req); code != http.StatusOK {
			t.Fatalf("reload: HTTP %d %s", code, body)
		}
	}
	put := func(addr string) error {
		_, err := putBatch(context.Background(), c, addr, "s", [][]byte{[]byte("x")})
		return err
	}

	write(api, "")
	d := startDaemonBin(t, raceDaemonBin(t), cfg, dir, api, nil)
	if code := get("http://"+api+"/metrics", ""); code != http.StatusOK {
		t.Fatalf("/metrics on the API listener: %d", code)
	}

	// An admin listener with a token: the operational endpoints move.
	write(api, fmt.Sprintf("admin_listen: %s\nadmin_token: tok\n", admin))
	reloadAt(api, "")
	if code := get("http://"+api+"/metrics", ""); code == http.StatusOK {
		t.Fatal("the API listener still serves /metrics")
	}
	if code := get("http://"+admin+"/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("admin /metrics without the token: %d", code)
	}
	if code := get("http://"+admin+"/metrics", "tok"); code != http.StatusOK {
		t.Fatalf("admin /metrics with the token: %d", code)
	}
	if err := put(api); err != nil {
		t.Fatalf("put after the admin listener moved: %v", err)
	}

	// SigV4 on: an unsigned put is refused; off again: accepted.
	adminTop := fmt.Sprintf("admin_listen: %s\nadmin_token: tok\n", admin)
	write(api, adminTop+"auth:\n  mode: sigv4\n  keys:\n    - access_key_id: AKIDRELOAD000000\n      secret_access_key: reload-secret\n")
	reloadAt(admin, "tok")
	if err := put(api); err == nil || !strings.Contains(err.Error(), "MissingAuthenticationToken") {
		t.Fatalf("unsigned put with auth on: %v", err)
	}
	write(api, adminTop)
	reloadAt(admin, "tok")
	if err := put(api); err != nil {
		t.Fatalf("unsigned put with auth off again: %v", err)
	}

	// The API moves to another address, then to TLS on it.
	write(moved, adminTop)
	reloadAt(admin, "tok")
	if err := put(moved); err != nil {
		t.Fatalf("put on the new address: %v", err)
	}
	if err := put(api); err == nil {
		t.Fatal("the old address still takes puts")
	}
	write(moved, adminTop+fmt.Sprintf("tls: {cert_file: %s, key_file: %s}\n", ca.ServerCertFile, ca.ServerKeyFile))
	reloadAt(admin, "tok")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(must(os.ReadFile(ca.CAFile)))
	tc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	if !waitFor(5*time.Second, func() bool {
		resp, err := tc.Post("https://"+moved+"/", "application/x-amz-json-1.1", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}) {
		t.Fatalf("no TLS on %s after the reload:\n%s", moved, d.log.String())
	}
	if strings.Count(d.log.String(), `msg="configuration reloaded"`) != 5 {
		t.Fatalf("want 5 reloads logged:\n%s", d.log.String())
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, d.log.String())
	}
}

// TestReloadAbandonsSlowBatch: a changed stream whose batch in flight
// does not finish within shutdown_timeout (the endpoint answers after 4
// s, the timeout is 1 s) is abandoned by the old runner and redelivered
// under the same identity by the new one: every record arrives, once per
// request id.
func TestReloadAbandonsSlowBatch(t *testing.T) {
	rcv := startReceiver(t, receiver.Config{})
	rcv.SetBehaviour(receiver.Behaviour{Delay: 4 * time.Second})
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	write := func(interval int) {
		t.Helper()
		body := fmt.Sprintf(`listen: %s
shutdown_timeout: 1s
streams:
  slow:
    max_in_flight: 1
    buffering: {size: 1, interval: %d}
    destination: {type: http_endpoint, url: %q}
    error_output: {type: file, path: errors}
`, addr, interval, rcv.URL())
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(1)
	d := startDaemonBin(t, raceDaemonBin(t), cfg, dir, addr, nil)
	c := &http.Client{Timeout: 5 * time.Second}
	var recs [][]byte
	for i := range 50 {
		recs = append(recs, fmt.Appendf(nil, "slow-%d", i))
	}
	if _, err := putBatch(context.Background(), c, addr, "slow", recs); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the batch is cut after 1 s and waits for its answer
	write(2)
	if code, body := reload(t, addr); code != http.StatusOK {
		t.Fatalf("reload: HTTP %d %s", code, body)
	}
	if !strings.Contains(d.log.String(), "did not finish within shutdown_timeout") {
		t.Fatalf("the batch in flight was not abandoned:\n%s", d.log.String())
	}
	rcv.SetBehaviour(receiver.Behaviour{})
	if !waitFor(15*time.Second, func() bool { counts, _ := acceptedRecords(rcv); return len(counts) == len(recs) }) {
		counts, _ := acceptedRecords(rcv)
		t.Fatalf("%d of %d records accepted:\n%s", len(counts), len(recs), d.log.String())
	}
	counts, _ := acceptedRecords(rcv)
	for _, r := range recs {
		if counts[string(r)] != 1 {
			t.Fatalf("record %s accepted under %d request ids", r, counts[string(r)])
		}
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, d.log.String())
	}
}
