package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/internal/secret"
	"github.com/sluice-dev/sluice/pipeline"
)

var t0 = time.Date(2026, 12, 2, 7, 30, 0, 0, time.UTC)

// env is a test's own schema on the shared PostgreSQL server.
type env struct {
	t      *testing.T
	dsn    string
	schema string
	conn   *pgx.Conn
	reg    *prometheus.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dsn, schema := testpeers.PostgresSchema(t, "sluice_pg")
	return &env{t: t, dsn: dsn, schema: schema, conn: testpeers.PostgresConn(t, dsn), reg: prometheus.NewRegistry()}
}

// opts are options loading into table of the env's schema.
func (e *env) opts(table string) Options {
	o := DefaultOptions()
	o.DSN = secret.Secret(e.dsn)
	o.Table = e.schema + "." + table
	return o
}

// dest compiles o and builds the destination of stream, closed at the end.
func (e *env) dest(o Options, stream string) *Destination {
	e.t.Helper()
	cfg, err := Compile(o)
	if err != nil {
		e.t.Fatalf("Compile: %v", err)
	}
	d, err := New(context.Background(), cfg, stream, pipeline.Deps{Registry: e.reg})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.conn.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// strings runs a query, each row's columns joined by "|" (NULL for NULL).
func (e *env) strings(sql string, args ...any) []string {
	e.t.Helper()
	return testpeers.PostgresRows(e.t, e.conn, sql, args...)
}

func (e *env) metric(name string, labels map[string]string) float64 {
	e.t.Helper()
	return destinationtest.Counter(e.t, e.reg, name, labels)
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.conn.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{e.schema, table}.Sanitize()).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// batch builds a batch of stream from JSON texts.
func batch(stream string, first pipeline.Position, datas ...string) pipeline.Batch {
	bs := make([][]byte, len(datas))
	for i, d := range datas {
		bs[i] = []byte(d)
	}
	return destinationtest.NewBatch(stream, first, t0, bs...)
}

func deliver(t *testing.T, d pipeline.Destination, b pipeline.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return d.Deliver(ctx, b)
}

// failedIndices are the indices of a PartialError (nil for nil).
func failedIndices(t *testing.T, err error) []int {
	t.Helper()
	if err == nil {
		return nil
	}
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Deliver = %v, want nil or a *pipeline.PartialError", err)
	}
	var idx []int
	for _, f := range pe.Failed {
		if pipeline.IsRetryable(f.Err) {
			t.Errorf("record %d: retryable %v, want permanent", f.Index, f.Err)
		}
		idx = append(idx, f.Index)
	}
	return idx
}
