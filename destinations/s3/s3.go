// Package s3 is the data-lake destination: it writes a stream's batches as
// objects in an S3 bucket (AWS, or any S3-compatible server through the
// endpoint option), with Amazon Data Firehose's object layout:
//
//	<evaluated prefix><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>
//
// It is a configuration of the shared object layer: package
// destinations/object does the prefixes, partitions (written
// max_concurrent_objects at a time), formats, codecs, object names, partial
// failures and dead letters; package destinations/object/s3store does the
// S3 I/O (one PutObject per small object, a streaming multipart upload with
// bounded memory for larger ones, aborted on failure; SSE and storage
// class; error classification with codes such as S3.NoSuchBucket).
//
// Compile checks the options and compiles them without I/O; New builds the
// client and returns the writer, a pipeline.Destination and a
// pipeline.ErrorOutput (dead letters go to the same bucket under
// error_output_prefix).
package s3

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/s3store"
	"github.com/sluice-dev/sluice/pipeline"
)

// Options configure an S3 destination (Firehose's
// ExtendedS3DestinationConfiguration): the bucket, client and upload
// settings (s3store.Config) and the options every object destination
// shares (object.Options). The YAML keys of both are the block's keys.
type Options struct {
	s3store.Config `yaml:",inline"`
	object.Options `yaml:",inline"`
}

// DefaultOptions returns the defaults a configuration block is decoded onto.
func DefaultOptions() Options {
	return Options{Config: s3store.DefaultConfig(), Options: object.DefaultOptions()}
}

// Validate reports every problem with the options at once (see Compile).
func (o Options) Validate() error {
	_, err := Compile(o)
	return err
}

// Config is a compiled, valid Options.
type Config struct {
	store  s3store.Config
	object *object.Config
}

// Compile checks o and compiles it, without I/O. Every problem is
// reported at once, each as a *pipeline.OptionError keyed by its YAML key,
// joined.
func Compile(o Options) (*Config, error) {
	obj, err := object.Compile(o.Options, s3store.Rule)
	if err := object.JoinErrors(o.Config.Validate(), err); err != nil {
		return nil, err
	}
	return &Config{store: o.Config, object: obj}, nil
}

// Where names the bucket and prefix, for logs.
func (c *Config) Where() string {
	w := "s3://" + c.store.Bucket + "/" + c.object.Prefix()
	if c.store.Endpoint != "" {
		w += " at " + c.store.Endpoint
	}
	return w
}

// New builds the S3 client of cfg and returns stream's writer. It reads the
// AWS configuration (files, environment) but does no network I/O: the
// writer's Ready checks the bucket.
func New(ctx context.Context, cfg *Config, stream string, deps pipeline.Deps) (*object.Writer, error) {
	if err := object.CheckStreamName(stream); err != nil {
		return nil, fmt.Errorf("s3 destination: %w", err)
	}
	log := deps.Logger
	if log != nil {
		log = log.With("stream", stream, "destination", "s3")
	}
	store, err := s3store.New(ctx, cfg.store, log)
	if err != nil {
		return nil, fmt.Errorf("s3 destination %s: %w", stream, err)
	}
	loc := object.Location{Kind: "s3", Code: "S3", BucketARN: s3store.BucketARN(cfg.store.Bucket)}
	return object.NewWriter(cfg.object, store, stream, loc, deps)
}

// PartitionKeys are the partition keys the prefix reads (see
// object.Config.PartitionKeys).
func (c *Config) PartitionKeys() []string { return c.object.PartitionKeys() }
