package redshift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	standin "github.com/sluice-dev/sluice/deploy/testpeers/redshift"
	"github.com/sluice-dev/sluice/destinations/internal/pgload"
	"github.com/sluice-dev/sluice/destinations/internal/secret"
	"github.com/sluice-dev/sluice/pipeline"
)

// The end-to-end tests run against the Redshift stand-in
// (deploy/testpeers/redshift), which forwards statements to the shared
// PostgreSQL server and runs COPY … FROM 's3://…' MANIFEST itself,
// reading the s3rver staging bucket.

func TestLoadJSON(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.table("events") + " (id int, name varchar(64), score float8, ok boolean, note varchar(256))")
	o := e.opts("events")
	o.Columns = []string{"id", "name", "score", "ok", "note"}
	d := e.dest(o, "orders")
	b := batch("orders", 1000,
		`{"id":1,"name":"alice","score":1.5,"ok":true,"note":"x"}`,
		`not json`,
		`{ "id" : 2, "name":"bob, \"jr\"", "score": -2e3, "ok": false }`,
		`[1,2]`,
		`{"id":3,"name":"","note":"line\nbreak","extra":"ignored"}`,
	)
	err := d.Deliver(context.Background(), b)
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Deliver: %v, want a *pipeline.PartialError for the records that are not JSON objects", err)
	}
	var idx []int
	for _, f := range pe.Failed {
		idx = append(idx, f.Index)
		var ot pipeline.OutputTyper
		if pipeline.IsRetryable(f.Err) || errorCode(f.Err) != CodeInvalidRecord || !errors.As(f.Err, &ot) || ot.ErrorOutputType() != OutputType {
			t.Errorf("record %d: %v, want a permanent %s error of type %s", f.Index, f.Err, CodeInvalidRecord, OutputType)
		}
	}
	if !slices.Equal(idx, []int{1, 3}) {
		t.Errorf("failed records %v, want [1 3]", idx)
	}
	got := e.rows("SELECT id, name, score, ok, note FROM " + e.table("events") + " ORDER BY id")
	want := []string{"1|alice|1.5|true|x", `2|bob, "jr"|-2000|false|NULL`, "3||NULL|NULL|line\nbreak"}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n got %q\nwant %q", got, want)
	}

	// The staged object, the manifest and the COPY that read them.
	data, manifest, _ := d.cfg.Keys("orders", b.ID, t0)
	obj, ok := e.object(data)
	if !ok {
		t.Fatalf("no staged object %s (keys: %q)", data, e.listKeys(""))
	}
	wantLines := `{"id":1,"name":"alice","score":1.5,"ok":true,"note":"x"}` + "\n" +
		`{"id":2,"name":"bob, \"jr\"","score":-2e3,"ok":false}` + "\n" +
		`{"id":3,"name":"","note":"line\nbreak","extra":"ignored"}` + "\n"
	if s := gunzip(t, obj); s != wantLines {
		t.Errorf("staged object\n got %q\nwant %q", s, wantLines)
	}
	m, ok := e.object(manifest)
	if !ok {
		t.Fatalf("no manifest %s", manifest)
	}
	if want := `{"entries":[{"url":"s3://staging/` + data + `","mandatory":true}]}`; string(m) != want {
		t.Errorf("manifest %s, want %s", m, want)
	}
	copies := e.srv.Copies()
	if len(copies) != 1 {
		t.Fatalf("%d COPY statements, want 1", len(copies))
	}
	c := copies[0]
	if c.Err != nil || !c.Manifest || !c.InTransaction || c.Credentials != standin.CredentialsIAMRole || c.Format != "json" ||
		c.From != "s3://staging/"+manifest || !slices.Equal(c.Objects, []string{"s3://staging/" + data}) || c.Rows != 3 {
		t.Errorf("COPY %+v", c)
	}
	if c.SQL != d.cfg.CopySQL("s3://staging/"+manifest) {
		t.Errorf("COPY text\n got %s\nwant %s", c.SQL, d.cfg.CopySQL("s3://staging/"+manifest))
	}
	if n := e.metric(pgload.MetricRejectedRows, map[string]string{"sqlstate_class": "mapping"}); n != 2 {
		t.Errorf("rejected rows metric %v, want 2", n)
	}
	if err := d.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestLoadCSV(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.table("events") + " (id bigint, name varchar(64), ok boolean, doc varchar(256), amount numeric(10,2))")
	o := e.opts("events")
	o.Format, o.Columns = "csv", []string{"id", "name", "ok", "doc", "amount"}
	d := e.dest(o, "s")
	b := batch("s", 0,
		`{"id":1,"name":"plain","ok":true,"doc":{"a":[1, "x,y"]},"amount":12.5}`,
		`{"id":2,"name":"comma, \"quote\"\nnewline","ok":false,"doc":[],"amount":-0.25}`,
		`{"id":3,"name":"","ok":null}`,
		`{"id":4}`,
	)
	if err := d.Deliver(context.Background(), b); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := e.rows("SELECT id, coalesce(name, 'NULL:name'), ok, doc, amount::text FROM " + e.table("events") + " ORDER BY id")
	want := []string{
		`1|plain|true|{"a":[1,"x,y"]}|12.50`,
		"2|comma, \"quote\"\nnewline|false|[]|-0.25",
		"3||NULL|NULL|NULL", // "" stays an empty string, null is NULL
		"4|NULL:name|NULL|NULL|NULL",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n got %q\nwant %q", got, want)
	}
	data, _, _ := d.cfg.Keys("s", b.ID, t0)
	obj, ok := e.object(data)
	if !ok {
		t.Fatalf("no staged object %s", data)
	}
	wantCSV := "1,\"plain\",true,\"{\"\"a\"\":[1,\"\"x,y\"\"]}\",12.5\n" +
		"2,\"comma, \"\"quote\"\"\nnewline\",false,\"[]\",-0.25\n" +
		"3,\"\",,,\n" +
		"4,,,,\n"
	if s := gunzip(t, obj); s != wantCSV {
		t.Errorf("staged CSV\n got %q\nwant %q", s, wantCSV)
	}
	if c := e.srv.Copies(); len(c) != 1 || c[0].Format != "csv" || c[0].Err != nil {
		t.Errorf("COPY statements %+v", c)
	}
}

func TestRedeliveryLoadsOnce(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.table("events") + " (id int)")
	d := e.dest(e.opts("events"), "s")
	b := batch("s", 0, `{"id":1}`, `{"id":2}`)
	if err := d.Deliver(context.Background(), b); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	// The staged objects are removed: a redelivery must not stage again
	// (the ledger is read first), nor load again.
	data, manifest, _ := d.cfg.Keys("s", b.ID, t0)
	for _, k := range []string{data, manifest} {
		if _, err := e.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(testBucket), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Deliver(context.Background(), b); err != nil {
		t.Fatalf("second Deliver: %v", err)
	}
	// A new destination (a restart) finds the ledger entry too.
	d2 := e.dest(e.opts("events"), "s")
	if err := d2.Deliver(context.Background(), b); err != nil {
		t.Fatalf("Deliver after a restart: %v", err)
	}
	if got := e.rows("SELECT id FROM " + e.table("events") + " ORDER BY id"); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("rows %q, want 1 and 2 once", got)
	}
	if n := len(e.srv.Copies()); n != 1 {
		t.Errorf("%d COPY statements, want 1", n)
	}
	if keys := e.listKeys(""); len(keys) != 0 {
		t.Errorf("redelivery staged %q again", keys)
	}
	if n := e.metric(pgload.MetricLedgerSkips, nil); n != 2 {
		t.Errorf("ledger skips %v, want 2", n)
	}
	got := e.rows("SELECT stream, target, batch, rows FROM " + e.table(pgload.DefaultLedgerTable))
	want := []string{fmt.Sprintf("s|%s|%s|2", e.table("events"), pgload.BatchKey(b.ID, b.Records[0].ID))}
	if !slices.Equal(got, want) {
		t.Errorf("ledger %q, want %q", got, want)
	}
	// Another batch (another identity) loads.
	b2 := batch("s", b.ID.End, `{"id":3}`)
	if err := d.Deliver(context.Background(), b2); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := e.rows("SELECT id FROM " + e.table("events") + " ORDER BY id"); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("rows %q", got)
	}
}

func TestConcurrentBatches(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.table("events") + " (id int)")
	d := e.dest(e.opts("events"), "s")
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	var want []string
	for i := range n {
		b := batch("s", pipeline.Position(i*1000), fmt.Sprintf(`{"id":%d}`, 2*i), fmt.Sprintf(`{"id":%d}`, 2*i+1))
		want = append(want, fmt.Sprint(2*i), fmt.Sprint(2*i+1))
		wg.Add(2) // each batch twice at once: one load, one skip
		for j := range 2 {
			go func() {
				defer wg.Done()
				if err := d.Deliver(context.Background(), b); err != nil && j == 0 {
					errs[i] = err
				} else if err != nil {
					errs[i] = errors.Join(errs[i], err)
				}
			}()
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("batch %d: %v", i, err)
		}
	}
	got := e.rows("SELECT id FROM " + e.table("events") + " ORDER BY id")
	if !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

func TestMissingTable(t *testing.T) {
	e := newEnv(t)
	d := e.dest(e.opts("events"), "s")
	b := batch("s", 0, `{"id":1}`, `nope`)
	err := d.Deliver(context.Background(), b)
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) || len(pe.Failed) != 2 {
		t.Fatalf("Deliver: %v, want a partial failure of both records", err)
	}
	for _, f := range pe.Failed {
		switch f.Index {
		case 0:
			if !pipeline.IsRetryable(f.Err) || errorCode(f.Err) != "Redshift.TableNotFound" {
				t.Errorf("record 0: %v, want retryable Redshift.TableNotFound", f.Err)
			}
		case 1:
			if pipeline.IsRetryable(f.Err) || errorCode(f.Err) != CodeInvalidRecord {
				t.Errorf("record 1: %v, want permanent %s", f.Err, CodeInvalidRecord)
			}
		}
	}
	// Without refused records, the whole batch fails.
	good := batch("s", 1000, `{"id":1}`)
	err = d.Deliver(context.Background(), good)
	if !pipeline.IsRetryable(err) || errorCode(err) != "Redshift.TableNotFound" {
		t.Fatalf("Deliver: %v, want retryable Redshift.TableNotFound", err)
	}
	if !strings.Contains(err.Error(), "42P01") || !strings.Contains(err.Error(), "IAM_ROLE") {
		t.Errorf("error %q: want the SQLSTATE and the (redacted) statement", err)
	}
	rerr := d.Ready(context.Background())
	if rerr == nil || !strings.Contains(rerr.Error(), "42P01") {
		t.Errorf("Ready: %v, want the missing table", rerr)
	}
	// The operator creates the table: the retry loads, Ready recovers.
	e.exec("CREATE TABLE " + e.table("events") + " (id int)")
	if err := d.Deliver(context.Background(), good); err != nil {
		t.Fatalf("Deliver after CREATE TABLE: %v", err)
	}
	if err := d.Ready(context.Background()); err != nil {
		t.Errorf("Ready after a load: %v", err)
	}
	if got := e.rows("SELECT id FROM " + e.table("events")); !slices.Equal(got, []string{"1"}) {
		t.Errorf("rows %q", got)
	}
	if n := e.metric(pgload.MetricLoadErrors, map[string]string{"code": "Redshift.TableNotFound", "class": "table"}); n != 2 {
		t.Errorf("load errors metric %v, want 2", n)
	}
}

func TestDataLoadFailed(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.table("events") + " (id int NOT NULL)")
	d := e.dest(e.opts("events"), "s")
	err := d.Deliver(context.Background(), batch("s", 0, `{"id":1}`, `{"id":"twelve"}`))
	if !pipeline.IsRetryable(err) || errorCode(err) != CodeDataLoadFailed {
		t.Fatalf("Deliver: %v, want retryable %s", err, CodeDataLoadFailed)
	}
	if !strings.Contains(err.Error(), "stl_load_errors") {
		t.Errorf("error %q: want Redshift's message", err)
	}
	if got := e.rows("SELECT id FROM " + e.table("events")); len(got) != 0 {
		t.Errorf("rows %q loaded by a failed COPY", got)
	}
	if got := e.rows("SELECT batch FROM " + e.table(pgload.DefaultLedgerTable)); len(got) != 0 {
		t.Errorf("ledger %q after a failed COPY", got)
	}
	if err := d.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "XX000") {
		t.Errorf("Ready: %v, want the failed load", err)
	}
}

func TestAccessKeys(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.table("events") + " (id int)")
	o := e.opts("events")
	// s3rver accepts only its own keys, so COPY reads with them.
	o.IAMRole, o.AccessKeyID, o.SecretAccessKey, o.SessionToken = "", "S3RVER", "S3RVER", "tok-en"
	d := e.dest(o, "s")
	if err := d.Deliver(context.Background(), batch("s", 0, `{"id":7}`)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := e.rows("SELECT id FROM " + e.table("events")); !slices.Equal(got, []string{"7"}) {
		t.Errorf("rows %q", got)
	}
	c := e.srv.Copies()
	if len(c) != 1 || c[0].Credentials != standin.CredentialsAccessKeys || c[0].AccessKeyID != "S3RVER" {
		t.Errorf("COPY %+v, want one with access keys", c)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "SECRET_ACCESS_KEY '[redacted]'") || strings.Contains(logs, "tok-en") {
		t.Errorf("logs do not show the redacted statement only:\n%s", logs)
	}
}

func TestAbandon(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.table("events") + " (id int, name varchar(16))")
	d := e.dest(e.opts("events"), "s")
	b := batch("s", 0, `{"id":1,"name":"a"}`, `garbage`, `{"id":2,"name":"it's"}`)
	cause := &pipeline.CodedError{Code: "Redshift.TableNotFound", Err: errors.New("gone")}
	for range 2 { // idempotent
		if err := d.Abandon(context.Background(), b, cause); err != nil {
			t.Fatalf("Abandon: %v", err)
		}
	}
	data, manifest, errKey := d.cfg.Keys("s", b.ID, t0)
	if !strings.HasPrefix(errKey, "errors/2026/12/02/07/s-1-2026-12-02-07-30-00-") {
		t.Errorf("error manifest key %q", errKey)
	}
	m, ok := e.object(errKey)
	if !ok {
		t.Fatalf("no error manifest %s (keys %q)", errKey, e.listKeys(""))
	}
	var got Manifest
	if err := json.Unmarshal(m, &got); err != nil {
		t.Fatalf("manifest %s: %v", m, err)
	}
	if want := (Manifest{Entries: []ManifestEntry{{URL: "s3://staging/" + data, Mandatory: true}}}); !slices.Equal(got.Entries, want.Entries) {
		t.Errorf("manifest %+v, want %+v", got, want)
	}
	if obj, ok := e.object(data); !ok || gunzip(t, obj) != "{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"name\":\"it's\"}\n" {
		t.Errorf("data object %s: present %v", data, ok)
	}
	if _, ok := e.object(manifest); ok {
		t.Errorf("Abandon wrote the load manifest %s too", manifest)
	}
	// The operator's backfill: COPY from the error manifest.
	conn, err := pgx.Connect(context.Background(), e.srv.DSN("root", "test"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), d.cfg.CopySQL(d.cfg.URL(errKey)), pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("backfill COPY: %v", err)
	}
	if got := e.rows("SELECT id, name FROM " + e.table("events") + " ORDER BY id"); !slices.Equal(got, []string{"1|a", "2|it's"}) {
		t.Errorf("backfilled rows %q", got)
	}

	// A batch the ledger shows loaded gets no error manifest.
	loaded := batch("s", 5000, `{"id":9}`)
	if err := d.Deliver(context.Background(), loaded); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if err := d.Abandon(context.Background(), loaded, cause); err != nil {
		t.Fatalf("Abandon: %v", err)
	}
	if _, _, k := d.cfg.Keys("s", loaded.ID, t0); len(e.listKeys(k)) != 0 {
		t.Errorf("error manifest %s written for a loaded batch", k)
	}
}

func TestStagingFailure(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.table("events") + " (id int)")
	o := e.opts("events")
	o.Staging.Bucket = "no-such-bucket"
	d := e.dest(o, "s")
	err := d.Deliver(context.Background(), batch("s", 0, `{"id":1}`))
	if err == nil || errorCode(err) != "S3.NoSuchBucket" || pipeline.IsRetryable(err) {
		t.Errorf("Deliver: %v (code %q), want the store's permanent S3.NoSuchBucket", err, errorCode(err))
	}
	if err := d.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "staging bucket") {
		t.Errorf("Ready: %v, want the staging bucket's error", err)
	}
	if n := len(e.srv.Copies()); n != 0 {
		t.Errorf("%d COPY statements after failed staging", n)
	}
}

func TestAuthenticationFailed(t *testing.T) {
	e := newEnv(t)
	srv, err := standin.Start(standin.Config{Upstream: e.dsn, S3Endpoint: e.endpoint, Password: "right-password"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	o := e.opts("events")
	o.DSN = secret.Secret("postgres://root:wrong-password@" + srv.Addr() + "/test?sslmode=disable")
	d := e.dest(o, "s")
	err = d.Deliver(context.Background(), batch("s", 0, `{"id":1}`))
	if !pipeline.IsRetryable(err) || errorCode(err) != "Redshift.AuthenticationFailed" {
		t.Errorf("Deliver: %v, want retryable Redshift.AuthenticationFailed", err)
	}
	rerr := d.Ready(context.Background())
	for _, e := range []error{err, rerr} {
		if e == nil || strings.Contains(e.Error(), "wrong-password") {
			t.Errorf("error %v: want one, without the password", e)
		}
	}
}

func TestDescribe(t *testing.T) {
	o := validOptions()
	o.Table, o.Columns, o.CopyOptions = "analytics.events", []string{"a", "b"}, "TIMEFORMAT 'auto'"
	o.Staging.Prefix = "fh/"
	cfg := mustCompile(t, o)
	d, err := New(context.Background(), cfg, "s", pipeline.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	desc := d.Describe(pipeline.DescribeInput{Stream: "s", RoleARN: "arn:aws:iam::123456789012:role/firehose",
		RetryDurationSeconds: 3600, BufferingSizeMiB: 64, BufferingIntervalSeconds: 60,
		BackupMode: pipeline.BackupFailedDataOnly, Backup: map[string]string{"BucketARN": "arn:aws:s3:::errors"}})
	js, err := json.Marshal(desc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"RedshiftDestinationDescription":{"RoleARN":"arn:aws:iam::123456789012:role/firehose",` +
		`"ClusterJDBCURL":"jdbc:redshift://cluster.example:5439/dev",` +
		`"CopyCommand":{"DataTableName":"analytics.events","DataTableColumns":"a,b","CopyOptions":"FORMAT AS JSON 'auto' GZIP TIMEFORMAT 'auto'"},` +
		`"Username":"loader","RetryOptions":{"DurationInSeconds":3600},` +
		`"S3DestinationDescription":{"RoleARN":"arn:aws:iam::123456789012:role/firehose","BucketARN":"arn:aws:s3:::staging-bucket","Prefix":"fh/",` +
		`"BufferingHints":{"SizeInMBs":64,"IntervalInSeconds":60},"CompressionFormat":"GZIP","EncryptionConfiguration":{"NoEncryptionConfig":"NoEncryption"},` +
		`"CloudWatchLoggingOptions":{"Enabled":false}},"S3BackupMode":"Disabled","S3BackupDescription":{"BucketARN":"arn:aws:s3:::errors"},` +
		`"CloudWatchLoggingOptions":{"Enabled":false}}}`
	if string(js) != want {
		t.Errorf("Describe\n got %s\nwant %s", js, want)
	}
	if strings.Contains(string(js), "s3cr3t") {
		t.Errorf("Describe shows the password")
	}
}

func TestLedgerDroppedIsCreatedAgain(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.table("events") + " (id int)")
	d := e.dest(e.opts("events"), "s")
	if err := d.Deliver(context.Background(), batch("s", 0, `{"id":1}`)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	e.exec("DROP TABLE " + e.table(pgload.DefaultLedgerTable))
	b := batch("s", 1000, `{"id":2}`)
	if err := d.Deliver(context.Background(), b); !pipeline.IsRetryable(err) || errorCode(err) != "Redshift.TableNotFound" {
		t.Fatalf("Deliver without the ledger: %v, want retryable Redshift.TableNotFound", err)
	}
	if err := d.Deliver(context.Background(), b); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := e.rows("SELECT id FROM " + e.table("events") + " ORDER BY id"); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("rows %q", got)
	}
}
