// Package firehoseapi serves the Amazon Data Firehose data-plane API (AWS
// JSON 1.1: POST / with X-Amz-Target: Firehose_20150804.<Operation>), so that
// unmodified AWS SDKs and the AWS CLI can put records into Sluice streams by
// changing only their endpoint.
//
// PutRecord and PutRecordBatch are decoded by a small, strict, reflection-free
// scanner (decode.go) that accepts exactly what encoding/json accepts, and
// answered from pooled buffers. ListDeliveryStreams, DescribeDeliveryStream
// and ListTagsForDeliveryStream are answered from the configuration.
// Mutating control-plane calls are rejected with a non-retryable
// InvalidArgumentException: streams are defined in the configuration file.
//
// Requests must carry an AWS JSON Content-Type
// (application/x-amz-json-1.1, as the SDKs and the CLI send, or
// application/x-amz-json-1.0 or application/json): any other is answered
// 404 UnknownOperationException without the body being read. A body that
// is valid JSON but not an object (null, [], 42, "x") is a
// SerializationException (400), as the service answers.
//
// Limits follow the real service: at most 500 records and 4 MiB (4,194,304
// raw bytes) per PutRecordBatch, at most 1,024,000 raw bytes per record,
// 0-byte records allowed. Request bodies are read up to MaxBodyBytes
// (6 MiB, enough for 4 MiB of base64 plus JSON overhead); a larger body is
// answered without being read with HTTP 400 InvalidArgumentException
// ("Records size exceeds 4 MB limit" for PutRecordBatch, a body-size message
// otherwise) and the connection is closed.
//
// Throttling: when the Appender returns pipeline.ErrFull, PutRecordBatch
// answers 200 with every entry {"ErrorCode":"ServiceUnavailableException",
// "ErrorMessage":"Slow down."} and FailedPutCount, PutRecord answers 503
// ServiceUnavailableException "Slow down."; other append errors become
// per-entry InternalFailure / HTTP 500. A rejected call stores nothing.
// Put calls in progress are bounded by Config.MaxInFlightBytes (request
// bytes); further calls wait, so memory does not grow with client count.
//
// Metrics (NewMetrics): sluice_incoming_{bytes,records,put_requests}_total
// and sluice_throttled_records_total by stream (Firehose's IncomingBytes,
// IncomingRecords, IncomingPutRequests, ThrottledRecords: successful calls
// only), sluice_api_requests_total{operation,code} (code is the HTTP
// status; operation "Unknown" for anything not in the Firehose API) and
// sluice_api_request_duration_seconds{operation}.
//
// Error answers carry their code in the X-Amzn-ErrorType header too, as
// AWS JSON services send it. Config.Audit hears every call once it is
// answered (audit.go: Call), for the audit log (package ingest/audit, which
// the assembler adapts: neither package imports the other).
//
// SigV4 Authorization headers are accepted without verification, as are
// unsigned requests.
package firehoseapi

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// Limits of the data-plane operations.
const (
	maxBatchRecords = 500
	maxRecordBytes  = 1_024_000
	maxBatchBytes   = 4 << 20
	// MaxBodyBytes is the largest request body read: 4 MiB of data in
	// base64 (5,592,408 bytes) plus JSON framing and whitespace.
	MaxBodyBytes = 6 << 20
	// maxControlBodyBytes bounds control-plane request bodies.
	maxControlBodyBytes = 1 << 20
)

// Stream types.
const (
	TypeDirectPut             = "DirectPut"
	TypeKinesisStreamAsSource = "KinesisStreamAsSource"
)

const targetPrefix = "Firehose_20150804."

// StreamInfo describes one configured delivery stream, as the API reports it.
type StreamInfo struct {
	Name string
	// Type is TypeDirectPut (default when empty) or TypeKinesisStreamAsSource.
	Type string
	// Created is reported as CreateTimestamp (default: handler creation).
	Created time.Time
	// VersionID is the configuration revision (default "1").
	VersionID string
	// Tags are listed ordered by key.
	Tags map[string]string
	// KinesisStreamARN is a KinesisStreamAsSource stream's source, and
	// KinesisDeliveryStart when it began reading it (reported as
	// DeliveryStartTimestamp; zero: not reported).
	KinesisStreamARN     string
	KinesisDeliveryStart time.Time
	// RoleARN is the stream's IAM role, reported in a Kinesis source's
	// description (default arn:aws:iam::<account>:role/sluice).
	RoleARN string
	// Quota is the stream's Direct PUT quota (zero: none).
	Quota Quota
	// Encryption, when set, is the stream's encryption at rest, reported
	// as DeliveryStreamEncryptionConfiguration with status ENABLED (nil:
	// DISABLED).
	Encryption *Encryption
	// Destination is the destination's description
	// (pipeline.Destination.Describe): DescribeDeliveryStream reports its
	// members verbatim, after "DestinationId": "destinationId-000000000001".
	// It is encoded once, by NewHandler; nil reports only the id.
	Destination pipeline.Description
}

// Encryption is how a stream's data is encrypted at rest, in Firehose's
// terms: KeyType AWS_OWNED_CMK or CUSTOMER_MANAGED_CMK, and the key's ARN
// for the latter.
type Encryption struct {
	KeyType string
	KeyARN  string
}

// Config configures a Handler.
type Config struct {
	Region    string // default "us-east-1"
	AccountID string // default "000000000000"
	Streams   []StreamInfo
	// Appender stores accepted records durably (sets their IDs) or returns
	// pipeline.ErrFull. It must not retain recs or their Data after
	// returning: both are reused for the next request.
	Appender pipeline.Appender
	Logger   *slog.Logger // default: discard
	// Metrics is shared by every handler of the process (NewMetrics). When
	// nil, the handler uses unregistered metrics.
	Metrics *Metrics
	// MaxInFlightBytes bounds the request body bytes of the
	// PutRecord/PutRecordBatch calls in progress (a call weighs its
	// Content-Length, or MaxBodyBytes when unknown); the memory they hold is
	// about 1.75 times that (body plus decoded data). Further calls wait.
	// Default 64 MiB.
	MaxInFlightBytes int64
	// Verify, when set, authenticates every request once its body is
	// read, given the body's hex SHA-256 (package sigv4's
	// Verifier.VerifyPayload): it returns the access key id that signed
	// it, or the *sigv4.Error to answer. A put body is hashed while it is
	// decoded, so verification adds little latency.
	Verify func(r *http.Request, payloadSHA256 string) (key string, err error)
	// Allow, when set, says whether the access key may do action (an IAM
	// action name such as "firehose:PutRecordBatch") on stream; a call it
	// refuses gets AccessDeniedException, and ListDeliveryStreams lists
	// only the streams it allows "firehose:ListDeliveryStreams" on.
	Allow func(key, action, stream string) bool
	// BodyTimeout bounds the time a request's body may take to arrive
	// (default DefaultBodyTimeout): a client that stalls is answered
	// 408 RequestTimeoutException and its connection closed, so a slow
	// body cannot hold its share of MaxInFlightBytes for long.
	BodyTimeout time.Duration
	// Audit, when set, is given every call once it is answered (the audit
	// log): it must not block for long, and must not retain the Call's
	// memory beyond its fields (all values).
	Audit func(Call)
}

// DefaultBodyTimeout is Config.BodyTimeout's default: a 6 MiB batch at
// 100 KiB/s.
const DefaultBodyTimeout = time.Minute

// Handler serves the Firehose API. It is safe for concurrent use. Update
// replaces its streams and authentication while it serves: each request
// is answered wholly under the configuration it started with.
type Handler struct {
	cur atomic.Pointer[handler]
}

// handler is one configuration of the Handler. What outlives a
// configuration (the in-flight budget, the decoder slots, the pooled
// request memory, the metrics, unchanged quotas' token buckets) is shared
// by every generation.
type handler struct {
	region, account string
	app             pipeline.Appender
	log             *slog.Logger
	metrics         *Metrics
	streams         map[string]*stream
	names           []string // sorted
	pool            *sync.Pool
	limiter         *byteLimiter
	decoders        chan struct{}
	verify          func(*http.Request, string) (string, error)
	bodyTimeout     time.Duration
	allow           func(key, action, stream string) bool
	audit           func(Call)
}

type stream struct {
	info  StreamInfo
	quota *limiter // nil without a quota
	arn   string
	dest  destinationDescription // encoded info.Destination
	m     streamMetrics
}

// reqState is the pooled per-request memory of a put call.
type reqState struct {
	body []byte
	req  putRequest
	out  []byte
	key  string // the access key that signed the request ("" without auth)
	// For the audit log: whether req holds this request's decoded body,
	// which operation, and the failed count answered.
	decoded, batch bool
	failed         int
}

// NewHandler validates cfg and returns a handler.
func NewHandler(cfg Config) (*Handler, error) {
	c, err := newHandler(cfg, nil)
	if err != nil {
		return nil, err
	}
	h := &Handler{}
	h.cur.Store(c)
	return h, nil
}

// Update validates cfg and makes it the configuration of the requests
// that start from now on; requests in progress finish under the previous
// one. The in-flight budget (MaxInFlightBytes), the metrics and the quota
// of every stream whose quota is unchanged carry over; Appender, Logger
// and Metrics may change, MaxInFlightBytes may not. On error nothing
// changes.
func (h *Handler) Update(cfg Config) error {
	c, err := newHandler(cfg, h.cur.Load())
	if err != nil {
		return err
	}
	h.cur.Store(c)
	return nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.cur.Load().ServeHTTP(w, r)
}

// newHandler builds a configuration; prev, when not nil, is the one it
// replaces.
func newHandler(cfg Config, prev *handler) (*handler, error) {
	if cfg.Appender == nil {
		return nil, errors.New("firehoseapi: Config.Appender is required")
	}
	h := &handler{
		region:      cmp(cfg.Region, "us-east-1"),
		account:     cmp(cfg.AccountID, "000000000000"),
		app:         cfg.Appender,
		log:         cfg.Logger,
		metrics:     cfg.Metrics,
		streams:     make(map[string]*stream, len(cfg.Streams)),
		verify:      cfg.Verify,
		allow:       cfg.Allow,
		audit:       cfg.Audit,
		bodyTimeout: cfg.BodyTimeout,
	}
	if h.bodyTimeout <= 0 {
		h.bodyTimeout = DefaultBodyTimeout
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.metrics == nil && prev != nil {
		h.metrics = prev.metrics
	}
	if h.metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		h.metrics = m
	}
	if len(h.account) != 12 || strings.Trim(h.account, "0123456789") != "" {
		return nil, fmt.Errorf("firehoseapi: account ID %q is not 12 digits", h.account)
	}
	now := time.Now()
	for _, si := range cfg.Streams {
		if !validStreamName(si.Name) || len(si.Name) > 64 {
			return nil, fmt.Errorf("firehoseapi: stream name %q must be 1 to 64 characters of [a-zA-Z0-9_.-]", si.Name)
		}
		if _, dup := h.streams[si.Name]; dup {
			return nil, fmt.Errorf("firehoseapi: stream %q defined twice", si.Name)
		}
		si.Type = cmp(si.Type, TypeDirectPut)
		if si.Type != TypeDirectPut && si.Type != TypeKinesisStreamAsSource {
			return nil, fmt.Errorf("firehoseapi: stream %q: type %q is not %s or %s", si.Name, si.Type, TypeDirectPut, TypeKinesisStreamAsSource)
		}
		if si.Created.IsZero() {
			si.Created = now
		}
		si.VersionID = cmp(si.VersionID, "1")
		dest, err := encodeDestination(si.Destination)
		if err != nil {
			return nil, fmt.Errorf("firehoseapi: stream %q: %w", si.Name, err)
		}
		si.Destination = nil // kept encoded only
		var q *limiter
		if !si.Quota.isZero() {
			if old := prev.stream(si.Name); old != nil && old.quota != nil && old.info.Quota == si.Quota {
				q = old.quota // its tokens carry over
			} else {
				q = newLimiter(si.Quota)
			}
		}
		h.streams[si.Name] = &stream{
			quota: q,
			info:  si,
			arn:   "arn:aws:firehose:" + h.region + ":" + h.account + ":deliverystream/" + si.Name,
			dest:  dest,
			m:     h.metrics.forStream(si.Name),
		}
		h.names = append(h.names, si.Name)
	}
	slices.Sort(h.names)
	if prev != nil {
		h.limiter, h.decoders, h.pool = prev.limiter, prev.decoders, prev.pool
		return h, nil
	}
	limit := cfg.MaxInFlightBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	h.limiter = newByteLimiter(limit)
	h.decoders = make(chan struct{}, decodersFor(runtime.GOMAXPROCS(0)))
	h.pool = &sync.Pool{New: func() any { return &reqState{} }}
	return h, nil
}

// stream returns the named stream of a configuration that may be nil.
func (h *handler) stream(name string) *stream {
	if h == nil {
		return nil
	}
	return h.streams[name]
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// knownOperation reports whether op is an operation of the Firehose API
// (and so a valid value of the metrics' operation label).
func knownOperation(op string) bool {
	switch op {
	case "PutRecord", "PutRecordBatch", "ListDeliveryStreams", "DescribeDeliveryStream",
		"ListTagsForDeliveryStream", "CreateDeliveryStream", "DeleteDeliveryStream",
		"UpdateDestination", "TagDeliveryStream", "UntagDeliveryStream",
		"StartDeliveryStreamEncryption", "StopDeliveryStreamEncryption":
		return true
	}
	return false
}

// ServeHTTP answers one request under this configuration.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	hdr := w.Header()
	id := newRequestID()
	hdr.Set("X-Amzn-RequestId", id)
	hdr.Set("Content-Type", "application/x-amz-json-1.1")

	op, prefixed := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	label := op
	if !prefixed || !knownOperation(op) {
		label = "Unknown"
	}
	c := h.newCall(r, start, id, label)
	var status int
	switch {
	case r.Method != http.MethodPost || label == "Unknown":
		status = h.writeError(w, newError(http.StatusBadRequest, errUnknownOperation,
			"Unknown operation: expected POST with X-Amz-Target: "+targetPrefix+"<Operation>"))
	case !jsonContentType(r.Header.Get("Content-Type")):
		status = h.writeError(w, unsupportedContentType(r.Header.Get("Content-Type")))
	case op == "PutRecordBatch":
		status = h.handlePut(w, r, true, c)
	case op == "PutRecord":
		status = h.handlePut(w, r, false, c)
	case op == "ListDeliveryStreams":
		status = h.handleControl(w, r, h.listDeliveryStreams, c)
	case op == "DescribeDeliveryStream":
		status = h.handleControl(w, r, h.describeDeliveryStream, c)
	case op == "ListTagsForDeliveryStream":
		status = h.handleControl(w, r, h.listTags, c)
	default:
		status = h.writeError(w, newError(http.StatusBadRequest, errInvalidArgument, fmt.Sprintf(msgStaticStreams, op)))
	}
	h.metrics.apiRequests.WithLabelValues(label, strconv.Itoa(status)).Inc()
	h.metrics.apiDuration.WithLabelValues(label).Observe(time.Since(start).Seconds())
	h.finishCall(w, c, status, start)
}

// jsonContentType reports whether ct is a media type AWS JSON services
// take: application/x-amz-json-1.1 (what the AWS CLI, the Go SDK v2 and
// the JavaScript SDK v3 send for Firehose), application/x-amz-json-1.0
// and application/json; parameters (charset) and case are ignored.
func jsonContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json":
		return true
	}
	return false
}

// unsupportedContentType is the answer to a request whose Content-Type is
// not JSON: 404 UnknownOperationException, what the service's front end
// answers (the operation is not found for that protocol; Kinesis, the
// same front end, does so, as kinesalite reproduces). The service writes
// that error without a body in XML; Sluice keeps its JSON error body, with
// a message, like every other response.
func unsupportedContentType(ct string) *apiError {
	if len(ct) > 64 {
		ct = ct[:64] + "..."
	}
	return newError(http.StatusNotFound, errUnknownOperation,
		fmt.Sprintf("Unsupported Content-Type %q: send application/x-amz-json-1.1", ct))
}

// newRequestID returns a random (version 4) UUID.
func newRequestID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
		j += 2
	}
	return string(b[:])
}

// writeError writes e and returns its status. The code goes in the
// X-Amzn-ErrorType header too, as AWS JSON services send it.
func (h *handler) writeError(w http.ResponseWriter, e *apiError) int {
	w.Header().Set(errorTypeHeader, e.Type)
	var buf [256]byte
	h.writeBody(w, e.Status, appendErrorBody(buf[:0], e))
	return e.Status
}

func (h *handler) writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		h.log.Debug("writing response", "err", err)
	}
}

var errBodyTooLarge = errors.New("request body too large")

// readBodyIn is readBody with the handler's body deadline: it returns
// errBodyTimeout when the body did not arrive in time.
func (h *handler) readBodyIn(w http.ResponseWriter, r *http.Request, buf []byte, limit int) ([]byte, error) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(h.bodyTimeout)) // not every ResponseWriter supports it (tests' recorders)
	body, err := readBody(r, buf, limit)
	_ = rc.SetReadDeadline(time.Time{})
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return body, errBodyTimeout
	}
	return body, err
}

// errBodyTimeout is a body that did not arrive within the body timeout.
var errBodyTimeout = errors.New("request body timeout")

// bodyTimeoutError is AWS's answer to a request whose body stalls.
func bodyTimeoutError(w http.ResponseWriter) *apiError {
	w.Header().Set("Connection", "close")
	return newError(http.StatusRequestTimeout, "RequestTimeoutException",
		"Your socket connection to the server was not read from or written to within the timeout period.")
}

// readBody reads the whole request body into buf (reused), refusing bodies
// over limit without reading them.
func readBody(r *http.Request, buf []byte, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		return buf[:0], errBodyTooLarge
	}
	if r.ContentLength >= 0 {
		n := int(r.ContentLength)
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return buf[:0], fmt.Errorf("reading request body: %w", err)
		}
		return buf, nil
	}
	// Unknown length (chunked): read up to limit+1 bytes.
	buf = buf[:0]
	if cap(buf) < 64<<10 {
		buf = make([]byte, 0, 64<<10)
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), limit+1-len(buf)))
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf[:0], errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf[:0], fmt.Errorf("reading request body: %w", err)
		}
	}
}
