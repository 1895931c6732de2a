package pgproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// call sends method path to the control endpoint at base and decodes the
// status it answers (when 200); it returns the HTTP status code.
func call(t *testing.T, method, base, path string) (int, Status) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var st Status
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: Content-Type %q", method, path, ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode, st
}

func mustCall(t *testing.T, method, base, path string) Status {
	t.Helper()
	code, st := call(t, method, base, path)
	if code != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d", method, path, code)
	}
	return st
}

func TestControlHandler(t *testing.T) {
	t.Parallel()
	table := schema(t)
	p := startProxy(t)
	srv := httptest.NewServer(p.ControlHandler())
	t.Cleanup(srv.Close)
	base := srv.URL
	ctx := testCtx(t)

	if st := mustCall(t, "POST", base, "/cut-on-commit?n=2"); st.PendingCut != 2 {
		t.Fatalf("after /cut-on-commit?n=2: %+v", st)
	}
	if st := mustCall(t, "POST", base, "/cut-on-commit"); st.PendingCut != 3 {
		t.Fatalf("after /cut-on-commit: %+v", st)
	}
	if st := mustCall(t, "POST", base, "/reset"); st != (Status{}) {
		t.Fatalf("after /reset: %+v", st)
	}

	if st := mustCall(t, "POST", base, "/lose-commit-answer"); st.PendingLose != 1 {
		t.Fatalf("after /lose-commit-answer: %+v", st)
	}
	conn := connect(t, p.DSN(directDSN))
	if err := insertAndCommit(t, conn, table, 1, "lost"); err == nil {
		t.Fatal("commit answer was not lost")
	}
	if st := mustCall(t, "GET", base, "/status"); st.Lost != 1 || st.PendingLose != 0 || st.Cut != 0 {
		t.Fatalf("status after the lost answer: %+v", st)
	}
	mustCall(t, "POST", base, "/cut-on-commit")
	conn = connect(t, p.DSN(directDSN))
	if err := insertAndCommit(t, conn, table, 2, "cut"); err == nil {
		t.Fatal("commit was not cut")
	}
	if st := mustCall(t, "GET", base, "/status"); st.Cut != 1 || st.Lost != 1 {
		t.Fatalf("status after the cut: %+v", st)
	}
	wantNames(t, table, "lost")

	open := connect(t, p.DSN(directDSN))
	if st := mustCall(t, "POST", base, "/block"); !st.Blocked || st.Connections != 0 {
		t.Fatalf("after /block: %+v", st)
	}
	if err := open.Ping(ctx); err == nil {
		t.Fatal("connection survived /block")
	}
	if c, err := pgx.Connect(ctx, p.DSN(directDSN)); err == nil {
		c.Close(ctx)
		t.Fatal("connected during /block")
	}
	if st := mustCall(t, "POST", base, "/unblock"); st.Blocked {
		t.Fatalf("after /unblock: %+v", st)
	}
	if err := connect(t, p.DSN(directDSN)).Ping(ctx); err != nil {
		t.Fatalf("after /unblock: %v", err)
	}
	mustCall(t, "POST", base, "/block")
	if st := mustCall(t, "POST", base, "/reset"); st.Blocked || st.Cut != 0 || st.Lost != 0 {
		t.Fatalf("after /reset: %+v", st)
	}
	if err := connect(t, p.DSN(directDSN)).Ping(ctx); err != nil {
		t.Fatalf("after /reset: %v", err)
	}

	for _, bad := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/block", http.StatusMethodNotAllowed},
		{"POST", "/status", http.StatusMethodNotAllowed},
		{"POST", "/cut-on-commit?n=x", http.StatusBadRequest},
		{"POST", "/lose-commit-answer?n=0", http.StatusBadRequest},
		{"POST", "/nothing", http.StatusNotFound},
	} {
		if code, _ := call(t, bad.method, base, bad.path); code != bad.code {
			t.Errorf("%s %s: HTTP %d, want %d", bad.method, bad.path, code, bad.code)
		}
	}
}

// TestCommand builds and runs cmd/pgproxy as the shell scripts do and
// drives it through its control endpoint.
func TestCommand(t *testing.T) {
	t.Parallel()
	table := schema(t)
	bin := filepath.Join(t.TempDir(), "pgproxy")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/pgproxy").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-upstream", upstream, "-control", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads past "ready"; keep draining
			}
		}
		exited <- cmd.Wait()
	}()
	var listen, control string
	ctx := testCtx(t)
	for listen == "" {
		select {
		case line := <-lines:
			if !strings.Contains(line, "msg=ready") {
				continue
			}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "listen="); ok {
					listen = v
				}
				if v, ok := strings.CutPrefix(f, "control="); ok {
					control = v
				}
			}
		case <-ctx.Done():
			t.Fatal("pgproxy never logged ready")
		}
	}
	base := "http://" + control
	dsn := strings.Replace(directDSN, "127.0.0.1:5432", listen, 1)
	if st := mustCall(t, "POST", base, "/cut-on-commit"); st.PendingCut != 1 {
		t.Fatalf("status: %+v", st)
	}
	if err := insertAndCommit(t, connect(t, dsn), table, 1, "cut"); err == nil {
		t.Fatal("commit through the command was not cut")
	}
	if err := insertAndCommit(t, connect(t, dsn), table, 2, "kept"); err != nil {
		t.Fatalf("commit through the command: %v", err)
	}
	wantNames(t, table, "kept")
	if st := mustCall(t, "GET", base, "/status"); st.Cut != 1 {
		t.Fatalf("status: %+v", st)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("pgproxy after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pgproxy did not stop on SIGTERM")
	}
	if _, err := pgx.Connect(context.Background(), dsn); err == nil {
		t.Fatal("connected after the command stopped")
	}
}
