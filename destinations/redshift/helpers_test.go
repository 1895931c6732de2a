package redshift

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	standin "github.com/sluice-dev/sluice/deploy/testpeers/redshift"
	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/internal/pgload"
	"github.com/sluice-dev/sluice/destinations/internal/secret"
	"github.com/sluice-dev/sluice/pipeline"
)

const testBucket = "staging"

var t0 = time.Date(2026, 12, 2, 7, 30, 0, 0, time.UTC)

func testMetrics(t *testing.T) *pgload.Metrics {
	t.Helper()
	m, err := pgload.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// env is a test's own schema on the shared PostgreSQL server, behind the
// Redshift stand-in, with an s3rver staging bucket.
type env struct {
	t        *testing.T
	endpoint string
	dsn      string // PostgreSQL's
	srv      *standin.Server
	schema   string
	conn     *pgx.Conn // straight to PostgreSQL
	s3       *s3.Client
	reg      *prometheus.Registry
	logs     *syncBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	endpoint, _ := testpeers.StartS3rver(t, testBucket)
	dsn, schema := testpeers.PostgresSchema(t, "sluice_rs")
	srv, err := standin.Start(standin.Config{Upstream: dsn, S3Endpoint: endpoint, S3Region: "us-east-1"})
	if err != nil {
		t.Fatalf("starting the Redshift stand-in: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &env{
		t: t, endpoint: endpoint, dsn: dsn, srv: srv, schema: schema,
		conn: testpeers.PostgresConn(t, dsn),
		s3: s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(testpeers.S3rverAccessKey, testpeers.S3rverSecretKey, "")}),
		reg:  prometheus.NewRegistry(),
		logs: &syncBuffer{},
	}
}

// opts load into table of the env's schema through the stand-in, staging
// in the s3rver bucket, COPY authorised by an IAM role.
func (e *env) opts(table string) Options {
	o := DefaultOptions()
	o.DSN = secret.Secret(e.srv.DSN("root", "test"))
	o.Table = e.schema + "." + table
	o.IAMRole = testRole
	o.Staging.Bucket = testBucket
	o.Staging.Endpoint = e.endpoint
	o.Staging.Region = "us-east-1"
	o.Staging.ForcePathStyle = true
	o.Staging.AccessKeyID, o.Staging.SecretAccessKey = testpeers.S3rverAccessKey, testpeers.S3rverSecretKey
	o.Staging.MaxAttempts = 1
	return o
}

// dest compiles o and builds the destination of stream, closed at the end.
func (e *env) dest(o Options, stream string) *Destination {
	e.t.Helper()
	cfg, err := Compile(o)
	if err != nil {
		e.t.Fatalf("Compile: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(context.Background(), cfg, stream, pipeline.Deps{Registry: e.reg, Logger: log})
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

// table is the qualified name of table in the env's schema.
func (e *env) table(name string) string { return pgx.Identifier{e.schema, name}.Sanitize() }

// rows runs a query, each row's columns rendered and joined by "|"
// (NULL for NULL).
func (e *env) rows(sql string, args ...any) []string {
	e.t.Helper()
	return testpeers.PostgresRows(e.t, e.conn, sql, args...)
}

// object reads a staged object; ok is false when there is none.
func (e *env) object(key string) (data []byte, ok bool) {
	e.t.Helper()
	out, err := e.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
	if err != nil {
		var nsk interface{ ErrorCode() string }
		if errors.As(err, &nsk) && nsk.ErrorCode() == "NoSuchKey" {
			return nil, false
		}
		e.t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	data, err = io.ReadAll(out.Body)
	if err != nil {
		e.t.Fatalf("read %s: %v", key, err)
	}
	return data, true
}

// gunzip decompresses a staged data object.
func gunzip(t *testing.T, data []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return string(out)
}

// listKeys lists the bucket's keys under prefix.
func (e *env) listKeys(prefix string) []string {
	e.t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			e.t.Fatalf("list: %v", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// batch builds a batch of stream from datas, records one millisecond
// apart from t0, positions 100 bytes apart from first.
func batch(stream string, first pipeline.Position, datas ...string) pipeline.Batch {
	b := pipeline.Batch{Stream: stream, ID: pipeline.BatchID{First: first}}
	pos := first
	for i, d := range datas {
		b.Records = append(b.Records, pipeline.Record{ID: fmt.Sprintf("%s-%d", stream, pos), Data: []byte(d),
			Arrived: t0.Add(time.Duration(i) * time.Millisecond)})
		b.Bytes += len(d)
		pos += 100
	}
	b.ID.End = pos
	return b
}

func errorCode(err error) string {
	var c pipeline.Coder
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for concurrent writes (the logs).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e *env) metric(name string, labels map[string]string) float64 {
	e.t.Helper()
	return destinationtest.Counter(e.t, e.reg, name, labels)
}
