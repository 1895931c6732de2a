package pgload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/pipeline"
)

func TestClassify(t *testing.T) {
	for code, want := range map[string]Class{
		"08006": Transient, "08P01": Transient, "40001": Transient, "40P01": Transient, "53100": Transient,
		"57P01": Transient, "57P03": Transient, "55P03": Transient, "57014": Transient,
		"22P02": Rows, "22001": Rows, "22P05": Rows, "23505": Rows, "23514": Rows, "54000": Rows,
		"42P01": Table, "42703": Table, "42501": Table, "28P01": Table, "3D000": Table, "XX000": Table, "0A000": Table,
	} {
		if got := ClassOf(code); got != want {
			t.Errorf("ClassOf(%s) = %v, want %v", code, got, want)
		}
	}
	if c, pe := Classify(fmt.Errorf("wrapped: %w", errors.New("connection refused"))); c != Transient || pe != nil {
		t.Errorf("a connection error: %v %v", c, pe)
	}
	for code, want := range map[string]string{
		"42P01": "X.TableNotFound", "42703": "X.ColumnMismatch", "28P01": "X.AuthenticationFailed",
		"22P02": "X.DataLoadFailed", "08006": "X.ConnectionFailed", "42601": "X.IncorrectCopyOptions", "0A000": "X.DeliveryFailed",
	} {
		if got := Code("X", fmt.Errorf("w: %w", &pgconn.PgError{Code: code})); got != want {
			t.Errorf("Code(%s) = %s, want %s", code, got, want)
		}
	}
}

func TestCompileConn(t *testing.T) {
	_, err := CompileConn(ConnOptions{DSN: "postgres://u:secret-pw@h:notaport/db", TLS: TLSOptions{Mode: "sometimes", CertFile: "c"}, MaxConnections: -1})
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var oe *pipeline.OptionError
		if errors.As(e, &oe) {
			keys = append(keys, oe.Key)
		}
	}
	if got := strings.Join(keys, ","); got != "dsn,tls.mode,tls.cert_file,max_connections" {
		t.Errorf("error keys %s (%v)", got, err)
	}
	if strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("the password shows in %v", err)
	}
	c, err := CompileConn(ConnOptions{DSN: "postgres://loader:pw@db.example:6543/shop"})
	if err != nil {
		t.Fatal(err)
	}
	if ep, user := c.Endpoint(); ep != "db.example:6543/shop" || user != "loader" {
		t.Errorf("Endpoint = %s, %s", ep, user)
	}
	if s := fmt.Sprint(c); strings.Contains(s, "pw@") || strings.Contains(s, ":pw") {
		t.Errorf("printed %s", s)
	}
	for dsn, want := range map[string]string{
		"postgres://h/db?sslmode=disable": "postgres://h/db?sslmode=verify-full&sslrootcert=%2Fca.pem",
		"host=h dbname=db":                "host=h dbname=db sslmode='verify-full' sslrootcert='/ca.pem'",
	} {
		if got := withTLS(dsn, TLSOptions{Mode: TLSVerifyFull, CAFile: "/ca.pem"}); got != want {
			t.Errorf("withTLS(%s) = %s, want %s", dsn, got, want)
		}
	}
}

func TestParseTable(t *testing.T) {
	if id, err := ParseTable("events", "public", MaxPostgresName); err != nil || id.Sanitize() != `"public"."events"` {
		t.Errorf("ParseTable(events) = %v, %v", id, err)
	}
	if id, err := ParseTable("Sales.Orders", "public", MaxPostgresName); err != nil || id.Sanitize() != `"Sales"."Orders"` {
		t.Errorf("names are exact: %v, %v", id, err)
	}
	for _, bad := range []string{"a.b.c", ".t", "s.", strings.Repeat("x", 64)} {
		if _, err := ParseTable(bad, "public", MaxPostgresName); err == nil {
			t.Errorf("ParseTable(%q) passed", bad)
		}
	}
	if _, err := ParseTable(strings.Repeat("x", 100), "public", MaxRedshiftName); err != nil {
		t.Errorf("a 100-byte Redshift name: %v", err)
	}
}

// TestLedger claims, finishes and finds batches in both dialects against
// the PostgreSQL server (Redshift's LOCK-based claim is valid there too),
// including two concurrent claims of one batch: exactly one loads.
func TestLedger(t *testing.T) {
	for _, d := range []Dialect{Postgres, Redshift} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			dsn, schema := testpeers.PostgresSchema(t, "sluice_ledger")
			conn := testpeers.PostgresConn(t, dsn)
			ctx := context.Background()
			l := NewLedger(pgx.Identifier{schema, DefaultLedgerTable}, d)
			if err := l.Ensure(ctx, conn); err != nil {
				t.Fatal(err)
			}
			if err := l.Ensure(ctx, conn); err != nil {
				t.Fatalf("Ensure again: %v", err)
			}
			claim := func(c *pgx.Conn, batch string, commit bool) (*Entry, error) {
				tx, err := c.Begin(ctx)
				if err != nil {
					return nil, err
				}
				defer tx.Rollback(ctx)
				prev, err := l.Claim(ctx, tx, "s", "t", batch)
				if err != nil || prev != nil {
					return prev, err
				}
				if err := l.Finish(ctx, tx, "s", "t", batch, Entry{Rows: 2, Rejected: []Rejection{{Index: 1, Code: "C", SQLState: "22P02", Message: "bad"}}}); err != nil {
					return nil, err
				}
				if commit {
					return nil, tx.Commit(ctx)
				}
				return nil, nil
			}
			if prev, err := claim(conn, "b1", false); err != nil || prev != nil {
				t.Fatalf("first claim (rolled back): %v %v", prev, err)
			}
			if prev, err := claim(conn, "b1", true); err != nil || prev != nil {
				t.Fatalf("claim after a rollback: %v %v", prev, err)
			}
			if e, err := l.Loaded(ctx, conn, "s", "t", "b1"); err != nil || e == nil || e.Rows != 2 {
				t.Fatalf("Loaded(b1) = %+v, %v; want the load's entry", e, err)
			}
			if e, err := l.Loaded(ctx, conn, "s", "t", "never"); err != nil || e != nil {
				t.Fatalf("Loaded(never) = %+v, %v; want nothing", e, err)
			}
			prev, err := claim(conn, "b1", true)
			if err != nil || prev == nil || prev.Rows != 2 || len(prev.Rejected) != 1 || prev.Rejected[0].SQLState != "22P02" {
				t.Fatalf("second claim = %+v, %v; want the first load's entry", prev, err)
			}
			// Two loads of one batch at once: one loads, the other finds it.
			var wg sync.WaitGroup
			results := make([]*Entry, 2)
			errs := make([]error, 2)
			for i := range 2 {
				c := testpeers.PostgresConn(t, dsn)
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = claim(c, "b2", true)
				}()
			}
			wg.Wait()
			loaded := 0
			for i := range 2 {
				if errs[i] != nil {
					t.Fatalf("concurrent claim %d: %v", i, errs[i])
				}
				if results[i] == nil {
					loaded++
				}
			}
			if loaded != 1 {
				t.Fatalf("%d of 2 concurrent claims loaded, want 1", loaded)
			}
			if n, err := l.Prune(ctx, conn, "s", time.Hour); err != nil || n != 0 {
				t.Errorf("Prune(1h) = %d, %v; want nothing that young", n, err)
			}
			if n, err := l.Prune(ctx, conn, "s", -time.Hour); err != nil || n != 2 {
				t.Errorf("Prune(everything) = %d, %v; want 2", n, err)
			}
		})
	}
}
