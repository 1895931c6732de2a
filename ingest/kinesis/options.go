package kinesis

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluice-dev/sluice/pipeline"
)

// Defaults and limits of the options.
const (
	DefaultPollInterval     = time.Second
	DefaultRecordsPerCall   = 10000
	DefaultDiscoverInterval = 10 * time.Second
	DefaultLeaseDuration    = 10 * time.Second
	DefaultLeaseTable       = "sluice_kinesis_leases"
)

// Options configure a Kinesis source (Firehose's
// KinesisStreamSourceConfiguration, plus what a reader outside AWS needs).
// The YAML keys are those of a stream's source block.
type Options struct {
	// Stream is the Kinesis data stream, by name or ARN (required).
	Stream string `yaml:"stream"`
	// Region defaults to the one in the ARN, else AWS_REGION /
	// AWS_DEFAULT_REGION, else us-east-1.
	Region string `yaml:"region"`
	// Endpoint is a custom Kinesis endpoint URL (kinesalite, LocalStack);
	// empty means AWS.
	Endpoint string `yaml:"endpoint"`
	// AccessKeyID, SecretAccessKey and SessionToken are static
	// credentials; when empty, the standard AWS chain supplies them.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
	// StartingPosition is where shards found at the source's first start
	// are read from: LATEST (Firehose's default), TRIM_HORIZON or
	// AT_TIMESTAMP (with StartingTimestamp). Shards created later (by a
	// split or merge) are always read from their start.
	StartingPosition  string    `yaml:"starting_position"`
	StartingTimestamp time.Time `yaml:"starting_timestamp"`
	// PollInterval is the wait between GetRecords calls on a shard that
	// is read to its tip (Firehose: one second).
	PollInterval time.Duration `yaml:"poll_interval"`
	// RecordsPerCall is GetRecords' Limit (1..10000).
	RecordsPerCall int `yaml:"records_per_call"`
	// DiscoverInterval is the wait between ListShards calls that find new
	// shards (and, in a fleet, leases to take).
	DiscoverInterval time.Duration `yaml:"discover_interval"`
	// Fleet, when set, shares the stream's shards with other Sluice
	// instances through leases in PostgreSQL.
	Fleet *FleetOptions `yaml:"fleet"`
}

// FleetOptions configure the leases a fleet shares a stream through.
type FleetOptions struct {
	// DSN is the PostgreSQL connection string (required); write its
	// password as ${ENV}.
	DSN string `yaml:"dsn"`
	// Schema and Table name the lease table (created if missing).
	Schema string `yaml:"schema"`
	Table  string `yaml:"table"`
	// Worker is this instance's unique name in the fleet (default: the
	// host name and the API listen address).
	Worker string `yaml:"worker"`
	// LeaseDuration is how long a lease lives without renewal: the
	// failover time after an instance dies.
	LeaseDuration time.Duration `yaml:"lease_duration"`
}

// DefaultOptions returns the defaults a configuration block is decoded
// onto.
func DefaultOptions() Options {
	return Options{
		StartingPosition: string(types.ShardIteratorTypeLatest),
		PollInterval:     DefaultPollInterval,
		RecordsPerCall:   DefaultRecordsPerCall,
		DiscoverInterval: DefaultDiscoverInterval,
	}
}

// Compiled is validated Options, ready to build a Source.
type Compiled struct {
	opts  Options
	start Start
	fleet *FleetOptions
}

var (
	streamName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
	// arn:aws:kinesis:<region>:<account>:stream/<name>
	streamARN = regexp.MustCompile(`^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):([0-9]{12}):stream/([a-zA-Z0-9_.-]{1,128})$`)
	tableName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`)
)

// Compile validates opts, reporting every problem at its key.
func Compile(opts Options) (Compiled, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	c := Compiled{opts: opts}
	switch {
	case opts.Stream == "":
		fail("stream", "is required: the Kinesis data stream's name or ARN")
	case isARN(opts.Stream):
		m := streamARN.FindStringSubmatch(opts.Stream)
		if m == nil {
			fail("stream", "invalid stream ARN %q (want arn:aws:kinesis:<region>:<account>:stream/<name>)", opts.Stream)
		} else if opts.Region != "" && opts.Region != m[1] {
			fail("region", "%q differs from the stream ARN's region %q", opts.Region, m[1])
		} else if c.opts.Region == "" {
			c.opts.Region = m[1]
		}
	case !streamName.MatchString(opts.Stream):
		fail("stream", "invalid stream name %q (1 to 128 of a-z A-Z 0-9 _ . -)", opts.Stream)
	}
	switch types.ShardIteratorType(strings.ToUpper(opts.StartingPosition)) {
	case types.ShardIteratorTypeLatest, "":
		c.start.Position = types.ShardIteratorTypeLatest
	case types.ShardIteratorTypeTrimHorizon:
		c.start.Position = types.ShardIteratorTypeTrimHorizon
	case types.ShardIteratorTypeAtTimestamp:
		c.start.Position = types.ShardIteratorTypeAtTimestamp
		c.start.Timestamp = opts.StartingTimestamp
		if opts.StartingTimestamp.IsZero() {
			fail("starting_timestamp", "is required with starting_position AT_TIMESTAMP")
		}
	default:
		fail("starting_position", "invalid %q (want LATEST, TRIM_HORIZON or AT_TIMESTAMP)", opts.StartingPosition)
	}
	if !opts.StartingTimestamp.IsZero() && c.start.Position != types.ShardIteratorTypeAtTimestamp {
		fail("starting_timestamp", "applies only to starting_position AT_TIMESTAMP")
	}
	if (opts.AccessKeyID == "") != (opts.SecretAccessKey == "") {
		fail("access_key_id", "set access_key_id and secret_access_key together, or neither (the AWS chain)")
	}
	if opts.SessionToken != "" && opts.AccessKeyID == "" {
		fail("session_token", "needs access_key_id and secret_access_key")
	}
	if opts.PollInterval < 200*time.Millisecond || opts.PollInterval > time.Minute {
		fail("poll_interval", "must be between 200ms (5 GetRecords calls a second is a shard's limit) and 1m, got %s", opts.PollInterval)
	}
	if opts.RecordsPerCall < 1 || opts.RecordsPerCall > 10000 {
		fail("records_per_call", "must be between 1 and 10000, got %d", opts.RecordsPerCall)
	}
	if opts.DiscoverInterval < time.Second || opts.DiscoverInterval > time.Hour {
		fail("discover_interval", "must be between 1s and 1h, got %s", opts.DiscoverInterval)
	}
	if f := opts.Fleet; f != nil {
		fc := *f
		if fc.Table == "" {
			fc.Table = DefaultLeaseTable
		}
		if fc.LeaseDuration == 0 {
			fc.LeaseDuration = DefaultLeaseDuration
		}
		switch {
		case fc.DSN == "":
			fail("fleet.dsn", "is required: the PostgreSQL database the fleet's leases live in")
		case !strings.Contains(fc.DSN, "://") && !strings.Contains(fc.DSN, "="):
			fail("fleet.dsn", "is neither a postgres:// URL nor key=value pairs")
		}
		if !tableName.MatchString(fc.Table) {
			fail("fleet.table", "invalid table name %q", fc.Table)
		}
		if fc.Schema != "" && !tableName.MatchString(fc.Schema) {
			fail("fleet.schema", "invalid schema name %q", fc.Schema)
		}
		if fc.LeaseDuration < time.Second || fc.LeaseDuration > 10*time.Minute {
			fail("fleet.lease_duration", "must be between 1s and 10m, got %s", fc.LeaseDuration)
		}
		if len(fc.Worker) > 256 {
			fail("fleet.worker", "at most 256 characters")
		}
		c.fleet = &fc
	}
	if err := errors.Join(errs...); err != nil {
		return Compiled{}, err
	}
	return c, nil
}

// Stream is the Kinesis stream read, as configured (name or ARN).
func (c Compiled) Stream() string { return c.opts.Stream }

// ARN returns the stream's ARN: the configured one, or one made from the
// name with the region and account given.
func (c Compiled) ARN(region, account string) string {
	if isARN(c.opts.Stream) {
		return c.opts.Stream
	}
	if c.opts.Region != "" {
		region = c.opts.Region
	}
	return fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", region, account, c.opts.Stream)
}
