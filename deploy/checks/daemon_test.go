package checks_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemon is a running `sluice run`, possibly under another program
// (strace): pid is the daemon's own process.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	pid  int
	ops  string // where /healthz, /readyz and /metrics answer
	log  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon runs argv (the binary first) with env added, and waits until
// /healthz answers on ops. pidOf finds the daemon's pid from the started
// process (nil: it is that process).
func startDaemon(t *testing.T, argv, env []string, ops string, pidOf func(*exec.Cmd) (int, error)) *daemon {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	d := &daemon{t: t, cmd: cmd, ops: ops, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", argv[0], err)
	}
	go func() { d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(d.kill)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + ops + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-d.done:
			t.Fatalf("sluice exited before answering /healthz on %s: %v\n%s", ops, d.err, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice not answering /healthz on %s after 20s:\n%s", ops, d.log.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	d.pid = cmd.Process.Pid
	if pidOf != nil {
		pid, err := pidOf(cmd)
		if err != nil {
			t.Fatal(err)
		}
		d.pid = pid
	}
	return d
}

func (d *daemon) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := syscall.Kill(d.pid, sig); err != nil {
		d.t.Fatalf("signal %v to %d: %v", sig, d.pid, err)
	}
}

// stop sends SIGTERM to the daemon and waits for the started process.
func (d *daemon) stop(timeout time.Duration) error {
	d.t.Helper()
	d.signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		d.kill()
		return fmt.Errorf("sluice did not exit within %v of SIGTERM", timeout)
	}
}

func (d *daemon) kill() {
	if !d.running() {
		return
	}
	if d.pid != 0 && d.pid != d.cmd.Process.Pid {
		_ = syscall.Kill(d.pid, syscall.SIGKILL)
	}
	_ = d.cmd.Process.Kill()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// putRecords sends records to stream with one PutRecordBatch and fails
// the test unless every one was stored.
func putRecords(t *testing.T, addr, stream string, records ...string) {
	t.Helper()
	type rec struct{ Data string }
	body := struct {
		DeliveryStreamName string
		Records            []rec
	}{DeliveryStreamName: stream}
	for _, r := range records {
		body.Records = append(body.Records, rec{base64.StdEncoding.EncodeToString([]byte(r))})
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PutRecordBatch: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var answer struct{ FailedPutCount int }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(out, &answer) != nil || answer.FailedPutCount != 0 {
		t.Fatalf("PutRecordBatch to %s: %d %s", stream, resp.StatusCode, out)
	}
}

// scrape returns /metrics.
func scrape(t *testing.T, ops string) string {
	t.Helper()
	resp, err := http.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// sampleNames returns the name of every sample in a text exposition
// (histograms as their _bucket, _sum and _count samples).
func sampleNames(exposition string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// sampleValue returns the value of the sample written exactly as series
// (name{labels} as the exposition prints it), and whether it is there.
func sampleValue(exposition, series string) (string, bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v, true
		}
	}
	return "", false
}

// setKeys returns the YAML document src with top-level keys set to the
// given scalar values (added when absent), comments kept.
func setKeys(t *testing.T, src []byte, kv map[string]string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for k, v := range kv {
		found := false
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == k {
				root.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Value: v}
				found = true
			}
		}
		if !found {
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
