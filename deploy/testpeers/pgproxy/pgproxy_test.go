package pgproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The shared PostgreSQL server of the test machines.
const (
	upstream  = "127.0.0.1:5432"
	directDSN = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect opens a connection closed at the end of the test.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testCtx(t), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// schema creates the test's own schema with a table t(id, name) in it
// and returns the table's qualified name; both are dropped at the end.
func schema(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s := "sluice_pgproxy_" + hex.EncodeToString(b)
	conn := connect(t, directDSN)
	if _, err := conn.Exec(testCtx(t), "CREATE SCHEMA "+s+"; CREATE TABLE "+s+".t (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatalf("create schema (is PostgreSQL running at %s?): %v", upstream, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, directDSN)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+s+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return s + ".t"
}

// startProxy starts a proxy to the shared server, closed at the end of
// the test, when none of its goroutines may be left.
func startProxy(t testing.TB) *Proxy {
	t.Helper()
	p, err := Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if n := p.running.Load(); n != 0 {
			t.Errorf("%d goroutines still running after Close", n)
		}
	})
	return p
}

// names lists the names in table, in id order, read directly.
func names(t *testing.T, table string) []string {
	t.Helper()
	conn := connect(t, directDSN)
	rows, err := conn.Query(testCtx(t), "SELECT name FROM "+table+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantNames(t *testing.T, table string, want ...string) {
	t.Helper()
	got := names(t, table)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("rows in %s: %q, want %q", table, got, want)
	}
}

func wantCommits(t *testing.T, p *Proxy, cut, lost int) {
	t.Helper()
	if c, l := p.Commits(); c != cut || l != lost {
		t.Fatalf("Commits() = %d, %d; want %d, %d", c, l, cut, lost)
	}
}

// insertAndCommit inserts (id, name) in a transaction through conn and
// returns Commit's error.
func insertAndCommit(t *testing.T, conn *pgx.Conn, table string, id int, name string) error {
	t.Helper()
	ctx := testCtx(t)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, $2)", id, name); err != nil {
		t.Fatalf("insert: %v", err)
	}
	return tx.Commit(ctx)
}

// wantConnError checks that a COMMIT failed because its connection was
// closed: not with a server error, and not by running into the test's
// deadline (the proxy waiting for an answer that never comes).
func wantConnError(t *testing.T, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		t.Fatal("COMMIT succeeded through the fault")
	case errors.As(err, &pgErr):
		t.Fatalf("COMMIT failed with a server error, want a connection error: %v", err)
	case errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("COMMIT ran into the test's deadline, want a connection error: %v", err)
	}
}

func TestQueriesAndCopy(t *testing.T) {
	t.Parallel()
	table := schema(t)
	p := startProxy(t)
	conn := connect(t, p.DSN(directDSN))
	ctx := testCtx(t)
	var one int
	var greeting string
	if err := conn.QueryRow(ctx, "SELECT $1::int, $2::text", 1, "hello").Scan(&one, &greeting); err != nil || one != 1 || greeting != "hello" {
		t.Fatalf("query through the proxy: %d %q %v", one, greeting, err)
	}
	if _, err := conn.Exec(ctx, "ALTER TABLE "+table+" ADD COLUMN payload bytea"); err != nil {
		t.Fatal(err)
	}
	// Rows of every size, some larger than the proxy's buffer.
	const n = 3000
	rows := make([][]any, n)
	for i := range rows {
		size := i % 97
		if i%500 == 3 {
			size = 3*bufSize + i
		}
		payload := make([]byte, size)
		_, _ = rand.Read(payload)
		rows[i] = []any{i, fmt.Sprintf("row %d", i), payload}
	}
	copied, err := conn.CopyFrom(ctx, pgx.Identifier(strings.Split(table, ".")), []string{"id", "name", "payload"}, pgx.CopyFromRows(rows))
	if err != nil || copied != n {
		t.Fatalf("CopyFrom through the proxy: %d rows, %v", copied, err)
	}
	check := func(via string, c *pgx.Conn) {
		res, err := c.Query(ctx, "SELECT id, name, payload FROM "+table+" ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for res.Next() {
			var id int
			var name string
			var payload []byte
			if err := res.Scan(&id, &name, &payload); err != nil {
				t.Fatal(err)
			}
			if i >= n || id != rows[i][0] || name != rows[i][1] || !bytes.Equal(payload, rows[i][2].([]byte)) {
				t.Fatalf("%s: row %d is (%d, %q, %d bytes), want row %v", via, i, id, name, len(payload), rows[min(i, n-1)][:2])
			}
			i++
		}
		if err := res.Err(); err != nil || i != n {
			t.Fatalf("%s: %d rows, %v; want %d", via, i, err, n)
		}
	}
	check("direct", connect(t, directDSN))
	check("through the proxy", conn)
	wantCommits(t, p, 0, 0)
}

func TestCutBeforeCommit(t *testing.T) {
	t.Parallel()
	table := schema(t)
	p := startProxy(t)
	conn := connect(t, p.DSN(directDSN))
	if err := insertAndCommit(t, conn, table, 1, "kept"); err != nil {
		t.Fatalf("commit before arming: %v", err)
	}
	p.CutBeforeCommit(1)
	wantConnError(t, insertAndCommit(t, conn, table, 2, "cut"))
	wantCommits(t, p, 1, 0)
	wantNames(t, table, "kept")
	if !conn.IsClosed() {
		t.Error("the client connection is still open after the cut")
	}
	// The fault was used up: the next COMMIT goes through.
	again := connect(t, p.DSN(directDSN))
	if err := insertAndCommit(t, again, table, 2, "after"); err != nil {
		t.Fatalf("commit after the cut: %v", err)
	}
	wantNames(t, table, "kept", "after")
	wantCommits(t, p, 1, 0)
}

func TestLoseCommitAnswer(t *testing.T) {
	t.Parallel()
	table := schema(t)
	p := startProxy(t)
	conn := connect(t, p.DSN(directDSN))
	p.LoseCommitAnswer(1)
	wantConnError(t, insertAndCommit(t, conn, table, 1, "committed"))
	wantCommits(t, p, 0, 1)
	wantNames(t, table, "committed")
	again := connect(t, p.DSN(directDSN))
	if err := insertAndCommit(t, again, table, 2, "after"); err != nil {
		t.Fatalf("commit after the lost answer: %v", err)
	}
	wantNames(t, table, "committed", "after")
	wantCommits(t, p, 0, 1)
}

// TestCommitSpellings checks the simple-protocol spellings of COMMIT and
// that other statements are not taken for one.
func TestCommitSpellings(t *testing.T) {
	t.Parallel()
	table := schema(t)
	p := startProxy(t)
	ctx := testCtx(t)
	conn := connect(t, p.DSN(directDSN))
	p.CutBeforeCommit(1)
	if _, err := conn.Exec(ctx, "SELECT 'commit'; SELECT 1"); err != nil {
		t.Fatalf("a query mentioning commit: %v", err)
	}
	wantCommits(t, p, 0, 0)
	p.Reset()
	for i, text := range []string{"COMMIT;", "end", "commit work", " Commit Transaction ;"} {
		conn := connect(t, p.DSN(directDSN))
		p.CutBeforeCommit(1)
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, 'x')", i); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, text); err == nil {
			t.Fatalf("%q was not cut", text)
		}
		wantCommits(t, p, i+1, 0)
	}
	wantNames(t, table)
}

// TestExtendedProtocolCommit commits with Parse/Bind/Execute: unnamed
// (pgconn ExecParams), named (Prepare) and in a pgx batch (cached
// statements).
func TestExtendedProtocolCommit(t *testing.T) {
	t.Parallel()
	table := schema(t)
	p := startProxy(t)
	ctx := testCtx(t)
	begin := func(id int, name string) *pgx.Conn {
		conn := connect(t, p.DSN(directDSN))
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, $2)", id, name); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	unnamed := func(conn *pgx.Conn) error {
		_, err := conn.PgConn().ExecParams(ctx, "commit", nil, nil, nil, nil).Close()
		return err
	}
	named := func(conn *pgx.Conn) error {
		if _, err := conn.PgConn().Prepare(ctx, "finish", "COMMIT", nil); err != nil {
			t.Fatalf("prepare: %v", err)
		}
		_, err := conn.PgConn().ExecPrepared(ctx, "finish", nil, nil, nil).Close()
		return err
	}
	batch := func(conn *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue("SELECT count(*) FROM " + table)
		b.Queue("COMMIT")
		return conn.SendBatch(ctx, b).Close()
	}
	cases := []struct {
		name   string
		commit func(*pgx.Conn) error
	}{{"unnamed", unnamed}, {"named", named}, {"batch", batch}}
	var want []string
	cut, lost := 0, 0
	for i, c := range cases {
		// Not armed: it commits.
		if err := c.commit(begin(10*i, c.name+" plain")); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want = append(want, c.name+" plain")
		// Cut: rolled back.
		p.CutBeforeCommit(1)
		wantConnError(t, c.commit(begin(10*i+1, c.name+" cut")))
		cut++
		wantCommits(t, p, cut, lost)
		// Answer lost: committed.
		p.LoseCommitAnswer(1)
		wantConnError(t, c.commit(begin(10*i+2, c.name+" lost")))
		lost++
		wantCommits(t, p, cut, lost)
		want = append(want, c.name+" lost")
	}
	wantNames(t, table, want...)
}

func TestBlock(t *testing.T) {
	t.Parallel()
	table := schema(t)
	p := startProxy(t)
	ctx := testCtx(t)
	conn := connect(t, p.DSN(directDSN))
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// A query in flight when the block starts fails (rather than running
	// into its own deadline).
	sleeper := connect(t, p.DSN(directDSN))
	pid := sleeper.PgConn().PID()
	done := make(chan error, 1)
	go func() {
		qctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := sleeper.Exec(qctx, "SELECT pg_sleep(30)")
		done <- err
	}()
	waitActive(t, pid)

	p.Block()
	if st := p.Status(); !st.Blocked || st.Connections != 0 {
		t.Fatalf("status after Block: %+v", st)
	}
	if err := <-done; err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("query in flight during the block: %v, want a connection error", err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("query on a connection opened before the block succeeded")
	}
	if c, err := pgx.Connect(ctx, p.DSN(directDSN)); err == nil {
		c.Close(ctx)
		t.Fatal("new connection during the block succeeded")
	}
	p.Unblock()
	after := connect(t, p.DSN(directDSN))
	if err := insertAndCommit(t, after, table, 1, "after"); err != nil {
		t.Fatalf("after Unblock: %v", err)
	}
	wantNames(t, table, "after")
}

// waitActive waits until the server backend pid runs a query.
func waitActive(t *testing.T, pid uint32) {
	t.Helper()
	direct := connect(t, directDSN)
	ctx := testCtx(t)
	for {
		var state string
		err := direct.QueryRow(ctx, "SELECT coalesce(state, '') FROM pg_stat_activity WHERE pid = $1", int32(pid)).Scan(&state)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if state == "active" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("backend %d never became active: %v", pid, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestCancelRequest cancels a query through the proxy (the CancelRequest
// packet goes on a connection of its own).
func TestCancelRequest(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := connect(t, p.DSN(directDSN))
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), "SELECT pg_sleep(30)")
		done <- err
	}()
	waitActive(t, conn.PgConn().PID())
	if err := conn.PgConn().CancelRequest(testCtx(t)); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
	var pgErr *pgconn.PgError
	if err := <-done; !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("cancelled query: %v, want SQLSTATE 57014", err)
	}
}

// TestTLSIsRelayedBlindly: with sslmode=require the session is encrypted
// end to end and relayed blindly, so COMMIT faults do not apply to it.
func TestTLSIsRelayedBlindly(t *testing.T) {
	t.Parallel()
	table := schema(t)
	p := startProxy(t)
	conn := connect(t, strings.Replace(p.DSN(directDSN), "sslmode=disable", "sslmode=require", 1))
	var ssl bool
	if err := conn.QueryRow(testCtx(t), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("server side of the session: ssl=%v err=%v", ssl, err)
	}
	p.CutBeforeCommit(1)
	if err := insertAndCommit(t, conn, table, 1, "tls"); err != nil {
		t.Fatalf("commit over TLS: %v", err)
	}
	wantNames(t, table, "tls")
	wantCommits(t, p, 0, 0)
	if st := p.Status(); st.PendingCut != 1 {
		t.Fatalf("status: %+v, want the cut still pending", st)
	}
}

// TestEncryptionRequests sends GSSENCRequest and SSLRequest by hand, each
// on a connection of its own: the proxy relays the server's one-byte
// answers (the same as the server's own), and a TLS handshake after 'S'.
func TestEncryptionRequests(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	answer := func(addr string, code uint32) byte {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write(request(code)); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(conn, b); err != nil {
			t.Fatalf("answer to %d via %s: %v", code, addr, err)
		}
		if code == codeSSL && b[0] == 'S' {
			tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) // the test server's self-signed certificate
			if err := tc.Handshake(); err != nil {
				t.Fatalf("TLS handshake via %s: %v", addr, err)
			}
		}
		return b[0]
	}
	for _, code := range []uint32{codeGSSENC, codeSSL} {
		direct, proxied := answer(upstream, code), answer(p.Addr(), code)
		if direct != proxied {
			t.Errorf("answer to %d through the proxy %q, the server's own %q", code, proxied, direct)
		}
	}
	if got := answer(p.Addr(), codeSSL); got != 'S' {
		t.Fatalf("SSLRequest answered %q; the test server has ssl=on", got)
	}
}

func request(code uint32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, 8)
	binary.BigEndian.PutUint32(b[4:], code)
	return b
}

// TestCloseWaits closes a proxy with connections in several states:
// Close returns once every goroutine has ended, and the clients see
// their connections gone.
func TestCloseWaits(t *testing.T) {
	t.Parallel()
	table := schema(t)
	p, err := Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	idle := connect(t, p.DSN(directDSN))
	inTx := connect(t, p.DSN(directDSN))
	if _, err := inTx.Exec(ctx, "BEGIN; INSERT INTO "+table+" VALUES (1, 'open')"); err != nil {
		t.Fatal(err)
	}
	tlsConn := connect(t, strings.Replace(p.DSN(directDSN), "sslmode=disable", "sslmode=require", 1))
	raw, err := net.Dial("tcp", p.Addr()) // a client that never sends its startup packet
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := p.running.Load(); n != 0 {
		t.Fatalf("%d goroutines running after Close", n)
	}
	for name, c := range map[string]*pgx.Conn{"idle": idle, "in transaction": inTx, "tls": tlsConn} {
		if _, err := c.Exec(ctx, "SELECT 1"); err == nil {
			t.Errorf("%s connection still works after Close", name)
		}
	}
	if _, err := pgx.Connect(ctx, p.DSN(directDSN)); err == nil {
		t.Error("connect after Close succeeded")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	wantNames(t, table)
}

func TestDSN(t *testing.T) {
	p := startProxy(t)
	host, port, _ := net.SplitHostPort(p.Addr())
	for base, want := range map[string]string{
		"postgres://u:pw@db.example:5432/test?sslmode=disable": "postgres://u:pw@" + p.Addr() + "/test?sslmode=disable",
		"postgresql://u@h/test":                                "postgresql://u@" + p.Addr() + "/test",
		"host=db port=5432 dbname=test":                        "host=db port=5432 dbname=test host=" + host + " port=" + port,
	} {
		if got := p.DSN(base); got != want {
			t.Errorf("DSN(%q) = %q, want %q", base, got, want)
		}
	}
	for _, base := range []string{directDSN, "host=127.0.0.1 port=5432 user=root dbname=test sslmode=disable"} {
		cfg, err := pgconn.ParseConfig(p.DSN(base))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Host != host || fmt.Sprint(cfg.Port) != port {
			t.Errorf("DSN(%q) connects to %s:%d, want %s", base, cfg.Host, cfg.Port, p.Addr())
		}
	}
}

// BenchmarkCopy loads rows with COPY directly and through the proxy.
func BenchmarkCopy(b *testing.B) {
	table := schema(b)
	p := startProxy(b)
	rows := make([][]any, 10000)
	for i := range rows {
		rows[i] = []any{i, strings.Repeat("x", 100)}
	}
	for _, via := range []struct{ name, dsn string }{{"direct", directDSN}, {"proxy", p.DSN(directDSN)}} {
		b.Run(via.name, func(b *testing.B) {
			conn := connect(b, via.dsn)
			ctx := testCtx(b)
			b.SetBytes(int64(len(rows) * 108))
			for b.Loop() {
				tx, err := conn.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier(strings.Split(table, ".")), []string{"id", "name"}, pgx.CopyFromRows(rows)); err != nil {
					b.Fatal(err)
				}
				if err := tx.Rollback(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
