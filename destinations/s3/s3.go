// Package s3 is the data-lake destination: it writes a stream's batches as
// objects in an S3 bucket (AWS, or any S3-compatible server through
// Options.Endpoint), with Amazon Data Firehose's object layout:
//
//	<evaluated prefix><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>
//
// Prefixes are Firehose's expression language (package
// destinations/format/prefix); a prefix without a timestamp expression gets
// yyyy/MM/dd/HH/ appended. Times are the arrival time of the oldest record
// of the object, in Options.CustomTimeZone (UTC by default). With partition
// keys in the prefix (dynamic partitioning) a batch is split into one
// object per partition. The uuid derives from the stream, the partition
// and the batch identity (pipeline.BatchID), so a redelivery after a crash
// overwrites the same keys instead of adding duplicate objects.
//
// # Streaming and memory
//
// A partition's records are encoded by its format.Format straight into an
// upload (upload.go): an object that fits in one part (Options.PartSize) is
// sent with one PutObject; a larger one becomes a multipart upload whose
// parts are sent while encoding goes on, Options.UploadConcurrency at a
// time. Memory per object is at most (UploadConcurrency+1) × PartSize
// whatever its size; partitions of a batch are uploaded one after the
// other. A failure (including a cancelled context) aborts the multipart
// upload: nothing partial becomes visible.
//
// # Errors
//
// Records the format cannot encode are reported in a *pipeline.PartialError
// (permanent; the runner dead-letters them) while the others are stored.
// S3 errors are classified in errors.go: network errors, 5xx, 429 and
// throttling are retryable (honouring Retry-After); a missing bucket,
// denied access and bad credentials are permanent, with Firehose-style
// codes (S3.NoSuchBucket, S3.AccessDenied...).
//
// The destination is also a pipeline.DeadLetterWriter (deadletter.go).
package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/pipeline"
)

// streamNameRE is Firehose's DeliveryStreamName pattern.
var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// Destination delivers batches to S3. It is safe for concurrent use.
type Destination struct {
	client      *s3.Client
	transport   *http.Transport
	bucket      string
	stream      string
	spec        *prefix.Spec
	maxActive   int
	partMetrics *prefix.Metrics
	format      format.Format
	meta        objectMeta
	partSize    int
	concurrency int
	objects     int // partitions written at once
	log         *slog.Logger
	now         func() time.Time

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// hooks are test seams: they never change behaviour in production.
type hooks struct {
	wrapTransport func(http.RoundTripper) http.RoundTripper
	maxAttempts   int // SDK attempts per request; 0 means 3
}

// New returns an S3 destination for stream. It validates opts and builds
// the client; it does no network I/O (a missing bucket shows on the first
// delivery, as a permanent S3.NoSuchBucket error).
func New(ctx context.Context, opts Options, stream string, deps pipeline.Deps) (*Destination, error) {
	return newDestination(ctx, opts, stream, deps, hooks{})
}

func newDestination(ctx context.Context, opts Options, stream string, deps pipeline.Deps, h hooks) (*Destination, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("s3 destination: %w", err)
	}
	if !streamNameRE.MatchString(stream) {
		return nil, fmt.Errorf("s3 destination: invalid stream name %q", stream)
	}
	f, err := newFormat(opts)
	if err != nil {
		return nil, fmt.Errorf("s3 destination: %w", err)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	attempts := h.maxAttempts
	if attempts == 0 {
		attempts = retry.DefaultMaxAttempts
	}
	tr := newTransport(opts.UploadConcurrency)
	var rt http.RoundTripper = tr
	if h.wrapTransport != nil {
		rt = h.wrapTransport(tr)
	}
	hc := &http.Client{Transport: rt}
	// The standard AWS chain (environment, shared config and credentials
	// files, SSO, web identity, container and EC2 instance roles) unless
	// the options give static keys; it reads files only, credentials are
	// fetched lazily on first use.
	loaders := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			// A few quick retries per request (a part is cheaper to resend
			// than an object); the runner's retry budget does the rest.
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = 2 * time.Second
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if opts.Region != "" {
		loaders = append(loaders, awsconfig.WithRegion(opts.Region))
	}
	if opts.AccessKeyID != "" {
		loaders = append(loaders, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		return nil, fmt.Errorf("s3 destination: loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	// S3 calls use this destination's own transport (sized for its upload
	// concurrency), with the TLS settings the chain loaded (AWS_CA_BUNDLE,
	// ca_bundle in the shared config).
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		if t := bc.GetTransport(); t != nil && t.TLSClientConfig != nil {
			tr.TLSClientConfig = t.TLSClientConfig.Clone()
		}
	}
	cfg.HTTPClient = hc
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.ForcePathStyle
	})
	spec, err := opts.spec()
	if err != nil {
		return nil, fmt.Errorf("s3 destination: %w", err)
	}
	d := &Destination{
		client:      client,
		transport:   tr,
		bucket:      opts.Bucket,
		stream:      stream,
		spec:        spec,
		maxActive:   opts.MaxActivePartitions,
		partMetrics: prefix.NewMetrics(deps.Registry),
		format:      f,
		meta: objectMeta{
			contentType:     f.ContentType(),
			contentEncoding: f.ContentEncoding(),
			sse:             types.ServerSideEncryption(opts.SSE.Type),
			kmsKeyID:        opts.SSE.KMSKeyID,
			storageClass:    types.StorageClass(opts.StorageClass),
		},
		partSize:    int(opts.PartSize),
		concurrency: opts.UploadConcurrency,
		objects:     opts.MaxConcurrentObjects,
		log:         logger.With("stream", stream, "destination", "s3", "bucket", opts.Bucket),
		now:         time.Now,
	}
	return d, nil
}

func newTransport(concurrency int) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   max(concurrency*2, 8),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
	}
}

// begin registers a call in progress; it fails after Close.
func (d *Destination) begin(op string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("s3 destination %s: %s: %w", d.stream, op, pipeline.ErrClosed)
	}
	d.inflight.Add(1)
	return nil
}

// Deliver stores b: one object per partition of its records. An empty
// batch stores nothing. Records the format cannot encode are returned in a
// *pipeline.PartialError while the others are stored; S3 failures are
// classified (see the package documentation). Deliver is idempotent for a
// given b.ID.
func (d *Destination) Deliver(ctx context.Context, b pipeline.Batch) error {
	if err := d.begin("deliver"); err != nil {
		return err
	}
	defer d.inflight.Done()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 destination %s: deliver: %w", d.stream, err)
	}
	if len(b.Records) == 0 {
		return nil
	}
	if b.Stream != "" && b.Stream != d.stream {
		return fmt.Errorf("s3 destination %s: batch of stream %q delivered to the wrong destination", d.stream, b.Stream)
	}
	parts, failed := d.split(b)
	d.partMetrics.Observe(d.stream, parts, failed)
	refused, err := d.deliverPartitions(ctx, b, parts)
	if err != nil {
		return err
	}
	failed = append(failed, refused...)
	if len(failed) > 0 {
		slices.SortFunc(failed, func(a, b pipeline.RecordError) int { return a.Index - b.Index })
		return &pipeline.PartialError{Failed: failed}
	}
	return nil
}

// deliverPartitions writes one object per partition, up to d.objects at
// once. The first error cancels the others and is returned; the records
// the format refused are collected.
func (d *Destination) deliverPartitions(ctx context.Context, b pipeline.Batch, parts []prefix.Partition) ([]pipeline.RecordError, error) {
	if len(parts) == 1 || d.objects <= 1 {
		var refused []pipeline.RecordError
		for _, p := range parts {
			f, err := d.deliverPartition(ctx, b, p)
			if err != nil {
				return nil, err
			}
			refused = append(refused, f...)
		}
		return refused, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		refused  []pipeline.RecordError
		firstErr error
		wg       sync.WaitGroup
	)
	slots := make(chan struct{}, d.objects)
	for _, p := range parts {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			f, err := d.deliverPartition(ctx, b, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			refused = append(refused, f...)
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("s3 destination %s: deliver: %w", d.stream, ctx.Err())
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return refused, nil
}

// split groups the records of b by evaluated prefix (one partition
// without dynamic partitioning). Records that cannot be placed (missing
// partition key, beyond max_active_partitions) fail permanently.
func (d *Destination) split(b pipeline.Batch) ([]prefix.Partition, []pipeline.RecordError) {
	b.Stream = d.stream // object keys derive from it
	return d.spec.Split(b, d.maxActive)
}

// ObjectKeys returns the keys Deliver stores b under.
func (d *Destination) ObjectKeys(b pipeline.Batch) []string {
	parts, _ := d.split(b)
	keys := make([]string, len(parts))
	for i, p := range parts {
		keys[i] = p.Key
	}
	return keys
}

// deliverPartition encodes p's records into one object. It returns the
// records the format refused; an error fails the whole batch.
func (d *Destination) deliverPartition(ctx context.Context, b pipeline.Batch, p prefix.Partition) (failed []pipeline.RecordError, err error) {
	size := len(p.Records)
	for _, i := range p.Records {
		size += len(b.Records[i].Data)
	}
	up := d.newUpload(ctx, p.Key, d.meta, size)
	defer up.release()
	defer func() {
		if err != nil {
			up.abort()
		}
	}()
	ow, err := d.format.NewWriter(up)
	if err != nil {
		return nil, d.encodeError(up, p.Key, err)
	}
	stored := 0
	for n, i := range p.Records {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("s3 destination %s: deliver s3://%s/%s: %w", d.stream, d.bucket, p.Key, err)
			}
		}
		if err := ow.Write(&b.Records[i]); err != nil {
			var ce *pipeline.CodedError
			if errors.As(err, &ce) && up.err() == nil {
				failed = append(failed, pipeline.RecordError{Index: i, Err: err})
				continue
			}
			return nil, d.encodeError(up, p.Key, err)
		}
		stored++
	}
	if err := ow.Close(); err != nil {
		return nil, d.encodeError(up, p.Key, err)
	}
	if stored == 0 {
		up.abort()
		return failed, nil // every record refused: no object
	}
	if err := up.finish(); err != nil {
		return nil, err
	}
	return failed, nil
}

// encodeError reports a failure while encoding: the upload's own error
// (already classified) if it failed, else the format's error (permanent).
func (d *Destination) encodeError(up *upload, key string, err error) error {
	if uerr := up.err(); uerr != nil {
		return uerr
	}
	return &pipeline.CodedError{
		Code: "S3.EncodingFailed",
		Err:  fmt.Errorf("s3 destination %s: encode s3://%s/%s: %w", d.stream, d.bucket, key, err),
	}
}

// Close stops the destination: later calls fail with pipeline.ErrClosed,
// deliveries in progress are waited for (until ctx is done) and idle
// connections are closed. It is idempotent.
func (d *Destination) Close(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("s3 destination %s: close: deliveries still in progress: %w", d.stream, ctx.Err())
	}
	d.transport.CloseIdleConnections()
	return err
}
