package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sluiceBin is the real binary, built once by TestMain for the end-to-end
// tests, which run it as a user would.
var sluiceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", sluiceBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	guests.Remove()
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// daemon is one running sluice process.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	log  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon runs `sluice run -c cfg --data-dir dataDir` and waits until
// /healthz answers on addr.
func startDaemon(t *testing.T, cfg, dataDir, addr string) *daemon {
	t.Helper()
	return startDaemonEnv(t, cfg, dataDir, addr, nil)
}

// startDaemonEnv is startDaemon with extra environment variables.
func startDaemonEnv(t *testing.T, cfg, dataDir, addr string, env []string) *daemon {
	t.Helper()
	return startDaemonBin(t, sluiceBin, cfg, dataDir, addr, env)
}

var (
	raceOnce sync.Once
	raceBin  string
	raceErr  error
)

// raceDaemonBin is the binary built with the race detector when the tests
// run with it (built once, for the tests of the daemon's most concurrent
// paths), else sluiceBin.
func raceDaemonBin(t *testing.T) string {
	t.Helper()
	if !raceBuild {
		return sluiceBin
	}
	raceOnce.Do(func() {
		raceBin = sluiceBin + "-race"
		out, err := exec.Command("go", "build", "-race", "-o", raceBin, ".").CombinedOutput()
		if err != nil {
			raceErr = fmt.Errorf("go build -race: %w\n%s", err, out)
		}
	})
	if raceErr != nil {
		t.Fatal(raceErr)
	}
	return raceBin
}

// startDaemonBin is startDaemonEnv running bin.
func startDaemonBin(t *testing.T, bin, cfg, dataDir, addr string, env []string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, "run", "-c", cfg, "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), env...)
	d := &daemon{t: t, cmd: cmd, addr: addr, log: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sluice: %v", err)
	}
	go func() { d.done <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-d.done:
			t.Fatalf("sluice exited before it was ready: %v\n%s", err, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			d.kill()
			t.Fatalf("sluice not ready on %s after 15s:\n%s", addr, d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { d.kill() })
	return d
}

func (d *daemon) kill() {
	if d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
		}
	}
}

// stop sends SIGTERM and returns the exit error.
func (d *daemon) stop(timeout time.Duration) error {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-d.done:
		return err
	case <-time.After(timeout):
		d.kill()
		return fmt.Errorf("sluice did not exit within %v after SIGTERM", timeout)
	}
}

// writeConfig writes a one-stream config delivering to a local directory.
func writeConfig(t *testing.T, dir, addr, stream string, sizeMiB, intervalS int, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`listen: %s
log:
  level: info
streams:
  %s:
    buffering:
      size: %d
      interval: %d
    destination:
      type: file
      path: out
      append_newline: true
%s`, addr, stream, sizeMiB, intervalS, extra)
	p := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// deliveredLines reads every complete object under root (skipping hidden
// temp files) and returns each line with the number of times it was seen.
func deliveredLines(t *testing.T, root string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 2<<20)
		for sc.Scan() {
			seen[sc.Text()]++
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatalf("reading delivered objects: %v", err)
	}
	return seen
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// putBatch sends one PutRecordBatch over raw HTTP and returns, per record,
// whether it got a RecordId.
func putBatch(ctx context.Context, c *http.Client, addr, stream string, recs [][]byte) ([]bool, error) {
	codes, err := putBatchCodes(ctx, c, addr, stream, recs)
	if err != nil {
		return nil, err
	}
	ok := make([]bool, len(codes))
	for i, code := range codes {
		ok[i] = code == ""
	}
	return ok, nil
}
