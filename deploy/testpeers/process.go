package testpeers

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// process is a test peer's server process: started (and started again,
// for outage tests) with the same command line, ready when probe
// succeeds, killed at Stop.
type process struct {
	name  string
	argv  []string
	probe func() error // nil once the server answers
	// ready, when set, is a line the process prints once it listens: a
	// probe answered without it came from another process that took the
	// port first (freeAddr's port is only free a moment ago).
	ready string
	t     testing.TB
	cmd   *exec.Cmd
	done  chan struct{}
	out   *syncBuffer
}

// freeAddr is a loopback address with a free port.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// splitPort splits a freeAddr into host and port.
func splitPort(addr string) (host, port string) {
	host, port, _ = net.SplitHostPort(addr)
	return host, port
}

// httpProbe succeeds when GET url answers with a status below 500 (or
// exactly 200 with ok200).
func httpProbe(url string, ok200 bool) func() error {
	return func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 || ok200 && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	}
}

// start runs the process and waits up to 15 s until probe succeeds; the
// test fails if it exits or does not answer.
func (p *process) start() {
	p.t.Helper()
	if p.out == nil {
		p.out = &syncBuffer{}
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := p.probe()
		if err == nil && p.ready != "" && !strings.Contains(p.out.String(), p.ready) {
			err = fmt.Errorf("answered, but %s has not printed %q", p.name, p.ready)
		}
		if err == nil {
			// A process that lost the port to another one exits at once.
			select {
			case <-done:
				p.t.Fatalf("%s exited at start-up (another process answers on its port):\n%s", p.name, p.out.String())
			case <-time.After(100 * time.Millisecond):
			}
			return
		}
		select {
		case <-done:
			p.t.Fatalf("%s exited at start-up:\n%s", p.name, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not answering after 15s (%v):\n%s", p.name, err, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// report logs, when the test failed, whether the process was still
// running and what it printed (a peer that died mid-test says why).
func (p *process) report() {
	if !p.t.Failed() || p.cmd == nil {
		return
	}
	state := "still running"
	select {
	case <-p.done:
		state = "exited: " + p.cmd.ProcessState.String()
	default:
	}
	p.t.Logf("%s (%s) printed:\n%s", p.name, state, p.out.String())
}

// stop kills the process and waits for it to exit. It is idempotent.
func (p *process) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// restartable gives a peer Start (again: the same port and command line)
// and Stop (kill, idempotent).
type restartable struct{ p process }

// Start starts the server (again) and waits until it answers.
func (r *restartable) Start() {
	r.p.t.Helper()
	r.p.start()
}

// Stop kills the server and waits for it to exit. It is idempotent.
func (r *restartable) Stop() { r.p.stop() }
