package redshift

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/klauspost/compress/gzip"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

const upstreamDSN = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

const role = "arn:aws:iam::123456789012:role/sluice-loader"

// logBuffer collects the server's log for the secrecy checks.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// env is one test's stand-in, s3rver, schema and connections.
type env struct {
	t        *testing.T
	srv      *Server
	s3       *s3.Client
	endpoint string
	schema   string
	admin    *pgx.Conn // direct to PostgreSQL
	log      *logBuffer
}

func newEnv(t *testing.T, password string) *env {
	t.Helper()
	ctx := context.Background()
	endpoint, _ := testpeers.StartS3rver(t, "bucket")
	admin, err := pgx.Connect(ctx, upstreamDSN)
	if err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 is required: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "sluice_rs_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	lb := &logBuffer{}
	srv, err := Start(Config{Upstream: upstreamDSN, S3Endpoint: endpoint, Password: password,
		Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
		admin.Close(context.Background())
		if t.Failed() {
			t.Logf("stand-in log:\n%s", lb.String())
		}
	})
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(testpeers.S3rverAccessKey, testpeers.S3rverSecretKey, ""),
	})
	return &env{t: t, srv: srv, s3: client, endpoint: endpoint, schema: schema, admin: admin, log: lb}
}

// connect opens a client connection through the stand-in with pgx's simple
// protocol.
func (e *env) connect(password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.srv.DSN("sluice", "dev"))
	if err != nil {
		return nil, err
	}
	cfg.Password = password
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return pgx.ConnectConfig(context.Background(), cfg)
}

func (e *env) conn() *pgx.Conn {
	e.t.Helper()
	c, err := e.connect(e.srv.cfg.Password)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (e *env) put(key string, body []byte) string {
	e.t.Helper()
	_, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("bucket"), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		e.t.Fatal(err)
	}
	return "s3://bucket/" + key
}

func gz(t *testing.T, text string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func manifest(entries ...string) []byte {
	var parts []string
	for _, e := range entries {
		url, mandatory, _ := strings.Cut(e, " ")
		parts = append(parts, fmt.Sprintf(`{"url":%q,"mandatory":%v}`, url, mandatory != "optional"))
	}
	return []byte(`{"entries":[` + strings.Join(parts, ",") + `]}`)
}

func run(t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func pgError(t *testing.T, err error, code string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want a PostgreSQL error %s, got %v", code, err)
	}
	if pe.Code != code {
		t.Fatalf("SQLSTATE %s (%s; %s), want %s", pe.Code, pe.Message, pe.Detail, code)
	}
	return pe
}

func count(t *testing.T, c *pgx.Conn, table string) int {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const jsonRows = `{"id": 9223372036854775807, "name": "ünïcødé 😀 \"q\"", "amount": 12345678901234.5678, "ts": "2024-01-02T03:04:05.123456Z", "payload": {"a": [1, 2, {"b": null}]}, "raw": {"k":"v"}, "flag": true}
{"id": -1, "name": null, "amount": "0.5", "ts": null, "payload": [1, "x"], "raw": [1,2], "flag": false, "not_a_column": 7}
{"id": 3, "name": "", "amount": 1e2, "payload": "just a string", "raw": "plain"}
`

func TestCopyJSONManifest(t *testing.T) {
	e := newEnv(t, "")
	c := e.conn()
	ctx := context.Background()
	for _, tc := range []struct{ name, auth, kind string }{
		{"iam_role", "IAM_ROLE '" + role + "'", CredentialsIAMRole},
		{"access_keys", "ACCESS_KEY_ID 'S3RVER' SECRET_ACCESS_KEY 'S3RVER'", CredentialsAccessKeys},
		{"credentials_role", "CREDENTIALS 'aws_iam_role=" + role + "'", CredentialsIAMRole},
		{"credentials_keys", "WITH CREDENTIALS AS 'aws_access_key_id=S3RVER;aws_secret_access_key=S3RVER'", CredentialsAccessKeys},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := e.schema + "." + tc.name
			run(t, c, "CREATE TABLE "+table+` (id bigint, name text, amount numeric(24,4), ts timestamptz,
				payload jsonb, raw text, flag boolean, missing int DEFAULT 5)`)
			data := e.put(tc.name+"/part-0.gz", gz(t, jsonRows[:strings.Index(jsonRows, "\n")+1]))
			data2 := e.put(tc.name+"/part-1.gz", gz(t, jsonRows[strings.Index(jsonRows, "\n")+1:]))
			man := e.put(tc.name+"/batch.manifest", manifest(data, data2))
			sql := fmt.Sprintf(`copy "%s"."%s" ("id","name","amount","ts","payload","raw","flag","missing") from '%s' %s manifest format as json 'auto' gzip`,
				e.schema, tc.name, man, tc.auth)
			tag, err := c.Exec(ctx, sql)
			if err != nil {
				t.Fatal(err)
			}
			if tag.String() != "COPY" {
				t.Errorf("command tag %q, want COPY (as Redshift sends it)", tag)
			}
			var copied int64
			if err := c.QueryRow(ctx, "SELECT pg_last_copy_count()").Scan(&copied); err != nil || copied != 3 {
				t.Fatalf("pg_last_copy_count() = %d, %v; want 3", copied, err)
			}
			rows, err := e.admin.Query(ctx, "SELECT id::text, coalesce(name, '<null>'), amount::text, coalesce((ts AT TIME ZONE 'UTC')::text, '<null>'), "+
				"payload::text, raw, coalesce(flag::text, '<null>'), coalesce(missing::text, '<null>') FROM "+table+" ORDER BY id")
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]string, error) {
				v := make([]string, 8)
				err := r.Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7])
				return v, err
			})
			if err != nil {
				t.Fatal(err)
			}
			want := [][]string{
				{"-1", "<null>", "0.5000", "<null>", `[1, "x"]`, "[1,2]", "false", "<null>"},
				{"3", "", "100.0000", "<null>", `"just a string"`, "plain", "<null>", "<null>"},
				{"9223372036854775807", `ünïcødé 😀 "q"`, "12345678901234.5678", "2024-01-02 03:04:05.123456",
					`{"a": [1, 2, {"b": null}]}`, `{"k":"v"}`, "true", "<null>"},
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("loaded rows\n got %q\nwant %q", got, want)
			}
			recs := e.srv.Copies()
			r := recs[len(recs)-1]
			if r.Err != nil || r.Rows != 3 || r.Credentials != tc.kind || !r.Manifest || r.From != man ||
				r.Format != formatJSON || r.InTransaction || fmt.Sprint(r.Objects) != fmt.Sprint([]string{data, data2}) ||
				r.Table != e.schema+"."+tc.name || len(r.Columns) != 8 {
				t.Fatalf("copy record %+v", r)
			}
		})
	}
}

func TestCopyTransaction(t *testing.T) {
	e := newEnv(t, "")
	c := e.conn()
	ctx := context.Background()
	table := e.schema + ".events"
	run(t, c, "CREATE TABLE "+table+" (id int, body varchar(20))")
	run(t, c, "CREATE TABLE "+e.schema+".ledger (batch text PRIMARY KEY)")
	data := e.put("tx/a.gz", gz(t, `{"id":1,"body":"one"}`+"\n"+`{"id":2,"body":"two"}`+"\n"))
	man := e.put("tx/a.manifest", manifest(data))
	copySQL := "COPY " + table + " FROM '" + man + "' IAM_ROLE '" + role + "' MANIFEST JSON 'auto' GZIP COMPUPDATE OFF STATUPDATE OFF"

	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+e.schema+".ledger"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, copySQL); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c, table); n != 2 {
		t.Fatalf("inside the transaction %d rows, want 2", n)
	}
	if n := count(t, e.admin, table); n != 0 {
		t.Fatalf("another session sees %d uncommitted rows", n)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c, table); n != 0 {
		t.Fatalf("after ROLLBACK %d rows, want 0", n)
	}
	if recs := e.srv.Copies(); !recs[0].InTransaction || recs[0].Rows != 2 {
		t.Fatalf("copy record %+v", recs[0])
	}

	// The load and the ledger commit together.
	tx, err = c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, copySQL); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+e.schema+".ledger VALUES ('a')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e.admin, table); n != 2 {
		t.Fatalf("after COMMIT another session sees %d rows, want 2", n)
	}
}

func TestCopyMissingObjects(t *testing.T) {
	e := newEnv(t, "")
	c := e.conn()
	ctx := context.Background()
	table := e.schema + ".t"
	run(t, c, "CREATE TABLE "+table+" (id int)")
	there := e.put("m/there.gz", gz(t, `{"id":1}`+"\n"))
	copyFrom := func(man string) error {
		_, err := c.Exec(ctx, "COPY "+table+" FROM '"+man+"' IAM_ROLE '"+role+"' MANIFEST FORMAT JSON 'auto' GZIP")
		return err
	}

	// A mandatory entry that is missing fails the whole COPY.
	man := e.put("m/mandatory.manifest", manifest(there, "s3://bucket/m/gone.gz"))
	pe := pgError(t, copyFrom(man), "XX000")
	if !strings.Contains(pe.Message, "Mandatory url is not present") || !strings.Contains(pe.Detail, "s3://bucket/m/gone.gz") {
		t.Fatalf("error %q / %q", pe.Message, pe.Detail)
	}
	if n := count(t, c, table); n != 0 {
		t.Fatalf("%d rows loaded by a failed COPY", n)
	}

	// Inside a transaction block, the failure aborts the transaction.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pgError(t, copyFrom(man), "XX000")
	_, err = tx.Exec(ctx, "SELECT 1")
	pgError(t, err, "25P02")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// An optional one is skipped.
	if err := copyFrom(e.put("m/optional.manifest", manifest(there, "s3://bucket/m/gone.gz optional"))); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c, table); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}

	// A missing manifest, and a missing bucket.
	pe = pgError(t, copyFrom("s3://bucket/m/no.manifest"), "XX000")
	if !strings.HasPrefix(pe.Message, "Problem reading manifest file - S3ServiceException:") || !strings.Contains(pe.Message, "NoSuchKey") {
		t.Fatalf("error %q", pe.Message)
	}
	pe = pgError(t, copyFrom(e.put("m/bucket.manifest", manifest("s3://nobucket/x.gz"))), "XX000")
	if !strings.Contains(pe.Message, "S3ServiceException:") || !strings.Contains(pe.Message, "NoSuchBucket") {
		t.Fatalf("error %q", pe.Message)
	}
	if n := count(t, c, table); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestCopyWrongAccessKeys(t *testing.T) {
	e := newEnv(t, "")
	c := e.conn()
	table := e.schema + ".t"
	run(t, c, "CREATE TABLE "+table+" (id int)")
	man := e.put("k/a.manifest", manifest(e.put("k/a.gz", gz(t, `{"id":1}`))))
	const secret = "wJalrXUtnFEMI-K7MDENG-not-the-key"
	_, err := c.Exec(context.Background(), "COPY "+table+" FROM '"+man+"' ACCESS_KEY_ID 'AKIAEXAMPLE' SECRET_ACCESS_KEY '"+
		secret+"' SESSION_TOKEN 'tok-secret' MANIFEST JSON 'auto' GZIP")
	pe := pgError(t, err, "XX000")
	if !strings.Contains(pe.Message, "S3ServiceException:") || !strings.Contains(pe.Message, "Status 403") {
		t.Fatalf("error %q", pe.Message)
	}
	r := e.srv.Copies()[0]
	for _, s := range []string{e.log.String(), r.SQL, pe.Message, pe.Detail} {
		if strings.Contains(s, secret) || strings.Contains(s, "tok-secret") {
			t.Fatalf("a secret leaked: %s", s)
		}
	}
	if r.Credentials != CredentialsAccessKeys || r.AccessKeyID != "AKIAEXAMPLE" || !strings.Contains(r.SQL, "SECRET_ACCESS_KEY '***'") {
		t.Fatalf("copy record %+v", r)
	}
}

func TestCopyCSV(t *testing.T) {
	e := newEnv(t, "")
	c := e.conn()
	table := e.schema + ".csv"
	run(t, c, "CREATE TABLE "+table+" (a text, b int, c varchar(8), d text)")
	body := "a,b,c,d\n" + // IGNOREHEADER 1
		`"x, with comma",1,"say ""hi""",` + "\n" +
		`  "multi` + "\n" + `line"  ,,plain,\N` + "\r\n" +
		`,3,"",tail` + "\n"
	man := e.put("csv/m", manifest(e.put("csv/0.csv.gz", gz(t, body))))
	run(t, c, "COPY "+table+" (a, b, c, d) FROM '"+man+"' IAM_ROLE '"+role+"' MANIFEST CSV QUOTE AS '\"' GZIP IGNOREHEADER 1 EMPTYASNULL")
	rows, err := c.Query(context.Background(), "SELECT coalesce(a,'<null>'), coalesce(b::text,'<null>'), coalesce(c,'<null>'), coalesce(d,'<null>') FROM "+table+" ORDER BY b NULLS FIRST, a")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var a, b, c, d string
		err := r.Scan(&a, &b, &c, &d)
		return a + "|" + b + "|" + c + "|" + d, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"multi\nline|<null>|plain|<null>", `x, with comma|1|say "hi"|<null>`, "<null>|3||tail"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("rows\n got %q\nwant %q", got, want)
	}
}

func TestCopyPrefixTextFormat(t *testing.T) {
	e := newEnv(t, "")
	c := e.conn()
	table := e.schema + ".txt"
	run(t, c, "CREATE TABLE "+table+" (id int, s text, ts timestamp)")
	e.put("p/2024/a", []byte("1|one|1700000000000\n2|\\N|1700000000001\n"))
	e.put("p/2024/b", []byte("3|pipe \\| inside|1700000000002"))
	e.put("other/c", []byte("9|not loaded|0\n"))
	run(t, c, "COPY "+table+" FROM 's3://bucket/p/2024/' IAM_ROLE default ESCAPE TIMEFORMAT 'epochmillisecs' REGION 'us-east-1'")
	rows, err := c.Query(context.Background(), "SELECT id, coalesce(s,'<null>'), ts::text FROM "+table+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var id int
		var s, ts string
		err := r.Scan(&id, &s, &ts)
		return fmt.Sprintf("%d/%s/%s", id, s, ts), err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1/one/2023-11-14 22:13:20", "2/<null>/2023-11-14 22:13:20.001", "3/pipe | inside/2023-11-14 22:13:20.002"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows\n got %q\nwant %q", got, want)
	}
	_, err = c.Exec(context.Background(), "COPY "+table+" FROM 's3://bucket/nothing/' IAM_ROLE default")
	if pe := pgError(t, err, "XX000"); !strings.Contains(pe.Message, "prefix 'nothing/' does not exist") {
		t.Fatalf("error %q", pe.Message)
	}
}

func TestCopyBadData(t *testing.T) {
	e := newEnv(t, "")
	c := e.conn()
	ctx := context.Background()
	table := e.schema + ".bad"
	run(t, c, "CREATE TABLE "+table+" (id int NOT NULL, code varchar(4), amount numeric(6,2))")
	body := `{"id":1,"code":"ok","amount":1.239}` + "\n" +
		`{"id":"x2","code":"ok"}` + "\n" + // PostgreSQL rejects the integer
		`{"id":3,"code":"éééé"}` + "\n" + // 8 bytes: too long for varchar(4) in Redshift's bytes
		`{"code":"nn"}` + "\n" + // NOT NULL id missing
		`{"id":5,"code":"fine"}` + "\n"
	man := e.put("bad/m", manifest(e.put("bad/0.gz", gz(t, body))))
	copySQL := "COPY " + table + " FROM '" + man + "' IAM_ROLE '" + role + "' MANIFEST JSON 'auto' GZIP"

	// One row PostgreSQL rejects fails the load (MAXERROR 0).
	one := strings.Join(strings.Split(body, "\n")[:2], "\n")
	_, err := c.Exec(ctx, "COPY "+table+" FROM '"+e.put("bad/one.manifest", manifest(e.put("bad/one.gz", gz(t, one))))+
		"' IAM_ROLE '"+role+"' MANIFEST JSON 'auto' GZIP")
	pe := pgError(t, err, "XX000")
	if pe.Message != "Load into table 'bad' failed. Check 'stl_load_errors' system table for details." {
		t.Fatalf("message %q", pe.Message)
	}
	if n := count(t, c, table); n != 0 {
		t.Fatalf("%d rows loaded by a failed COPY", n)
	}
	r := e.srv.Copies()[0]
	if len(r.Rejected) != 1 || r.Rejected[0].Line != 2 || r.Rejected[0].Column != "id" || r.Rejected[0].Code != 1207 ||
		!strings.Contains(pe.Detail, "code:      1207") {
		t.Fatalf("rejected %+v, detail %s", r.Rejected, pe.Detail)
	}

	// MAXERROR 4 lets the three bad rows go, each found once.
	if _, err := c.Exec(ctx, copySQL+" MAXERROR 4"); err != nil {
		t.Fatal(err)
	}
	var got []string
	rows, err := c.Query(ctx, "SELECT id || ':' || code || ':' || coalesce(amount::text, '-') FROM "+table+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if got, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	// 1.239 into numeric(6,2): Redshift truncates to 1.23.
	if fmt.Sprint(got) != "[1:ok:1.23 5:fine:-]" {
		t.Fatalf("rows %q", got)
	}
	r = e.srv.Copies()[1]
	var rej []string
	for _, le := range r.Rejected {
		rej = append(rej, fmt.Sprintf("%d:%s:%d", le.Line, le.Column, le.Code))
	}
	if r.Rows != 2 || fmt.Sprint(rej) != "[2:id:1207 3:code:1204 4:id:1213]" {
		t.Fatalf("rows %d, rejected %v", r.Rows, rej)
	}

	// MAXERROR 3: three errors reach it; TRUNCATECOLUMNS makes one row good.
	_, err = c.Exec(ctx, copySQL+" MAXERROR 3")
	pgError(t, err, "XX000")
	if _, err := c.Exec(ctx, copySQL+" MAXERROR AS 3 TRUNCATECOLUMNS"); err != nil {
		t.Fatal(err)
	}
	var code string
	if err := c.QueryRow(ctx, "SELECT code FROM "+table+" WHERE id = 3").Scan(&code); err != nil || code != "éé" {
		t.Fatalf("truncated code %q, %v", code, err)
	}
}

func TestCopyErrors(t *testing.T) {
	e := newEnv(t, "")
	c := e.conn()
	ctx := context.Background()
	run(t, c, "CREATE TABLE "+e.schema+".t (id int)")
	man := e.put("e/m", manifest(e.put("e/0", []byte(`{"id":1}`))))
	for _, tc := range []struct{ sql, code, msg string }{
		{"COPY " + e.schema + ".nope FROM '" + man + "' IAM_ROLE default MANIFEST JSON 'auto'", "42P01", "Cannot COPY into nonexistent table nope"},
		{"COPY " + e.schema + ".t FROM '" + man + "' IAM_ROLE default MANIFEST FORMAT AS PARQUET", "0A000", "PARQUET"},
		{"COPY " + e.schema + ".t FROM '" + man + "' IAM_ROLE default MANIFEST REMOVEQUOTES", "0A000", "REMOVEQUOTES"},
		{"COPY " + e.schema + ".t FROM STDIN", "0A000", "STDIN"},
		{"COPY " + e.schema + ".t FROM '" + man + "' MANIFEST", "XX000", "Invalid credentials"},
		{"COPY " + e.schema + ".t FROM '" + man + "' IAM_ROLE 'not-an-arn' MANIFEST", "XX000", "Invalid IAM role ARN"},
		{"COPY " + e.schema + ".t FROM '" + man + "' IAM_ROLE default ACCESS_KEY_ID 'a' SECRET_ACCESS_KEY 'b'", "42601", "conflicting"},
		{"COPY " + e.schema + ".t FROM '" + man + "' IAM_ROLE default MANIFEST BOGUS", "42601", `syntax error at or near "BOGUS"`},
		{"COPY " + e.schema + ".t (nope) FROM '" + man + "' IAM_ROLE default MANIFEST JSON 'auto'", "42703", "nope"},
		{"SELECT 1; COPY " + e.schema + ".t FROM '" + man + "' IAM_ROLE default MANIFEST", "0A000", "only statement"},
	} {
		_, err := c.Exec(ctx, tc.sql)
		if pe := pgError(t, err, tc.code); !strings.Contains(pe.Message, tc.msg) {
			t.Errorf("%s: message %q, want it to contain %q", tc.sql, pe.Message, tc.msg)
		}
	}
	if n := count(t, c, e.schema+".t"); n != 0 {
		t.Fatalf("%d rows", n)
	}
}

func TestPassword(t *testing.T) {
	e := newEnv(t, "s3cr3t-pw")
	_, err := e.connect("wrong")
	pe := pgError(t, err, "28P01")
	if pe.Severity != "FATAL" {
		t.Fatalf("severity %s", pe.Severity)
	}
	c, err := e.connect("s3cr3t-pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var v string
	if err := c.QueryRow(context.Background(), "SELECT 'ok'").Scan(&v); err != nil || v != "ok" {
		t.Fatalf("%q, %v", v, err)
	}
	if got := c.PgConn().ParameterStatus("server_version"); got != "8.0.2" {
		t.Fatalf("server_version %q", got)
	}
}

func TestForwarding(t *testing.T) {
	e := newEnv(t, "")
	c := e.conn()
	ctx := context.Background()
	table := e.schema + ".plain"
	run(t, c, "CREATE TABLE "+table+" (id bigint, label text, at timestamptz, n numeric)")
	tag, err := c.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, $2, $3, $4), (2, NULL, NULL, NULL)",
		int64(1), "it's", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), "3.14")
	if err != nil || tag.String() != "INSERT 0 2" {
		t.Fatalf("insert: %q, %v", tag, err)
	}
	var (
		id    int64
		label *string
		at    time.Time
		n     string
	)
	if err := c.QueryRow(ctx, "SELECT id, label, at, n::text FROM "+table+" WHERE id = $1", 1).Scan(&id, &label, &at, &n); err != nil {
		t.Fatal(err)
	}
	if id != 1 || label == nil || *label != "it's" || !at.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) || n != "3.14" {
		t.Fatalf("row %d %v %v %s", id, label, at, n)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if st := c.PgConn().TxStatus(); st != 'T' {
		t.Fatalf("transaction status %c", st)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Several statements in one message; an error keeps its fields.
	res, err := c.PgConn().Exec(ctx, "SELECT 1 AS one; SELECT 'a' AS x UNION ALL SELECT 'b'").ReadAll()
	if err != nil || len(res) != 2 || len(res[1].Rows) != 2 || string(res[1].Rows[1][0]) != "b" || res[0].FieldDescriptions[0].Name != "one" {
		t.Fatalf("multi-statement: %+v, %v", res, err)
	}
	_, err = c.Exec(ctx, "SELECT 1/0")
	pgError(t, err, "22012")
	_, err = c.Exec(ctx, "SELEC 1")
	if pe := pgError(t, err, "42601"); pe.Position != 1 {
		t.Fatalf("position %d", pe.Position)
	}
	if _, err := c.PgConn().Exec(ctx, "").ReadAll(); err != nil {
		t.Fatal(err)
	}

	// A cancel request reaches the upstream query (sent until the query
	// ends, since one sent before the query starts cancels nothing).
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				_ = c.PgConn().CancelRequest(ctx)
			}
		}
	}()
	_, err = c.Exec(ctx, "SELECT pg_sleep(60)")
	close(done)
	pgError(t, err, "57014")

	// The extended protocol is refused, and the connection goes on.
	cfg, err := pgx.ParseConfig(e.srv.DSN("sluice", "dev"))
	if err != nil {
		t.Fatal(err)
	}
	ext, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close(ctx)
	var one int
	err = ext.QueryRow(ctx, "SELECT $1::int", 1).Scan(&one)
	if pe := pgError(t, err, "0A000"); !strings.Contains(pe.Message, "extended query protocol") {
		t.Fatalf("message %q", pe.Message)
	}
	if err := ext.QueryRow(ctx, "SELECT 2", pgx.QueryExecModeSimpleProtocol).Scan(&one); err != nil || one != 2 {
		t.Fatalf("after refusal: %d, %v", one, err)
	}
}

// TestStandinBinary runs the command the shell benchmarks and end-to-end
// tests use, with its flags, and stops it with SIGTERM.
func TestStandinBinary(t *testing.T) {
	e := newEnv(t, "")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the stand-in: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "redshift-standin")
	if out, err := exec.Command(goBin, "build", "-o", bin, "./cmd/redshift-standin").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-upstream", upstreamDSN, "-s3-endpoint", e.endpoint,
		"-s3-region", "us-east-1", "-password", "pw")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the address: %v\n%s", err, stderr.String())
	}
	cfg, err := pgx.ParseConfig("postgres://loader:pw@" + strings.TrimSpace(addr) + "/dev?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx := context.Background()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	table := e.schema + ".bin"
	run(t, c, "CREATE TABLE "+table+" (id int, s text)")
	man := e.put("bin/m", manifest(e.put("bin/0.gz", gz(t, `{"id":7,"s":"seven"}`))))
	run(t, c, "COPY "+table+" FROM '"+man+"' IAM_ROLE '"+role+"' MANIFEST FORMAT AS JSON 'auto' GZIP")
	var s string
	if err := e.admin.QueryRow(ctx, "SELECT s FROM "+table+" WHERE id = 7").Scan(&s); err != nil || s != "seven" {
		t.Fatalf("%q, %v", s, err)
	}
	c.Close(ctx)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "COPY loaded") {
		t.Fatalf("log: %s", stderr.String())
	}
}
