package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	rsstandin "github.com/sluice-dev/sluice/deploy/testpeers/redshift"
)

// TestRedshiftExample runs examples/redshift.yaml against the Redshift
// stand-in (Postgres wire protocol, COPY … FROM 's3://…' MANIFEST loading
// from s3rver into a real PostgreSQL table): every clickstream record is a
// row with its values, each once, loaded by COPYs that name a manifest.
func TestRedshiftExample(t *testing.T) {
	const bucket = "sluice-redshift"
	endpoint, _ := testpeers.StartS3rver(t, bucket)
	dsn, schema := testpeers.PostgresSchema(t, "sluice_rsex")
	conn := testpeers.PostgresConn(t, dsn)
	table := pgx.Identifier{schema, "clickstream"}
	if _, err := conn.Exec(context.Background(), "CREATE TABLE "+table.Sanitize()+
		" (event_id varchar(32), ts timestamptz, user_id bigint, country char(2), amount numeric(10,2), tags varchar(256), device varchar(256))"); err != nil {
		t.Fatal(err)
	}
	rs, err := rsstandin.Start(rsstandin.Config{Upstream: dsn, S3Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := exampleConfig(t, "redshift.yaml", dir, addr)
	d := startDaemonEnv(t, cfg, dir, addr, []string{
		"REDSHIFT_DSN=" + rs.DSN("loader", "test"), "REDSHIFT_TABLE=" + schema + ".clickstream",
		"REDSHIFT_IAM_ROLE=arn:aws:iam::123456789012:role/redshift-reads-staging",
		"S3_BUCKET=" + bucket, "S3_ENDPOINT=" + endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=" + testpeers.S3rverAccessKey, "AWS_SECRET_ACCESS_KEY=" + testpeers.S3rverSecretKey,
	})
	src := "../../examples/data/clickstream.ndjson"
	out, err := exec.Command(sluiceBin, "put", "--endpoint", "http://"+addr, "--stream", "redshift", "--file", src).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice put: %v\n%s", err, out)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	want := splitLines(data)
	count := func() int {
		var n int
		_ = conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table.Sanitize()).Scan(&n)
		return n
	}
	if !waitFor(40*time.Second, func() bool { return count() >= len(want) }) {
		t.Fatalf("%d of %d rows loaded\n%s", count(), len(want), d.log.String())
	}
	for _, l := range want {
		var rec struct {
			EventID string          `json:"event_id"`
			TS      string          `json:"ts"`
			UserID  int64           `json:"user_id"`
			Country string          `json:"country"`
			Amount  json.Number     `json:"amount"`
			Tags    json.RawMessage `json:"tags"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table.Sanitize()+
			" WHERE event_id = $1 AND ts = $2::timestamptz AND user_id = $3 AND country = $4 AND amount = $5::numeric AND tags = $6",
			rec.EventID, rec.TS, rec.UserID, rec.Country, rec.Amount.String(), string(rec.Tags)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("record %s: %d rows with its values, want 1", rec.EventID, n)
		}
	}
	if n := count(); n != len(want) {
		t.Fatalf("%d rows, want %d", n, len(want))
	}
	copies := rs.Copies()
	if len(copies) == 0 {
		t.Fatal("the stand-in saw no COPY")
	}
	for _, c := range copies {
		if !c.Manifest || c.Credentials != rsstandin.CredentialsIAMRole || !c.InTransaction || c.Err != nil ||
			!strings.HasPrefix(c.From, "s3://"+bucket+"/redshift/manifests/") {
			t.Errorf("COPY %+v: want a MANIFEST load with IAM_ROLE inside a transaction, from redshift/manifests/", c)
		}
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if errs := deliveredLines(t, filepath.Join(dir, "redshift-errors")); len(errs) != 0 {
		t.Fatalf("%d lines in the error output", len(errs))
	}
}
