package elasticsearch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/sluice-dev/sluice/destinations/internal/secret"
	"github.com/sluice-dev/sluice/pipeline"
)

// Kind is the destination type and its metrics' destination label.
const Kind = "elasticsearch"

// Destination indexes batches with the bulk API, one request per Deliver.
type Destination struct {
	cfg     Config
	stream  string
	tr      esapi.Transport
	http    *http.Transport
	metrics *streamMetrics
	log     *slog.Logger
	// accessErr is the last authentication or not-found answer for a
	// whole request, reported by Ready until a request succeeds.
	accessErr atomic.Pointer[error]
	closed    atomic.Bool
}

var _ pipeline.Destination = (*Destination)(nil)

// New builds the destination of stream: it reads the secret and TLS files
// and makes the client; it does not contact the cluster (Ready does).
func New(ctx context.Context, cfg *Config, stream string, deps pipeline.Deps) (*Destination, error) {
	if cfg == nil {
		return nil, errors.New("elasticsearch destination: nil Config (use Compile)")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := *cfg
	for key, path := range c.files {
		s, err := secret.ReadFile(key+"_file", path)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch destination %s: %w", stream, err)
		}
		switch key {
		case "password":
			c.password = s
		case "api_key":
			c.apiKey = s
		case "bearer_token":
			c.bearer = s
		}
	}
	ht, err := httpTransport(c.tls, c.gzip)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch destination %s: %w", stream, err)
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch destination %s: %w", stream, err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Destination{cfg: c, stream: stream, http: ht, metrics: m.forStream(stream),
		log: log.With("destination", Kind, "stream", stream)}
	if c.flavor == FlavorOpenSearch {
		// OpenSearch does not send X-Elastic-Product, which the
		// Elasticsearch client requires: use its transport alone.
		urls := make([]*url.URL, len(c.addresses))
		for i, a := range c.addresses {
			if urls[i], err = url.Parse(a); err != nil {
				return nil, fmt.Errorf("elasticsearch destination %s: address %d: %w", stream, i, err)
			}
		}
		opts := []elastictransport.Option{elastictransport.WithURLs(urls...), elastictransport.WithTransport(ht),
			elastictransport.WithDisableRetry()}
		switch {
		case c.apiKey != "":
			opts = append(opts, elastictransport.WithAPIKey(string(c.apiKey)))
		case c.bearer != "":
			opts = append(opts, elastictransport.WithServiceToken(string(c.bearer)))
		case c.username != "":
			opts = append(opts, elastictransport.WithBasicAuth(c.username, string(c.password)))
		}
		if c.gzip {
			opts = append(opts, elastictransport.WithCompression())
		}
		d.tr, err = elastictransport.NewClient(opts...)
	} else {
		d.tr, err = es.NewClient(es.Config{Addresses: c.addresses, Username: c.username, Password: string(c.password),
			APIKey: string(c.apiKey), ServiceToken: string(c.bearer), Transport: ht, DisableRetry: true, CompressRequestBody: c.gzip})
	}
	if err != nil {
		return nil, fmt.Errorf("elasticsearch destination %s: client: %w", stream, err)
	}
	return d, nil
}

// httpTransport is the connections to the cluster: one per batch in
// flight, TLS from the options. Answers come compressed only with
// compression on: a bulk answer is a small fraction of its request, and
// gzipping it costs the cluster CPU per request (VictoriaLogs spent ~10%
// more per document on it).
func httpTransport(o TLSOptions, compress bool) (*http.Transport, error) {
	t := &http.Transport{
		DisableCompression:    !compress,
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          DefaultMaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   DefaultMaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if o.CAFile == "" && o.CertFile == "" {
		return t, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", o.CAFile)
		}
		tc.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	t.TLSClientConfig = tc
	return t, nil
}

// Deliver sends b's records in one bulk request and reads every item of
// the answer. Records that cannot be documents, and items the cluster
// refused for good, come back as permanent failures in a
// *pipeline.PartialError; items it refused for now (429, 5xx,
// es_rejected_execution_exception) as retryable ones, which the runner
// sends again as the next round — never the items that succeeded. A 409
// on a document id of ours is success: the document was created by an
// earlier attempt.
func (d *Destination) Deliver(ctx context.Context, b pipeline.Batch) error {
	if d.closed.Load() {
		return fmt.Errorf("elasticsearch destination %s: %w", d.stream, pipeline.ErrClosed)
	}
	if len(b.Records) == 0 {
		return nil
	}
	var failed []pipeline.RecordError
	docs := make([]doc, 0, len(b.Records))
	names := newIndexNames(d.cfg.index, d.cfg.rotation)
	for i := range b.Records {
		r := &b.Records[i]
		dc := doc{rec: i, index: names.of(r.Arrived)}
		if d.cfg.firehoseIDs {
			dc.id = r.ID
		}
		if err := checkDocument(r.Data); err != nil {
			failed = append(failed, pipeline.RecordError{Index: i, Err: d.itemError(CodeInvalidDocument, err.Error(), dc)})
			d.metrics.failed("invalid_document")
			continue
		}
		docs = append(docs, dc)
	}
	if len(docs) == 0 {
		return &pipeline.PartialError{Failed: failed}
	}
	buf := bodyPool.Get().(*[]byte)
	body, err := d.appendBulk((*buf)[:0], docs, b.Records)
	if err != nil {
		return fmt.Errorf("elasticsearch destination %s: batch %v: %w", d.stream, b.ID, err)
	}
	items, err := d.send(ctx, body, len(docs))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("elasticsearch destination %s: batch %v: %w", d.stream, b.ID, ctx.Err())
		}
		if len(failed) == 0 {
			return d.wrap(b, err)
		}
		// The request failed as a whole: its documents fail alike, the
		// invalid records for good.
		for _, dc := range docs {
			failed = append(failed, pipeline.RecordError{Index: dc.rec, Err: err})
		}
		return &pipeline.PartialError{Failed: failed}
	}
	// A bulk answer comes after the cluster read the whole body, so the
	// transport is done with it: the buffer can serve the next request.
	// After an error it may not be (an early answer, a broken
	// connection), so it is left to the collector.
	*buf = body
	bodyPool.Put(buf)
	d.accessErr.Store(nil)
	for j, it := range items {
		dc := docs[j]
		typ := errorType(it.Error)
		switch {
		case it.Status >= 200 && it.Status < 300:
			d.metrics.indexed("created")
		case it.Status == http.StatusConflict && d.cfg.firehoseIDs && typ == "version_conflict_engine_exception":
			d.metrics.indexed("existed") // created by an earlier attempt
		case itemRetryable(it.Status, typ):
			d.metrics.retried(statusLabel(it.Status))
			failed = append(failed, pipeline.RecordError{Index: dc.rec,
				Err: &pipeline.RetryableError{Err: d.itemError(statusLabel(it.Status), string(it.Error), dc)}})
		default:
			reason := typ
			if reason == "" {
				reason = "status_" + statusLabel(it.Status)
			}
			d.metrics.failed(reason)
			failed = append(failed, pipeline.RecordError{Index: dc.rec, Err: d.itemError(statusLabel(it.Status), string(it.Error), dc)})
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &pipeline.PartialError{Failed: failed}
}

// bodyPool recycles bulk request bodies (a batch's bytes and its action
// lines, megabytes each) between requests.
var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// itemError is a document's failure with Firehose's failed-document fields.
func (d *Destination) itemError(code, msg string, dc doc) *pipeline.CodedError {
	fields := map[string]string{"esDocumentId": dc.id, "esIndexName": dc.index, "esTypeName": d.cfg.typeName}
	if d.cfg.flavor == FlavorOpenSearch {
		fields = map[string]string{"osDocumentId": dc.id, "osIndexName": dc.index}
	}
	if msg == "" {
		msg = "status " + code
	}
	return &pipeline.CodedError{Code: code, OutputType: OutputType, Err: errors.New(msg), Fields: fields}
}

// send posts one bulk request and returns its items, one per document, or
// an error classified for the runner.
func (d *Destination) send(ctx context.Context, body []byte, n int) ([]bulkItemState, error) {
	actx, cancel := context.WithTimeout(ctx, d.cfg.timeout)
	defer cancel()
	start := time.Now()
	req := esapi.BulkRequest{Body: bytes.NewReader(body), Pipeline: d.cfg.pipeline}
	res, err := req.Do(actx, d.tr)
	if err != nil {
		d.metrics.request("error", time.Since(start))
		code := CodeConnectionFailed
		if actx.Err() != nil {
			code = CodeRequestTimeout
		}
		return nil, &pipeline.RetryableError{Err: coded(code, fmt.Errorf("bulk request: %w", err))}
	}
	defer res.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(res.Body, MaxResponseBytes+1))
	d.metrics.request(statusLabel(res.StatusCode), time.Since(start))
	if rerr != nil {
		return nil, &pipeline.RetryableError{Err: coded(CodeConnectionFailed, fmt.Errorf("reading the bulk answer: %w", rerr))}
	}
	if res.StatusCode != http.StatusOK {
		err := requestFailure(res.StatusCode, res.Header, data, time.Now())
		var c *pipeline.CodedError
		if errors.As(err, &c) && (c.Code == CodeAccessDenied || c.Code == CodeResourceNotFound) {
			d.accessErr.Store(&err)
		}
		return nil, err
	}
	if len(data) > MaxResponseBytes {
		return nil, &pipeline.RetryableError{Err: coded(CodeInvalidResponse, fmt.Errorf("a bulk answer over %d bytes", MaxResponseBytes))}
	}
	if items, ok := allCreated(data, n, d.cfg.firehoseIDs); ok {
		return items, nil
	}
	var ans bulkAnswer
	if err := json.Unmarshal(data, &ans); err != nil || ans.Errors == nil || len(ans.Items) != n {
		return nil, &pipeline.RetryableError{Err: coded(CodeInvalidResponse,
			fmt.Errorf("the cluster answered 200 with something that is not the bulk answer for %d documents: %s", n, quote(data)))}
	}
	items := make([]bulkItemState, n)
	for j, it := range ans.Items {
		st := it.Create
		if d.cfg.firehoseIDs {
			if it.Index != nil || it.Update != nil || it.Delete != nil {
				st = nil
			}
		} else {
			st = it.Index
			if it.Create != nil && st == nil {
				st = it.Create // VictoriaLogs answers every action as create
			}
		}
		if st == nil {
			return nil, &pipeline.RetryableError{Err: coded(CodeInvalidResponse, fmt.Errorf("bulk answer item %d does not answer the action sent", j))}
		}
		items[j] = *st
	}
	return items, nil
}

// wrap adds the stream and batch to a whole-request failure.
func (d *Destination) wrap(b pipeline.Batch, err error) error {
	var c *pipeline.CodedError
	if errors.As(err, &c) {
		c.Err = fmt.Errorf("elasticsearch destination %s: batch %v: %w", d.stream, b.ID, c.Err)
		d.log.Debug("bulk request failed", "batch", b.ID.String(), "code", c.Code, "retryable", pipeline.IsRetryable(err))
		return err
	}
	return fmt.Errorf("elasticsearch destination %s: batch %v: %w", d.stream, b.ID, err)
}

// Limits are the bulk request bounds of the options.
func (d *Destination) Limits() pipeline.Limits {
	return pipeline.Limits{MaxRecords: d.cfg.maxDocs, MaxBytes: d.cfg.maxBytes}
}

// Ready asks the cluster for its root (GET /, what clients' ping does),
// and reports the last authentication or not-found answer to a bulk
// request until one succeeds.
func (d *Destination) Ready(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	res, err := esapi.PingRequest{}.Do(ctx, d.tr)
	if err != nil {
		return fmt.Errorf("%s unreachable: %w", d.cfg.flavor, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode >= 500 || res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s answered %d to a ping", d.cfg.flavor, res.StatusCode)
	}
	if e := d.accessErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Close stops deliveries and closes idle connections.
func (d *Destination) Close(context.Context) error {
	d.closed.Store(true)
	d.http.CloseIdleConnections()
	return nil
}

// Format prints the destination without secrets.
func (d *Destination) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "%s destination %s: %v", d.cfg.flavor, d.stream, d.cfg)
}
