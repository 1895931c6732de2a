// Package file is a destination that writes a stream's batches as objects in
// a local directory, with Amazon Data Firehose's S3 object layout:
//
//	<path>/<evaluated prefix><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>
//
// It is a configuration of the shared object layer: package
// destinations/object does the prefixes (by default <prefix>yyyy/MM/dd/HH/),
// partitions (written max_concurrent_objects at a time), formats (JSON
// lines or Parquet), codecs (UNCOMPRESSED, GZIP, ZIP, Snappy,
// HADOOP_SNAPPY, ZSTD), object names, partial failures and dead letters;
// package destinations/object/filestore does the file I/O (a temporary
// file fsynced and renamed into place, the directory fsynced; temporary
// files a crash left behind removed at start; errors with codes such as
// File.NoSpace). Keys must stay inside the directory: a partition whose
// prefix would escape it is dead-lettered as partitioning-failed.
//
// Compile checks the options and compiles them without I/O; New resolves
// the path, prepares the directory and returns the writer, a
// pipeline.Destination and a pipeline.ErrorOutput (dead letters go under
// error_output_prefix in the same directory).
package file

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/filestore"
	"github.com/sluice-dev/sluice/pipeline"
)

// DefaultErrorOutputPrefix is where dead letters go when
// error_output_prefix is empty.
const DefaultErrorOutputPrefix = object.DefaultErrorOutputPrefix

// Options configure a file destination. The YAML keys are the block's keys
// in a stream's configuration: path and the options every object
// destination shares (object.Options).
type Options struct {
	// Path is the root directory of the output. A relative path is
	// resolved against the data directory (pipeline.Deps.DataDir) by New.
	Path           string `yaml:"path"`
	object.Options `yaml:",inline"`
}

// DefaultOptions returns the defaults a configuration block is decoded onto.
func DefaultOptions() Options {
	return Options{Options: object.DefaultOptions()}
}

// Validate reports every problem with the options at once (see Compile).
func (o Options) Validate() error {
	_, err := Compile(o)
	return err
}

// Config is a compiled, valid Options.
type Config struct {
	path   string
	object *object.Config
}

// Compile checks o and compiles it, without I/O. Every problem is
// reported at once, each as a *pipeline.OptionError keyed by its YAML key,
// joined.
func Compile(o Options) (*Config, error) {
	var errs []error
	if o.Path == "" {
		errs = append(errs, pipeline.OptionErrorf("path", "required"))
	}
	obj, err := object.Compile(o.Options, filestore.Rule)
	if err := object.JoinErrors(append(errs, err)...); err != nil {
		return nil, err
	}
	return &Config{path: o.Path, object: obj}, nil
}

// Where is the output directory: the path, resolved against dataDir when
// relative.
func (c *Config) Where(dataDir string) string {
	if filepath.IsAbs(c.path) || dataDir == "" {
		return c.path
	}
	return filepath.Join(dataDir, c.path)
}

// New returns stream's writer. A relative path is resolved against
// deps.DataDir; the directory is created if needed and the temporary files
// a crash left behind for this stream are removed. With deps.Keys sealing,
// every object is written encrypted (encryption at rest).
func New(_ context.Context, cfg *Config, stream string, deps pipeline.Deps) (*object.Writer, error) {
	if err := object.CheckStreamName(stream); err != nil {
		return nil, fmt.Errorf("file destination: %w", err)
	}
	root := cfg.Where(deps.DataDir)
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("file destination %s: relative path %q and no data directory to resolve it against", stream, root)
	}
	log := deps.Logger
	if log != nil {
		log = log.With("stream", stream, "destination", "file")
	}
	store, err := filestore.New(root, stream, log)
	if err != nil {
		return nil, fmt.Errorf("file destination %s: %w", stream, err)
	}
	store.Encrypt(deps.Keys)
	loc := object.Location{Kind: "file", Code: "File", BucketARN: "arn:aws:s3:::" + strings.Trim(filepath.ToSlash(store.Root()), "/")}
	return object.NewWriter(cfg.object, store, stream, loc, deps)
}

// PartitionKeys are the partition keys the prefix reads (see
// object.Config.PartitionKeys).
func (c *Config) PartitionKeys() []string { return c.object.PartitionKeys() }
