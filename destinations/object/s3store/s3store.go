// Package s3store is an object.Store over an S3 bucket (AWS, or any
// S3-compatible server through Config.Endpoint), for the s3 destination
// and for any destination that stages or backs up objects in S3.
//
// # Streaming and memory
//
// An object is streamed into an upload (upload.go): an object that fits in
// one part (Config.PartSize) is sent with one PutObject at Commit; a
// larger one becomes a multipart upload whose parts are sent while it is
// written, Config.UploadConcurrency at a time. Memory per object is at
// most (UploadConcurrency+1) × PartSize whatever its size. A failure
// (including a cancelled context) or Abort aborts the multipart upload:
// nothing partial becomes visible.
//
// # Errors
//
// S3 errors are classified in errors.go: network errors, 5xx, 429 and
// throttling are retryable (honouring Retry-After); a missing bucket,
// denied access and bad credentials are permanent, with Firehose-style
// codes (S3.NoSuchBucket, S3.AccessDenied...).
package s3store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

// Defaults and limits.
const (
	DefaultRegion            = "us-east-1"
	DefaultPartSize          = 8 << 20
	MinPartSize              = 5 << 20 // S3's minimum for every part but the last
	MaxPartSize              = 5 << 30
	DefaultUploadConcurrency = 2
	MaxUploadConcurrency     = 64
)

// Server-side encryption types accepted in SSEOptions.Type.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// Config is the bucket, the client and the upload settings. The YAML keys
// are those of the s3 destination's block, which embeds it.
type Config struct {
	// Bucket is the bucket name (not the ARN). Required.
	Bucket string `yaml:"bucket"`
	// Region defaults to AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.
	Region string `yaml:"region"`
	// Endpoint is a custom S3 endpoint URL (MinIO, s3rver, Ceph...);
	// empty means AWS.
	Endpoint string `yaml:"endpoint"`
	// ForcePathStyle addresses buckets as <endpoint>/<bucket>/<key>
	// instead of <bucket>.<endpoint>/<key>.
	ForcePathStyle bool `yaml:"force_path_style"`
	// AccessKeyID, SecretAccessKey and SessionToken are static
	// credentials. When empty, credentials come from the standard AWS
	// chain: the environment (AWS_ACCESS_KEY_ID...), the shared config and
	// credentials files, SSO, web identity, the container and EC2 instance
	// roles.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
	// SSE is the server-side encryption asked for on every object.
	SSE SSEOptions `yaml:"sse"`
	// StorageClass of the objects (STANDARD, STANDARD_IA, ...); empty is
	// the bucket's default.
	StorageClass string `yaml:"storage_class"`
	// PartSize is the multipart part size in bytes (min 5 MiB). Objects up
	// to one part are sent with a single PutObject.
	PartSize int64 `yaml:"part_size"`
	// UploadConcurrency is the number of parts of one object uploaded at
	// once. Memory per object in flight is bounded by
	// (UploadConcurrency+1) × PartSize.
	UploadConcurrency int `yaml:"upload_concurrency"`

	// WrapTransport, when set, wraps the HTTP transport of the client
	// (tracing, fault injection in tests). Not configurable in YAML.
	WrapTransport func(http.RoundTripper) http.RoundTripper `yaml:"-"`
	// MaxAttempts is the SDK's attempts per request; 0 means 3. Not
	// configurable in YAML: the runner's retries do the rest.
	MaxAttempts int `yaml:"-"`
}

// SSEOptions is the server-side encryption of objects.
type SSEOptions struct {
	// Type is "" (the bucket's default), AES256 (SSE-S3) or aws:kms.
	Type string `yaml:"type"`
	// KMSKeyID is the KMS key (id, alias or ARN) for aws:kms; empty means
	// the AWS-managed key.
	KMSKeyID string `yaml:"kms_key_id"`
}

// DefaultConfig returns the defaults a configuration block is decoded onto.
func DefaultConfig() Config {
	return Config{PartSize: DefaultPartSize, UploadConcurrency: DefaultUploadConcurrency}
}

var (
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	regionRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
)

// Validate reports every problem at once, each as a *pipeline.OptionError
// keyed by its YAML key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	switch {
	case c.Bucket == "":
		bad("bucket", "required")
	case !bucketRE.MatchString(c.Bucket) || strings.Contains(c.Bucket, ".."):
		bad("bucket", "%q is not a valid bucket name (3-63 lowercase letters, digits, '.' and '-')", c.Bucket)
	}
	if c.Region != "" && !regionRE.MatchString(c.Region) {
		bad("region", "%q is not a region name", c.Region)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("endpoint", "%q is not an http:// or https:// URL", c.Endpoint)
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		key := "access_key_id"
		if c.AccessKeyID != "" {
			key = "secret_access_key"
		}
		bad(key, "access_key_id and secret_access_key: set both or neither")
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		bad("session_token", "needs access_key_id and secret_access_key")
	}
	switch c.SSE.Type {
	case "", SSEAES256:
		if c.SSE.KMSKeyID != "" {
			bad("sse.kms_key_id", "only with sse.type %s", SSEKMS)
		}
	case SSEKMS:
	default:
		bad("sse.type", "%q is not one of %s, %s", c.SSE.Type, SSEAES256, SSEKMS)
	}
	if c.StorageClass != "" && !slices.Contains(types.StorageClass("").Values(), types.StorageClass(c.StorageClass)) {
		bad("storage_class", "%q is not an S3 storage class", c.StorageClass)
	}
	if c.PartSize < MinPartSize || c.PartSize > MaxPartSize {
		bad("part_size", "%d bytes, must be between %d (5 MiB) and %d (5 GiB)", c.PartSize, MinPartSize, int64(MaxPartSize))
	}
	if c.UploadConcurrency < 1 || c.UploadConcurrency > MaxUploadConcurrency {
		bad("upload_concurrency", "%d, must be between 1 and %d", c.UploadConcurrency, MaxUploadConcurrency)
	}
	return errors.Join(errs...)
}

// Rule is the store's restriction on evaluated prefixes (see
// object.KeyRule): S3 keys have no leading slash.
var Rule = object.KeyRule{Check: CheckPrefix, Code: "S3.InvalidKey"}

// CheckPrefix refuses a prefix with a leading slash.
func CheckPrefix(p string) error {
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("must not start with '/' (S3 keys have no leading slash)")
	}
	return nil
}

// BucketARN is Firehose's BucketARN of a bucket.
func BucketARN(bucket string) string { return "arn:aws:s3:::" + bucket }

// Store writes objects to a bucket. It is safe for concurrent use.
type Store struct {
	client      *s3.Client
	transport   *http.Transport
	bucket      string
	meta        objectMeta // SSE and storage class of every object
	partSize    int
	concurrency int
	log         *slog.Logger
}

var _ object.Store = (*Store)(nil)

// New builds the client of a validated c. It reads the AWS configuration
// files and environment but does no network I/O: credentials are fetched
// on first use, and Ready checks the bucket.
func New(ctx context.Context, c Config, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	attempts := c.MaxAttempts
	if attempts == 0 {
		attempts = retry.DefaultMaxAttempts
	}
	tr := newTransport(c.UploadConcurrency)
	var rt http.RoundTripper = tr
	if c.WrapTransport != nil {
		rt = c.WrapTransport(tr)
	}
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
	if c.Region != "" {
		loaders = append(loaders, awsconfig.WithRegion(c.Region))
	}
	if c.AccessKeyID != "" {
		loaders = append(loaders, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	// S3 calls use this store's own transport (sized for its upload
	// concurrency), with the TLS settings the chain loaded (AWS_CA_BUNDLE,
	// ca_bundle in the shared config).
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		if t := bc.GetTransport(); t != nil && t.TLSClientConfig != nil {
			tr.TLSClientConfig = t.TLSClientConfig.Clone()
		}
	}
	cfg.HTTPClient = &http.Client{Transport: rt}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.ForcePathStyle
	})
	return &Store{
		client:    client,
		transport: tr,
		bucket:    c.Bucket,
		meta: objectMeta{
			sse:          types.ServerSideEncryption(c.SSE.Type),
			kmsKeyID:     c.SSE.KMSKeyID,
			storageClass: types.StorageClass(c.StorageClass),
		},
		partSize:    int(c.PartSize),
		concurrency: c.UploadConcurrency,
		log:         log.With("bucket", c.Bucket),
	}, nil
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

// Bucket is the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// Create starts an upload to key (see the package documentation).
func (s *Store) Create(ctx context.Context, key string, meta object.Meta) (object.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3 create s3://%s/%s: %w", s.bucket, key, err)
	}
	m := s.meta
	m.contentType, m.contentEncoding = meta.ContentType, meta.ContentEncoding
	return s.newUpload(ctx, key, m, meta.SizeHint), nil
}

// Ready sends HeadBucket: the bucket exists and the credentials may use it.
func (s *Store) Ready(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return s.classify(ctx, "head bucket", "", err)
	}
	return nil
}

// Close closes the idle connections.
func (s *Store) Close(context.Context) error {
	s.transport.CloseIdleConnections()
	return nil
}
