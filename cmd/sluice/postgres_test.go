package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/deploy/testpeers/pgproxy"
)

// pgLines returns each value of column col of table and how many rows
// hold it, and fails on a record ID held by two rows.
func pgLines(t *testing.T, conn *pgx.Conn, table pgx.Identifier, col string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var dupIDs int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM (SELECT record_id FROM "+table.Sanitize()+
		" GROUP BY record_id HAVING count(*) > 1) d").Scan(&dupIDs); err != nil {
		t.Logf("reading %s: %v", table.Sanitize(), err)
		return nil
	}
	if dupIDs > 0 {
		t.Errorf("%d record IDs appear in more than one row of %s", dupIDs, table.Sanitize())
	}
	rows, err := conn.Query(ctx, "SELECT "+pgx.Identifier{col}.Sanitize()+" FROM "+table.Sanitize())
	if err != nil {
		t.Logf("reading %s: %v", table.Sanitize(), err)
		return nil
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got[v]++
	}
	return got
}

// TestPostgresExample runs examples/postgres.yaml against the PostgreSQL
// server: every line of the clickstream lands once, whole, in the jsonb
// column of a table the daemon creates, with its record ID.
func TestPostgresExample(t *testing.T) {
	const password = "not-a-real-password-123" // trust auth ignores it; it must not be logged
	dsn, schema := testpeers.PostgresSchema(t, "sluice_ex")
	conn := testpeers.PostgresConn(t, dsn)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := exampleConfig(t, "postgres.yaml", dir, addr)
	pwDSN := strings.Replace(dsn, "root@", "root:"+password+"@", 1)
	d := startDaemonEnv(t, cfg, dir, addr, []string{"PG_DSN=" + pwDSN, "PG_TABLE=" + schema + ".events"})
	src := "../../examples/data/clickstream.ndjson"
	out, err := exec.Command(sluiceBin, "put", "--endpoint", "http://"+addr, "--stream", "postgres", "--file", src).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice put: %v\n%s", err, out)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	want := splitLines(data)
	table := pgx.Identifier{schema, "events"}
	var got map[string]int
	if !waitFor(30*time.Second, func() bool { got = pgLines(t, conn, table, "record_id"); return len(got) >= len(want) }) {
		t.Fatalf("%d of %d rows loaded\n%s", len(got), len(want), d.log.String())
	}
	for _, l := range want {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table.Sanitize()+" WHERE data = $1::jsonb", l).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("record %.60q… loaded %d times", l, n)
		}
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.log.String(), password) {
		t.Fatal("the DSN's password appears in the daemon's log")
	}
	if errs := deliveredLines(t, filepath.Join(dir, "postgres-errors")); len(errs) != 0 {
		t.Fatalf("%d lines in the error output", len(errs))
	}
}

// pgCrashTable creates the crash tests' table without any constraint, so
// that a duplicate made by the daemon shows as two rows (a UNIQUE record
// ID would turn it into a refused row instead).
func pgCrashTable(t *testing.T, dsn, schema string) (*pgx.Conn, pgx.Identifier) {
	conn := testpeers.PostgresConn(t, dsn)
	table := pgx.Identifier{schema, "crash"}
	if _, err := conn.Exec(context.Background(), "CREATE TABLE "+table.Sanitize()+" (line text, record_id text, arrived timestamptz)"); err != nil {
		t.Fatal(err)
	}
	return conn, table
}

// TestCrashKill9Postgres: SIGKILL the daemon at random moments while it
// loads Postgres, ten times: every acknowledged record is in the table
// exactly once (by content and by record ID), and the error output is
// empty (no row was refused as a duplicate).
func TestCrashKill9Postgres(t *testing.T) {
	dsn, schema := testpeers.PostgresSchema(t, "sluice_crash")
	conn, table := pgCrashTable(t, dsn, schema)
	cfg := fmt.Sprintf(`streams:
  crash:
    buffering: {size: 1, interval: 1}
    destination:
      type: postgres
      dsn: %q
      table: %s.crash
      columns: [{name: line, path: ".", type: text, format: raw}]
      record_id_column: record_id
      arrival_time_column: arrived
    error_output: {type: file, path: errors}
`, dsn, schema)
	var dir string
	crashUnderLoadKills(t, cfg, nil, 300, 10, nil, func(d string) map[string]int {
		dir = d
		return pgLines(t, conn, table, "line")
	})
	if errs := deliveredLines(t, filepath.Join(dir, "errors")); len(errs) != 0 {
		t.Fatalf("%d records in the error output", len(errs))
	}
}

// TestPostgresOutage: the database is unreachable for 30 s in the middle
// of a load (its port blocked by a proxy that drops every connection):
// /readyz answers 503 during the outage, nothing acknowledged is lost,
// nothing is loaded twice, and the backlog drains after.
func TestPostgresOutage(t *testing.T) {
	dsn, schema := testpeers.PostgresSchema(t, "sluice_out")
	conn, table := pgCrashTable(t, dsn, schema)
	proxy, err := pgproxy.Start("127.0.0.1:5432")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	proxied := strings.Replace(dsn, "127.0.0.1:5432", proxy.Addr(), 1)
	d, dir := startWith(t, fmt.Sprintf(`streams:
  outage:
    buffering: {size: 1, interval: 1}
    destination:
      type: postgres
      dsn: %q
      table: %s.crash
      columns: [{name: line, path: ".", type: text, format: raw}]
      record_id_column: record_id
      connect_timeout: 2s
    error_output: {type: file, path: errors}
`, proxied, schema))
	readyz := func() int {
		resp, err := http.Get("http://" + d.addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var (
		mu    sync.Mutex
		acked []string
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 5 * time.Second}
		for call := 0; ctx.Err() == nil; call++ {
			recs := make([][]byte, 50)
			for i := range recs {
				recs[i] = fmt.Appendf(nil, "outage-c%d-r%d", call, i)
			}
			ok, err := putBatch(ctx, c, d.addr, "outage", recs)
			if err == nil {
				mu.Lock()
				for i, o := range ok {
					if o {
						acked = append(acked, string(recs[i]))
					}
				}
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second)
	proxy.Block()
	blocked := time.Now()
	saw503 := waitFor(20*time.Second, func() bool { return readyz() == http.StatusServiceUnavailable })
	for time.Since(blocked) < 30*time.Second {
		time.Sleep(500 * time.Millisecond)
	}
	proxy.Unblock()
	time.Sleep(3 * time.Second)
	cancel()
	wg.Wait()
	if !saw503 {
		t.Errorf("/readyz never answered 503 while the database was unreachable\n%s", d.log.String())
	}
	mu.Lock()
	want := acked
	mu.Unlock()
	if len(want) < 1000 {
		t.Fatalf("only %d records acknowledged", len(want))
	}
	var got map[string]int
	if !waitFor(120*time.Second, func() bool {
		got = pgLines(t, conn, table, "line")
		for _, r := range want {
			if got[r] == 0 {
				return false
			}
		}
		return true
	}) {
		missing := 0
		for _, r := range want {
			if got[r] == 0 {
				missing++
			}
		}
		t.Fatalf("%d of %d acknowledged records not loaded 120 s after the outage\n%s", missing, len(want), d.log.String())
	}
	for r, n := range got {
		if n > 1 {
			t.Errorf("record %q loaded %d times", r, n)
		}
	}
	if !waitFor(20*time.Second, func() bool { return readyz() == http.StatusOK }) {
		t.Errorf("/readyz still not 200 after the outage")
	}
	if errs := deliveredLines(t, filepath.Join(dir, "errors")); len(errs) != 0 {
		t.Fatalf("%d records in the error output", len(errs))
	}
	t.Logf("%d records acknowledged and loaded once across a 30 s outage", len(want))
}

// TestPostgresBadRows: a batch of 1,000 records of which 3 cannot load (a
// CHECK violation, a value too long for its column, a NUL escape in
// jsonb) through the daemon: 997 rows, 3 dead letters under
// postgres-failed with the SQLSTATE and the server's message, and the
// metrics say the same.
func TestPostgresBadRows(t *testing.T) {
	dsn, schema := testpeers.PostgresSchema(t, "sluice_bad")
	conn := testpeers.PostgresConn(t, dsn)
	table := pgx.Identifier{schema, "orders"}
	if _, err := conn.Exec(context.Background(), "CREATE TABLE "+table.Sanitize()+
		" (id bigint, code varchar(8), qty integer CHECK (qty >= 0), doc jsonb, record_id text UNIQUE)"); err != nil {
		t.Fatal(err)
	}
	d, dir := startWith(t, fmt.Sprintf(`streams:
  orders:
    buffering: {size: 5, interval: 2}
    destination:
      type: postgres
      dsn: %q
      table: %s.orders
      columns: [{name: id, type: bigint}, {name: code, type: text}, {name: qty, type: integer}, {name: doc, type: jsonb}]
      record_id_column: record_id
    error_output: {type: file, path: errors}
`, dsn, schema))
	bad := map[int]string{100: "23514", 500: "22001", 900: "22P05"}
	recs := make([][]byte, 1000)
	for i := range recs {
		switch bad[i] {
		case "23514":
			recs[i] = fmt.Appendf(nil, `{"id":%d,"code":"ok","qty":-1,"doc":{}}`, i)
		case "22001":
			recs[i] = fmt.Appendf(nil, `{"id":%d,"code":"far-too-long","qty":1,"doc":{}}`, i)
		case "22P05":
			recs[i] = fmt.Appendf(nil, `{"id":%d,"code":"ok","qty":1,"doc":{"x":"\u0000"}}`, i)
		default:
			recs[i] = fmt.Appendf(nil, `{"id":%d,"code":"c","qty":%d,"doc":{"i":%d}}`, i, i, i)
		}
	}
	for start := 0; start < len(recs); start += 500 { // PutRecordBatch takes 500 at most
		if ok, err := putBatch(context.Background(), http.DefaultClient, d.addr, "orders", recs[start:start+500]); err != nil || !allTrue(ok) {
			t.Fatalf("put: %v", err)
		}
	}
	var dls []map[string]any
	if !waitFor(30*time.Second, func() bool {
		dls = deadLetters(t, filepath.Join(dir, "errors"), "postgres-failed")
		return len(dls) == len(bad)
	}) {
		t.Fatalf("%d dead letters, want %d\n%s", len(dls), len(bad), d.log.String())
	}
	for _, dl := range dls {
		raw, _ := base64.StdEncoding.DecodeString(dl["rawData"].(string))
		var rec struct{ ID int }
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("dead letter rawData %q: %v", raw, err)
		}
		msg, _ := dl["errorMessage"].(string)
		if state := bad[rec.ID]; state == "" || !strings.Contains(msg, "SQLSTATE "+state) || dl["errorCode"] != "Postgres.DataLoadFailed" {
			t.Errorf("dead letter for record %d: %v %q, want Postgres.DataLoadFailed with SQLSTATE %s", rec.ID, dl["errorCode"], msg, state)
		}
	}
	var rows, distinct int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT id) FROM "+table.Sanitize()).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != 997 || distinct != 997 {
		t.Fatalf("%d rows (%d distinct ids), want 997", rows, distinct)
	}
	for series, want := range map[string]float64{
		`sluice_delivery_records_total{destination="postgres",stream="orders"}`:                            997,
		`sluice_dead_letter_records_total{code="Postgres.DataLoadFailed",stream="orders"}`:                 3,
		`sluice_warehouse_rejected_rows_total{destination="postgres",sqlstate_class="22",stream="orders"}`: 2,
		`sluice_warehouse_rejected_rows_total{destination="postgres",sqlstate_class="23",stream="orders"}`: 1,
		`sluice_warehouse_ledger_skipped_batches_total{destination="postgres",stream="orders"}`:            0,
	} {
		if got, ok := metricValue(t, d.addr, series); !ok || got != want {
			t.Errorf("%s = %v (found %v), want %v", series, got, ok, want)
		}
	}
}
