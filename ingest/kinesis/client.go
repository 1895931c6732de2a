package kinesis

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// DefaultRegion is the region when neither the options, the ARN nor the
// AWS environment name one.
const DefaultRegion = "us-east-1"

// NewClient builds the Kinesis client of c: the endpoint and region of
// the options, static keys or else the standard AWS chain (environment,
// shared config and credentials files, SSO, web identity, container and
// instance roles). It reads files only: credentials are fetched on first
// use. The SDK retries a call once; the readers' own backoff does the
// rest, so that throttles and outages show in the metrics.
func NewClient(ctx context.Context, c Compiled) (*awskinesis.Client, error) {
	loaders := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 2
				o.MaxBackoff = time.Second
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if c.opts.Region != "" {
		loaders = append(loaders, awsconfig.WithRegion(c.opts.Region))
	}
	if c.opts.AccessKeyID != "" {
		loaders = append(loaders, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.opts.AccessKeyID, c.opts.SecretAccessKey, c.opts.SessionToken)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		return nil, fmt.Errorf("kinesis source: loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	return awskinesis.NewFromConfig(cfg, func(o *awskinesis.Options) {
		if c.opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.opts.Endpoint)
		}
	}), nil
}

// Start is the configured starting position.
func (c Compiled) Start() Start { return c.start }

// Read returns the shard readers' pace from the options.
func (c Compiled) Read() ReadOptions {
	return ReadOptions{Poll: c.opts.PollInterval, Limit: int32(c.opts.RecordsPerCall)}
}

// Discover is the interval between shard listings.
func (c Compiled) Discover() time.Duration { return c.opts.DiscoverInterval }

// FleetOptions returns the fleet's options (nil without a fleet), with
// defaults filled in.
func (c Compiled) FleetOptions() *FleetOptions { return c.fleet }
