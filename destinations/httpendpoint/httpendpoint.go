package httpendpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/pipeline"
)

// Header names of the specification.
const (
	HeaderProtocolVersion  = "X-Amz-Firehose-Protocol-Version"
	HeaderRequestID        = "X-Amz-Firehose-Request-Id"
	HeaderSourceARN        = "X-Amz-Firehose-Source-Arn"
	HeaderAccessKey        = "X-Amz-Firehose-Access-Key"
	HeaderCommonAttributes = "X-Amz-Firehose-Common-Attributes"
	// ProtocolVersion is the value of HeaderProtocolVersion.
	ProtocolVersion = "1.0"
)

// Defaults of the stream's identity when pipeline.Deps leaves them empty.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "000000000000"
)

// maxIdleConns is the idle connections kept to the endpoint: one per batch
// a stream may have in flight (buffer.MaxInflight, max_in_flight's bound).
const maxIdleConns = 64

// readyTimeout bounds Ready when its context has no deadline.
const readyTimeout = 5 * time.Second

// Destination delivers batches to an HTTP endpoint, one POST per Deliver.
type Destination struct {
	cfg       Config
	stream    string
	sourceARN string
	header    http.Header // the headers every request carries
	client    *http.Client
	transport *http.Transport
	log       *slog.Logger
	closed    atomic.Bool
}

var _ pipeline.Destination = (*Destination)(nil)

// New builds the destination of stream from a compiled configuration. It
// reads access_key_file, if any; it does not contact the endpoint (Ready
// does).
func New(ctx context.Context, cfg *Config, stream string, deps pipeline.Deps) (*Destination, error) {
	if cfg == nil {
		return nil, errors.New("http endpoint destination: nil Config (use Compile)")
	}
	if stream == "" {
		return nil, errors.New("http endpoint destination: empty stream name")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("http endpoint destination %s: %w", stream, err)
	}
	c := *cfg
	if c.accessKeyFile != "" {
		k, err := readAccessKey(c.accessKeyFile)
		if err != nil {
			return nil, fmt.Errorf("http endpoint destination %s: %w", stream, err)
		}
		c.accessKey = k
	}
	region, account := deps.Region, deps.AccountID
	if region == "" {
		region = DefaultRegion
	}
	if account == "" {
		account = DefaultAccountID
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Destination{
		cfg:       c,
		stream:    stream,
		sourceARN: fmt.Sprintf("arn:aws:firehose:%s:%s:deliverystream/%s", region, account, stream),
		log:       log.With("destination", "http_endpoint", "stream", stream),
	}
	d.header = http.Header{
		"Content-Type":        {"application/json"},
		HeaderProtocolVersion: {ProtocolVersion},
		HeaderSourceARN:       {d.sourceARN},
		"User-Agent":          {"sluice"},
	}
	if c.gzip {
		d.header["Content-Encoding"] = []string{"gzip"}
	}
	if c.accessKey != "" {
		d.header[HeaderAccessKey] = []string{string(c.accessKey)}
	}
	if c.attrsHeader != "" {
		d.header[HeaderCommonAttributes] = []string{c.attrsHeader}
	}
	d.transport = &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// HTTP/1.1: each batch in flight gets its own connection, rather
		// than sharing one HTTP/2 connection's flow-control window.
		ForceAttemptHTTP2:     false,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The response must not be compressed (the specification), and
		// asking for gzip would hide what the endpoint sent.
		DisableCompression: true,
	}
	d.client = &http.Client{
		Transport: d.transport,
		// Redirects are not followed: a 3xx is a failed attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return d, nil
}

// RequestID is the X-Amz-Firehose-Request-Id (and body requestId) of batch
// id of stream: a UUID derived from the stream and the batch identity the
// way object names are (prefix.ObjectUUID), so it is the same on every
// retry of the batch and when the batch is rebuilt and redelivered after a
// crash, and differs between the parts and rounds of a batch. Endpoints
// deduplicate on it.
func RequestID(stream string, id pipeline.BatchID) string {
	return prefix.ObjectUUID(prefix.ObjectSeed(stream, "http-endpoint-request", id, ""))
}

// Deliver POSTs b's records in one request and classifies the outcome:
// nil only for a 200 whose JSON body carries the request's requestId. See
// the package documentation for the errors.
func (d *Destination) Deliver(ctx context.Context, b pipeline.Batch) error {
	if d.closed.Load() {
		return fmt.Errorf("http endpoint destination %s: %w", d.stream, pipeline.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("http endpoint destination %s: batch %v: %w", d.stream, b.ID, err)
	}
	if len(b.Records) == 0 {
		return nil // Firehose never sends a request without records
	}
	id := RequestID(d.stream, b.ID)
	body, err := buildBody(id, time.Now().UnixMilli(), b.Records, d.cfg.gzip)
	if err != nil {
		return fmt.Errorf("http endpoint destination %s: batch %v: encoding the request: %w", d.stream, b.ID, err)
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, d.cfg.url, body)
	if err != nil {
		_ = body.Close()
		return fmt.Errorf("http endpoint destination %s: %w", d.stream, err)
	}
	req.ContentLength = int64(body.n)
	req.Header = d.header.Clone()
	req.Header[HeaderRequestID] = []string{id}
	resp, err := d.client.Do(req)
	if err != nil {
		return d.fail(ctx, b, id, d.transportError(ctx, actx, err))
	}
	defer resp.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if rerr != nil {
		return d.fail(ctx, b, id, d.transportError(ctx, actx, fmt.Errorf("reading the response: %w", rerr)))
	}
	if err := classify(resp.StatusCode, resp.Header, data, id, time.Now()); err != nil {
		return d.fail(ctx, b, id, err)
	}
	return nil
}

// fail logs a failed attempt and returns err with the stream and batch.
func (d *Destination) fail(ctx context.Context, b pipeline.Batch, id string, err error) error {
	var coded *pipeline.CodedError
	if errors.As(err, &coded) {
		coded.Err = fmt.Errorf("http endpoint destination %s: batch %v (request %s): %w", d.stream, b.ID, id, coded.Err)
		d.log.LogAttrs(ctx, slog.LevelDebug, "delivery attempt failed",
			slog.String("batch", b.ID.String()), slog.String("request_id", id),
			slog.String("code", coded.Code), slog.Bool("retryable", pipeline.IsRetryable(err)))
		return err
	}
	return fmt.Errorf("http endpoint destination %s: batch %v (request %s): %w", d.stream, b.ID, id, err)
}

// Limits are the specification's: at most MaxRecords records and MaxBytes
// record bytes per request, so that the body stays within 64 MiB.
func (d *Destination) Limits() pipeline.Limits {
	return pipeline.Limits{MaxRecords: MaxRecords, MaxBytes: MaxBytes}
}

// Ready opens (and closes) a TCP connection to the endpoint's host and
// port, or to the proxy's when one applies, within ctx's deadline (5 s
// without one).
func (d *Destination) Ready(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readyTimeout)
		defer cancel()
	}
	addr := d.cfg.hostPort
	if req, err := http.NewRequest(http.MethodPost, d.cfg.url, nil); err == nil {
		if proxy, err := d.transport.Proxy(req); err == nil && proxy != nil {
			addr = proxyAddr(proxy) // deliveries go through the proxy: check it
		}
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("http endpoint %s unreachable: %w", addr, err)
	}
	return conn.Close()
}

// proxyAddr is a proxy URL's host:port.
func proxyAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Format prints the destination without its access key.
func (d *Destination) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "http_endpoint destination %s: %v", d.stream, d.cfg)
}

// Close stops deliveries and closes idle connections.
func (d *Destination) Close(context.Context) error {
	d.closed.Store(true)
	d.transport.CloseIdleConnections()
	return nil
}
