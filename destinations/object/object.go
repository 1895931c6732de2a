// Package object is the object-store layer every object destination shares
// (destinations/file, destinations/s3, and the S3 backup of the others):
// it turns a batch into objects with Amazon Data Firehose's S3 layout,
//
//	<evaluated prefix><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>
//
// over a small Store interface that only creates, commits and aborts
// objects. Stores live in subpackages: filestore (a local directory) and
// s3store (an S3 bucket, reusable for staging).
//
// A Writer, built from a Config (Compile, pure) and a Store, does what is
// the same whatever the store:
//
//   - prefix and error-prefix expressions (package destinations/format/prefix),
//     evaluated with the arrival time of the oldest record of each object;
//   - the split of a batch into one object per partition (dynamic
//     partitioning), the partitions written max_concurrent_objects at a time;
//   - the encoding: JSON lines or concatenated bytes under a codec
//     (format/jsonl, format/compress: UNCOMPRESSED, GZIP, ZIP, Snappy,
//     HADOOP_SNAPPY, ZSTD), or Parquet (format/parquet);
//   - object names derived from the stream, the kind of object (data,
//     backup, dead letters), the batch identity (pipeline.BatchID, with its
//     Part and Round) and the partition, so a redelivery overwrites instead
//     of duplicating;
//   - records that cannot be placed or encoded, reported in a
//     *pipeline.PartialError while the others are stored;
//   - dead letters grouped by error output type, written as Firehose error
//     records under the error output prefix.
//
// A Writer is a pipeline.Destination and a pipeline.ErrorOutput.
package object

import (
	"context"
	"fmt"
	"io"
	"regexp"
)

// Store creates objects. Implementations classify their errors (see
// pipeline.RetryableError, pipeline.CodedError) and must be safe for
// concurrent use.
type Store interface {
	// Create starts the object key (a slash-separated path relative to
	// the store's root). Nothing is visible under key before Commit.
	// ctx bounds the whole object, Commit included.
	Create(ctx context.Context, key string, meta Meta) (Object, error)
	// Ready checks, quickly and without side effects, that the store can
	// be written to.
	Ready(ctx context.Context) error
	// Close releases the store's resources.
	Close(ctx context.Context) error
}

// Object is one object being written.
type Object interface {
	io.Writer
	// Commit makes the object visible under its key, atomically: readers
	// see the previous object or the whole new one. A failed Commit leaves
	// nothing visible.
	Commit() error
	// Abort drops the object. It is safe after Commit (it does nothing
	// then) and may be called more than once.
	Abort()
}

// Meta is the metadata of an object.
type Meta struct {
	ContentType     string
	ContentEncoding string
	// SizeHint is the expected size of the content before compression
	// (0: unknown); stores may size their buffers from it.
	SizeHint int
}

// streamNameRE is Firehose's DeliveryStreamName pattern.
var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// CheckStreamName reports whether name is a valid Firehose delivery stream
// name (1 to 64 letters, digits, '_', '.', '-'). Object names start with
// the stream name, so it must be one.
func CheckStreamName(name string) error {
	if !streamNameRE.MatchString(name) {
		return fmt.Errorf("invalid stream name %q: want 1 to 64 letters, digits, '_', '.' or '-'", name)
	}
	return nil
}
