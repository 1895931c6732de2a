package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/deploy/testpeers/pgproxy"
	"github.com/sluice-dev/sluice/destinations/internal/pgload"
	"github.com/sluice-dev/sluice/destinations/internal/secret"
	"github.com/sluice-dev/sluice/pipeline"
)

// proxied is an env whose destinations reach the server through a fault
// proxy.
func proxied(t *testing.T) (*env, *pgproxy.Proxy) {
	e := newEnv(t)
	p, err := pgproxy.Start("127.0.0.1:5432")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return e, p
}

func (e *env) proxiedOpts(p *pgproxy.Proxy, table string) Options {
	o := e.opts(table)
	o.DSN = secret.Secret(strings.Replace(e.dsn, "127.0.0.1:5432", p.Addr(), 1))
	o.RecordIDColumn = "record_id"
	o.CreateTable = true
	return o
}

// checkOnce fails unless table holds exactly the records of b, each once.
func (e *env) checkOnce(table string, b pipeline.Batch) {
	e.t.Helper()
	got := e.strings("SELECT record_id, count(*)::text FROM " + e.schema + "." + table + " GROUP BY record_id ORDER BY record_id")
	if len(got) != len(b.Records) {
		e.t.Fatalf("%d record IDs in the table, want %d: %q", len(got), len(b.Records), got)
	}
	for _, g := range got {
		if !strings.HasSuffix(g, "|1") {
			e.t.Errorf("record %s is not in the table exactly once", g)
		}
	}
}

// TestConnectionLostBeforeCommit: the connection breaks after the COPY,
// before COMMIT reaches the server: the transaction rolls back, the
// delivery fails retryably, and the retry loads every row once.
func TestConnectionLostBeforeCommit(t *testing.T) {
	e, p := proxied(t)
	d := e.dest(e.proxiedOpts(p, "events"), "s")
	b := batch("s", 0, `{"a":1}`, `{"a":2}`, `{"a":3}`)
	p.CutBeforeCommit(1)
	err := deliver(t, d, b)
	if !pipeline.IsRetryable(err) {
		t.Fatalf("Deliver = %v, want a retryable error", err)
	}
	if cut, _ := p.Commits(); cut != 1 {
		t.Fatalf("the proxy cut %d COMMITs, want 1: the fault did not happen", cut)
	}
	if n := e.count("events"); n != 0 {
		t.Fatalf("%d rows after a COMMIT that never reached the server", n)
	}
	if err := deliver(t, d, b); err != nil {
		t.Fatalf("retry: %v", err)
	}
	e.checkOnce("events", b)
	if n := e.metric(pgload.MetricLedgerSkips, nil); n != 0 {
		t.Errorf("ledger skips = %v, want 0 (nothing had committed)", n)
	}
}

// TestCommitAnswerLost: COMMIT reaches the server and commits, but its
// answer is lost: the delivery fails retryably, and the retry finds the
// batch in the ledger and loads nothing again.
func TestCommitAnswerLost(t *testing.T) {
	e, p := proxied(t)
	d := e.dest(e.proxiedOpts(p, "events"), "s")
	var recs []string
	for i := range 200 {
		recs = append(recs, fmt.Sprintf(`{"i":%d}`, i))
	}
	b := batch("s", 0, recs...)
	p.LoseCommitAnswer(1)
	err := deliver(t, d, b)
	if !pipeline.IsRetryable(err) {
		t.Fatalf("Deliver = %v, want a retryable error", err)
	}
	if _, lost := p.Commits(); lost != 1 {
		t.Fatalf("the proxy lost %d COMMIT answers, want 1: the fault did not happen", lost)
	}
	e.checkOnce("events", b) // committed, though the destination never heard it
	if err := deliver(t, d, b); err != nil {
		t.Fatalf("retry: %v", err)
	}
	e.checkOnce("events", b)
	if n := e.metric(pgload.MetricLedgerSkips, nil); n != 1 {
		t.Errorf("ledger skips = %v, want 1", n)
	}
}

// TestCommitFaultsWithBadRows: the ledger keeps the refused rows, so a
// retry after a lost COMMIT answer reports them again (and they reach the
// error output) instead of forgetting them.
func TestCommitFaultsWithBadRows(t *testing.T) {
	e, p := proxied(t)
	o := e.proxiedOpts(p, "events")
	o.Columns = []Column{{Name: "n", Type: "smallint"}}
	d := e.dest(o, "s")
	e.exec("CREATE TABLE " + e.schema + ".events (n smallint CHECK (n > 0), record_id text UNIQUE)")
	b := batch("s", 0, `{"n":1}`, `{"n":0}`, `{"n":2}`)
	p.LoseCommitAnswer(1)
	if err := deliver(t, d, b); !pipeline.IsRetryable(err) {
		t.Fatalf("Deliver = %v, want a retryable error", err)
	}
	err := deliver(t, d, b)
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Index != 1 || !strings.Contains(pe.Failed[0].Err.Error(), "23514") {
		t.Fatalf("retry = %v, want record 1 refused with SQLSTATE 23514", err)
	}
	if n := e.count("events"); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
}
