package s3

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Defaults and limits of the options.
const (
	DefaultRegion              = "us-east-1"
	DefaultErrorOutputPrefix   = "errors/"
	DefaultMaxActivePartitions = 500
	DefaultPartSize            = 8 << 20
	MinPartSize                = 5 << 20 // S3's minimum for every part but the last
	MaxPartSize                = 5 << 30
	DefaultUploadConcurrency   = 2
	MaxUploadConcurrency       = 64
	DefaultConcurrentObjects   = 4
)

// Format types accepted in FormatOptions.Type.
const (
	FormatJSON    = "json"
	FormatParquet = "parquet"
)

// Server-side encryption types accepted in SSEOptions.Type.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// Options configure an S3 destination (Firehose's
// ExtendedS3DestinationConfiguration). The YAML keys are the block's keys
// in a stream's configuration.
type Options struct {
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
	// credentials. When empty, credentials come from the environment
	// (AWS_ACCESS_KEY_ID...), the shared credentials file or the
	// container credentials endpoint (see credentials.go).
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
	// SSE is the server-side encryption asked for on every object.
	SSE SSEOptions `yaml:"sse"`
	// StorageClass of the objects (STANDARD, STANDARD_IA, ...); empty is
	// the bucket's default.
	StorageClass string `yaml:"storage_class"`
	// Prefix of data objects: literal text and Firehose expressions
	// (package destinations/format/prefix: !{timestamp:...},
	// !{firehose:random-string}, !{partitionKeyFromQuery:k},
	// !{partitionKeyFromLambda:k}). Without a timestamp expression,
	// yyyy/MM/dd/HH/ is appended directly, as in Firehose. Partition keys
	// turn on dynamic partitioning.
	Prefix string `yaml:"prefix"`
	// ErrorOutputPrefix is where dead letters go, in the same bucket. With
	// expressions it must contain !{firehose:error-output-type}; a plain
	// one gets <output-type>/yyyy/MM/dd/HH/ appended. A prefix with
	// expressions requires one. Empty means DefaultErrorOutputPrefix.
	ErrorOutputPrefix string `yaml:"error_output_prefix"`
	// Compression is UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY or
	// ZSTD (case-insensitive).
	Compression string `yaml:"compression"`
	// AppendNewline writes '\n' after every record (Firehose's
	// AppendDelimiterToRecord). JSON format only.
	AppendNewline bool `yaml:"append_newline"`
	// Format selects how records are encoded.
	Format FormatOptions `yaml:"format"`
	// CustomTimeZone is the IANA zone of the time prefix and the time in
	// object names (Firehose's CustomTimeZone); default UTC.
	CustomTimeZone string `yaml:"custom_time_zone"`
	// FileExtension overrides the object extension (e.g. ".json.gz").
	FileExtension string `yaml:"file_extension"`
	// MaxActivePartitions bounds the distinct prefixes of one batch
	// (Firehose's active-partition quota); records beyond it are
	// dead-lettered as activePartitionExceeded.
	MaxActivePartitions int `yaml:"max_active_partitions"`
	// PartSize is the multipart part size in bytes (min 5 MiB). Objects up
	// to one part are sent with a single PutObject.
	PartSize int64 `yaml:"part_size"`
	// UploadConcurrency is the number of parts of one object uploaded at
	// once. Memory per object in flight is bounded by
	// (UploadConcurrency+1) × PartSize.
	UploadConcurrency int `yaml:"upload_concurrency"`
	// MaxConcurrentObjects is the number of objects (partitions of a
	// batch) written at once: with dynamic partitioning a batch becomes
	// many small objects, and one round trip each in sequence would cap
	// throughput at the store's latency. Memory in flight is bounded by
	// MaxConcurrentObjects × (UploadConcurrency+1) × PartSize.
	MaxConcurrentObjects int `yaml:"max_concurrent_objects"`
}

// SSEOptions is the server-side encryption of objects.
type SSEOptions struct {
	// Type is "" (the bucket's default), AES256 (SSE-S3) or aws:kms.
	Type string `yaml:"type"`
	// KMSKeyID is the KMS key (id, alias or ARN) for aws:kms; empty means
	// the AWS-managed key.
	KMSKeyID string `yaml:"kms_key_id"`
}

// DefaultOptions returns the defaults a configuration block is decoded onto.
func DefaultOptions() Options {
	return Options{
		ErrorOutputPrefix:    DefaultErrorOutputPrefix,
		Compression:          "UNCOMPRESSED",
		Format:               FormatOptions{Type: FormatJSON},
		MaxActivePartitions:  DefaultMaxActivePartitions,
		PartSize:             DefaultPartSize,
		UploadConcurrency:    DefaultUploadConcurrency,
		MaxConcurrentObjects: DefaultConcurrentObjects,
	}
}

var (
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	regionRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
)

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case o.Bucket == "":
		add("bucket: required")
	case !bucketRE.MatchString(o.Bucket) || strings.Contains(o.Bucket, ".."):
		add("bucket: %q is not a valid bucket name (3-63 lowercase letters, digits, '.' and '-')", o.Bucket)
	}
	if o.Region != "" && !regionRE.MatchString(o.Region) {
		add("region: %q is not a region name", o.Region)
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("endpoint: %q is not an http:// or https:// URL", o.Endpoint)
		}
	}
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
		add("access_key_id and secret_access_key: set both or neither")
	}
	if o.SessionToken != "" && o.AccessKeyID == "" {
		add("session_token: needs access_key_id and secret_access_key")
	}
	switch o.SSE.Type {
	case "", SSEAES256:
		if o.SSE.KMSKeyID != "" {
			add("sse.kms_key_id: only with sse.type %s", SSEKMS)
		}
	case SSEKMS:
	default:
		add("sse.type: %q is not one of %s, %s", o.SSE.Type, SSEAES256, SSEKMS)
	}
	if o.StorageClass != "" && !slices.Contains(types.StorageClass("").Values(), types.StorageClass(o.StorageClass)) {
		add("storage_class: %q is not an S3 storage class", o.StorageClass)
	}
	if err := validateFormat(o); err != nil {
		errs = append(errs, err)
	}
	if o.MaxActivePartitions < 1 {
		add("max_active_partitions: %d, must be at least 1", o.MaxActivePartitions)
	}
	if o.PartSize < MinPartSize || o.PartSize > MaxPartSize {
		add("part_size: %d bytes, must be between %d (5 MiB) and %d (5 GiB)", o.PartSize, MinPartSize, int64(MaxPartSize))
	}
	if o.MaxConcurrentObjects < 1 || o.MaxConcurrentObjects > MaxUploadConcurrency {
		add("max_concurrent_objects: %d, must be between 1 and %d", o.MaxConcurrentObjects, MaxUploadConcurrency)
	}
	if o.UploadConcurrency < 1 || o.UploadConcurrency > MaxUploadConcurrency {
		add("upload_concurrency: %d, must be between 1 and %d", o.UploadConcurrency, MaxUploadConcurrency)
	}
	errs = append(errs, validatePrefixes(o)...)
	return errors.Join(errs...)
}

func (o Options) errorPrefix() string {
	if o.ErrorOutputPrefix == "" {
		return DefaultErrorOutputPrefix
	}
	return o.ErrorOutputPrefix
}
