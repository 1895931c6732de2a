package elasticsearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/deploy/testpeers/esbulk"
	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/pipeline"
)

var t0 = time.Date(2016, 2, 25, 13, 0, 0, 0, time.UTC)

type env struct {
	t   *testing.T
	srv *esbulk.Server
	reg *prometheus.Registry
}

func newEnv(t *testing.T, cfg esbulk.Config) *env {
	t.Helper()
	srv, err := esbulk.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &env{t: t, srv: srv, reg: prometheus.NewRegistry()}
}

func (e *env) opts() Options {
	o := DefaultOptions()
	o.Addresses = []string{e.srv.URL()}
	o.Index = "logs"
	return o
}

func (e *env) dest(o Options) *Destination {
	e.t.Helper()
	cfg, err := Compile(o)
	if err != nil {
		e.t.Fatalf("Compile: %v", err)
	}
	d, err := New(context.Background(), cfg, "s", pipeline.Deps{Registry: e.reg})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

func (e *env) counter(name string, labels map[string]string) float64 {
	e.t.Helper()
	return destinationtest.Counter(e.t, e.reg, name, labels)
}

func docs(n int, arrived time.Time) pipeline.Batch {
	datas := make([][]byte, n)
	for i := range datas {
		datas[i] = fmt.Appendf(nil, `{"n":%d,"msg":"record %d"}`, i, i)
	}
	return destinationtest.NewBatch("s", 0, arrived, datas...)
}

func deliver(t *testing.T, d *Destination, b pipeline.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Deliver(ctx, b)
}

// failures splits a Deliver result into the indices failing for good and
// for now.
func failures(t *testing.T, err error) (permanent, retryable []int, errs map[int]error) {
	t.Helper()
	errs = map[int]error{}
	if err == nil {
		return nil, nil, errs
	}
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Deliver = %v, want nil or a PartialError", err)
	}
	for _, f := range pe.Failed {
		errs[f.Index] = f.Err
		if pipeline.IsRetryable(f.Err) {
			retryable = append(retryable, f.Index)
		} else {
			permanent = append(permanent, f.Index)
		}
	}
	slices.Sort(permanent)
	slices.Sort(retryable)
	return permanent, retryable, errs
}

// TestDocumentsIndexedAsSent: each record is a document of its rotated
// index, its id the record's ID, its source the record's bytes.
func TestDocumentsIndexedAsSent(t *testing.T) {
	e := newEnv(t, esbulk.Config{})
	o := e.opts()
	o.IndexRotation = OneHour
	d := e.dest(o)
	b := docs(3, t0)
	b.Records[2].Arrived = t0.Add(time.Hour)
	if err := deliver(t, d, b); err != nil {
		t.Fatal(err)
	}
	first, second := e.srv.Docs("logs-2016-02-25-13"), e.srv.Docs("logs-2016-02-25-14")
	if len(first) != 2 || len(second) != 1 {
		t.Fatalf("indices %v: %d and %d documents", e.srv.Indices(), len(first), len(second))
	}
	for i, r := range b.Records {
		idx := first
		if i == 2 {
			idx = second
		}
		if !bytes.Equal(idx[r.ID], r.Data) {
			t.Errorf("document %s = %q, want %q", r.ID, idx[r.ID], r.Data)
		}
	}
	if got := e.counter(MetricDocuments, map[string]string{"result": "created"}); got != 3 {
		t.Errorf("created = %v", got)
	}
}

// TestTwoPermanentFailuresIn500: 498 indexed, 2 refused for good with
// Firehose's failed-document fields; none of them retryable.
func TestTwoPermanentFailuresIn500(t *testing.T) {
	e := newEnv(t, esbulk.Config{})
	d := e.dest(e.opts())
	b := docs(500, t0)
	bad := map[string]bool{b.Records[17].ID: true, b.Records[333].ID: true}
	e.srv.FailItems(func(index, id string, _ []byte, _ int) *esbulk.ItemError {
		if bad[id] {
			return esbulk.MapperParsing("failed to parse field [n] of type [long]")
		}
		return nil
	})
	perm, retry, errs := failures(t, deliver(t, d, b))
	if !slices.Equal(perm, []int{17, 333}) || len(retry) != 0 {
		t.Fatalf("permanent %v, retryable %v", perm, retry)
	}
	for _, i := range perm {
		var c *pipeline.CodedError
		if !errors.As(errs[i], &c) || c.Code != "400" || c.OutputType != OutputType ||
			c.Fields["esDocumentId"] != b.Records[i].ID || c.Fields["esIndexName"] != "logs-2016-02-25" ||
			!strings.Contains(c.Err.Error(), "mapper_parsing_exception") {
			t.Errorf("record %d: %+v", i, c)
		}
	}
	if n := e.srv.Count(); n != 498 {
		t.Errorf("%d documents indexed, want 498", n)
	}
	if got := e.counter(MetricItemFailures, map[string]string{"reason": "mapper_parsing_exception"}); got != 2 {
		t.Errorf("failures = %v", got)
	}
}

// TestItem429sRetriedAloneExactlyOnce: 10% of documents refused with 429
// for two rounds; sending again only what failed for now (as the runner
// does) indexes every document exactly once and never resends one that
// succeeded.
func TestItem429sRetriedAloneExactlyOnce(t *testing.T) {
	e := newEnv(t, esbulk.Config{})
	d := e.dest(e.opts())
	b := docs(500, t0)
	busy := map[string]bool{}
	for i := 0; i < 500; i += 10 {
		busy[b.Records[i].ID] = true
	}
	e.srv.FailItems(func(_, id string, _ []byte, attempt int) *esbulk.ItemError {
		if busy[id] && attempt <= 2 {
			return esbulk.RejectedExecution()
		}
		return nil
	})
	pending := b
	for round := 0; ; round++ {
		if round > 5 {
			t.Fatal("documents still failing after 5 rounds")
		}
		perm, retry, _ := failures(t, deliver(t, d, pending))
		if len(perm) != 0 {
			t.Fatalf("round %d: %v refused for good", round, perm)
		}
		if len(retry) == 0 {
			break
		}
		if len(retry) != 50 {
			t.Fatalf("round %d: %d retryable, want the 50 busy ones", round, len(retry))
		}
		next := pending
		next.Records = nil
		for _, i := range retry {
			next.Records = append(next.Records, pending.Records[i])
		}
		next.ID.Round++
		pending = next
	}
	if n := e.srv.Count(); n != 500 {
		t.Fatalf("%d documents, want 500", n)
	}
	for _, r := range b.Records {
		want := 1
		if busy[r.ID] {
			want = 3
		}
		if w := e.srv.Writes("logs-2016-02-25", r.ID); w != 1 {
			t.Fatalf("document %s written %d times", r.ID, w)
		}
		if a := e.srv.Attempts("logs-2016-02-25", r.ID); a != want {
			t.Fatalf("document %s sent %d times, want %d", r.ID, a, want)
		}
	}
	if got := e.counter(MetricItemRetries, map[string]string{"status": "429"}); got != 100 {
		t.Errorf("retries = %v, want 100", got)
	}
}

// TestRedeliveryIsAConflictAndSuccess: the same batch delivered again
// (after a crash) gets 409 for every document: success, written once.
func TestRedeliveryIsAConflictAndSuccess(t *testing.T) {
	e := newEnv(t, esbulk.Config{})
	d := e.dest(e.opts())
	b := docs(20, t0)
	for range 2 {
		if err := deliver(t, d, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range b.Records {
		if w := e.srv.Writes("logs-2016-02-25", r.ID); w != 1 {
			t.Fatalf("document %s written %d times", r.ID, w)
		}
	}
	if got := e.counter(MetricDocuments, map[string]string{"result": "existed"}); got != 20 {
		t.Errorf("existed = %v, want 20", got)
	}
}

// TestWholeRequestFailures: a 429 with Retry-After, a 503, a connection
// cut after the cluster stored the documents, an answer that is not a
// bulk answer: each retryable as a whole; the cut one's retry conflicts
// (the documents are there) and succeeds.
func TestWholeRequestFailures(t *testing.T) {
	e := newEnv(t, esbulk.Config{})
	d := e.dest(e.opts())
	b := docs(10, t0)
	check := func(what, code string, after time.Duration) {
		t.Helper()
		err := deliver(t, d, b)
		var c pipeline.Coder
		if !pipeline.IsRetryable(err) || !errors.As(err, &c) || c.ErrorCode() != code || pipeline.RetryAfter(err) != after {
			t.Fatalf("%s: %v (after %v), want retryable %s after %v", what, err, pipeline.RetryAfter(err), code, after)
		}
	}
	e.srv.FailRequests(1, 429, "", "7")
	check("429", CodeTooManyRequests, 7*time.Second)
	e.srv.FailRequests(1, 503, "", "")
	check("503", CodeServerError, 0)
	e.srv.NonBulkAnswer(1, esbulk.HTMLBody)
	check("non-bulk", CodeInvalidResponse, 0)
	if e.srv.Count() != 0 {
		t.Fatal("documents stored by failed requests")
	}
	e.srv.DropConnection(1, esbulk.DropAfterProcessing)
	check("cut", CodeConnectionFailed, 0)
	if e.srv.Count() != 10 {
		t.Fatalf("%d documents after the cut request, want 10 (stored before the cut)", e.srv.Count())
	}
	if err := deliver(t, d, b); err != nil {
		t.Fatalf("retry after the cut: %v", err)
	}
	for _, r := range b.Records {
		if w := e.srv.Writes("logs-2016-02-25", r.ID); w != 1 {
			t.Fatalf("document %s written %d times", r.ID, w)
		}
	}
}

// TestAccessDeniedIsRetriedAndReported: a 401 for the whole request is
// retryable, and Ready says so until a request succeeds.
func TestAccessDeniedIsRetriedAndReported(t *testing.T) {
	e := newEnv(t, esbulk.Config{})
	d := e.dest(e.opts())
	if err := d.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	e.srv.FailRequests(1, 401, "", "")
	if err := deliver(t, d, docs(1, t0)); !pipeline.IsRetryable(err) {
		t.Fatalf("401: %v", err)
	}
	if err := d.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Ready after a 401 = %v", err)
	}
	if err := deliver(t, d, docs(1, t0)); err != nil {
		t.Fatal(err)
	}
	if err := d.Ready(context.Background()); err != nil {
		t.Errorf("Ready after a success: %v", err)
	}
}

// TestInvalidDocumentsNeverSent: records that are not single-line UTF-8
// JSON objects fail for good and are not sent; the others are indexed.
func TestInvalidDocumentsNeverSent(t *testing.T) {
	e := newEnv(t, esbulk.Config{})
	d := e.dest(e.opts())
	b := destinationtest.NewBatch("s", 0, t0, []byte(`{"ok":1}`), []byte("{\n\"a\":1}"), []byte("not json"),
		[]byte(`[1,2]`), []byte{'"', 0xff, '"'}, []byte(""), []byte(`{"ok":2}`))
	perm, retry, errs := failures(t, deliver(t, d, b))
	if !slices.Equal(perm, []int{1, 2, 3, 4, 5}) || len(retry) != 0 {
		t.Fatalf("permanent %v retryable %v", perm, retry)
	}
	var c pipeline.Coder
	if !errors.As(errs[2], &c) || c.ErrorCode() != CodeInvalidDocument {
		t.Errorf("code %v", errs[2])
	}
	if n := e.srv.Count(); n != 2 {
		t.Errorf("%d documents, want 2", n)
	}
	for _, rq := range e.srv.Requests() {
		if rq.Items != 2 {
			t.Errorf("a bulk request with %d items: invalid records were sent", rq.Items)
		}
	}
}

// TestNoDocumentIDIsAtLeastOnce: without ids the cluster assigns them and
// a second delivery indexes again.
func TestNoDocumentIDIsAtLeastOnce(t *testing.T) {
	e := newEnv(t, esbulk.Config{})
	o := e.opts()
	o.DocumentID = DocumentIDNone
	d := e.dest(o)
	b := docs(5, t0)
	for range 2 {
		if err := deliver(t, d, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.srv.Count(); n != 10 {
		t.Errorf("%d documents, want 10 (at least once)", n)
	}
}

// TestOpenSearchFlavor: no product check, os* fields in failed documents.
func TestOpenSearchFlavor(t *testing.T) {
	e := newEnv(t, esbulk.Config{OpenSearch: true})
	o := e.opts()
	o.Flavor = FlavorOpenSearch
	d := e.dest(o)
	if err := d.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	b := docs(3, t0)
	e.srv.FailItems(func(_, id string, _ []byte, _ int) *esbulk.ItemError {
		if id == b.Records[1].ID {
			return esbulk.MapperParsing("bad")
		}
		return nil
	})
	perm, _, errs := failures(t, deliver(t, d, b))
	var c *pipeline.CodedError
	if !slices.Equal(perm, []int{1}) || !errors.As(errs[1], &c) || c.Fields["osDocumentId"] != b.Records[1].ID || c.Fields["osIndexName"] != "logs-2016-02-25" {
		t.Fatalf("permanent %v: %+v", perm, c)
	}
	if _, es := c.Fields["esDocumentId"]; es {
		t.Error("es* fields with flavor opensearch")
	}
	if n := e.srv.Count(); n != 2 {
		t.Errorf("%d documents, want 2", n)
	}
	// The Elasticsearch flavor refuses a cluster without the product header.
	es := e.dest(e.opts())
	if err := deliver(t, es, docs(1, t0.Add(time.Hour))); err == nil {
		t.Error("the elasticsearch flavor accepted a cluster that is not Elasticsearch")
	}
}

// TestSecretsNeverShown: password, API key and token appear in no error,
// log or printed value.
func TestSecretsNeverShown(t *testing.T) {
	e := newEnv(t, esbulk.Config{})
	var logs bytes.Buffer
	for _, o := range []Options{
		func() Options { o := e.opts(); o.Username = "u"; o.Password = "pw-SECRET-1"; return o }(),
		func() Options { o := e.opts(); o.APIKey = "key-SECRET-2"; return o }(),
		func() Options { o := e.opts(); o.BearerToken = "tok-SECRET-3"; return o }(),
	} {
		cfg, err := Compile(o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(context.Background(), cfg, "s", pipeline.Deps{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		e.srv.FailRequests(1, 401, "", "")
		err = deliver(t, d, docs(1, t0))
		rerr := d.Ready(context.Background())
		out := fmt.Sprintf("%v %v %v %+v %v %s", err, rerr, cfg, d, cfg.LogValue(), logs.String())
		if strings.Contains(out, "SECRET") {
			t.Errorf("a secret is shown: %s", out)
		}
		_ = d.Close(context.Background())
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		keys []string
	}{
		{"nothing", func(o *Options) { o.Addresses = nil; o.Index = "" }, []string{"addresses", "index"}},
		{"bad address", func(o *Options) { o.Addresses = []string{"ftp://x", "http://u:p@h"} }, []string{"addresses[0]", "addresses[1]"}},
		{"bad index", func(o *Options) { o.Index = "Logs" }, []string{"index"}},
		{"long index", func(o *Options) { o.Index = strings.Repeat("x", 81) }, []string{"index"}},
		{"rotation", func(o *Options) { o.IndexRotation = "OneYear" }, []string{"index_rotation"}},
		{"document id", func(o *Options) { o.DocumentID = "RANDOM" }, []string{"document_id"}},
		{"flavor", func(o *Options) { o.Flavor = "solr" }, []string{"flavor"}},
		{"two auths", func(o *Options) { o.APIKey = "k"; o.BearerToken = "t" }, []string{"api_key"}},
		{"password alone", func(o *Options) { o.Password = "p" }, []string{"username"}},
		{"limits", func(o *Options) { o.MaxBulkDocuments = 0; o.MaxBulkBytes = 1 }, []string{"max_bulk_bytes", "max_bulk_documents"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.Addresses = []string{"http://127.0.0.1:9200"}
			o.Index = "logs"
			tc.mod(&o)
			_, err := Compile(o)
			var got []string
			for _, e := range flatten(err) {
				var oe *pipeline.OptionError
				if errors.As(e, &oe) {
					got = append(got, oe.Key)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.keys) {
				t.Errorf("error keys %q, want %q (%v)", got, tc.keys, err)
			}
		})
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// BenchmarkDeliver measures one bulk delivery of 1,000 1 KiB documents to
// the in-process _bulk server (the destination's encoding and answer
// parsing; the server's own work is included).
func BenchmarkDeliver(b *testing.B) {
	srv, err := esbulk.Start(esbulk.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	o := DefaultOptions()
	o.Addresses = []string{srv.URL()}
	o.Index = "bench"
	o.DocumentID = DocumentIDNone // no conflicts piling up across iterations
	cfg, err := Compile(o)
	if err != nil {
		b.Fatal(err)
	}
	d, err := New(context.Background(), cfg, "s", pipeline.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	datas := make([][]byte, 1000)
	for i := range datas {
		datas[i] = fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, pad)
	}
	batch := destinationtest.NewBatch("s", 0, t0, datas...)
	b.SetBytes(int64(batch.Bytes))
	b.ResetTimer()
	for range b.N {
		if err := d.Deliver(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
