// Package file is a destination that writes a stream's batches as objects in
// a local directory, with Amazon Data Firehose's S3 object layout:
//
//	<evaluated prefix><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>
//
// The prefix is Firehose's expression language (package
// destinations/format/prefix); by default it is <prefix>yyyy/MM/dd/HH/. Times
// are the arrival time of the oldest record of the object, in UTC or
// custom_time_zone. With partition keys in the prefix (dynamic
// partitioning) a batch is split into one object per partition, written one
// after the other; records that cannot be placed are reported in a
// *pipeline.PartialError and dead-lettered by the runner. The uuid is derived
// from the stream name, the batch identity (pipeline.BatchID) and the
// partition, so redelivering a batch after a crash overwrites the same
// objects instead of creating duplicates.
//
// Objects are written atomically: a temporary file ".<object>.<random>.tmp"
// in the object's directory is written through a buffered writer, fsynced,
// renamed into place, and the directory is fsynced. Readers never see a
// partial object; temporary files left by a crash are removed by New.
//
// The destination is also a pipeline.DeadLetterWriter: dead letters are
// written, as newline-delimited Firehose error-record JSON, under
// the evaluated error_output_prefix (by default
// <error_output_prefix><output-type>/yyyy/MM/dd/HH/).
package file

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/pipeline"
)

const writeBufferSize = 256 << 10

// streamNameRE is Firehose's DeliveryStreamName pattern.
var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// Destination delivers batches to files. It is safe for concurrent use.
type Destination struct {
	root      string
	stream    string
	spec      *prefix.Spec
	maxActive int
	comp      compression
	newline   bool
	log       *slog.Logger
	metrics   *prefix.Metrics
	now       func() time.Time

	bufs sync.Pool // *bufio.Writer
	gzs  sync.Pool // *gzip.Writer

	dirMu sync.Mutex
	dirs  map[string]struct{} // directories known to exist durably

	closeMu sync.RWMutex
	closed  bool
}

// New returns a file destination for stream. opts.Path must be absolute;
// the directory is created if needed and temporary files a crash left
// behind for this stream are removed.
func New(opts Options, stream string, deps pipeline.Deps) (*Destination, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("file destination: %w", err)
	}
	if !filepath.IsAbs(opts.Path) {
		return nil, fmt.Errorf("file destination: path %q must be absolute (resolve it against the data directory)", opts.Path)
	}
	if !streamNameRE.MatchString(stream) {
		return nil, fmt.Errorf("file destination: invalid stream name %q", stream)
	}
	comp, _ := parseCompression(opts.Compression) // validated above
	spec, _ := opts.spec()                        // validated above
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Destination{
		root:      filepath.Clean(opts.Path),
		stream:    stream,
		spec:      spec,
		maxActive: opts.MaxActivePartitions,
		comp:      comp,
		newline:   opts.AppendNewline,
		log:       logger.With("stream", stream, "destination", "file"),
		metrics:   prefix.NewMetrics(deps.Registry),
		now:       time.Now,
		dirs:      make(map[string]struct{}),
	}
	if err := d.ensureDir(d.root); err != nil {
		return nil, fmt.Errorf("file destination: %w", err)
	}
	if err := d.removeStaleTemps(); err != nil {
		return nil, fmt.Errorf("file destination: %w", err)
	}
	return d, nil
}

// Deliver writes b as one object per partition (one object without
// partition keys). An empty batch writes nothing. Errors are classified: a
// full disk or an I/O error is retryable (see pipeline.RetryableError), a
// path that cannot be created is permanent. Records that cannot be placed
// (missing partition key, active-partition limit, a partition whose prefix
// is not a valid path, a permanent write error of one partition among
// several) are returned as a *pipeline.PartialError of permanent errors
// while the other partitions are written. Deliver is idempotent for a
// given b.ID: a redelivery replaces the same objects.
func (d *Destination) Deliver(ctx context.Context, b pipeline.Batch) error {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return fmt.Errorf("file destination %s: deliver: %w", d.stream, pipeline.ErrClosed)
	}
	if len(b.Records) == 0 {
		return nil
	}
	if b.Stream != "" && b.Stream != d.stream {
		return fmt.Errorf("file destination %s: batch of stream %q delivered to the wrong destination", d.stream, b.Stream)
	}
	b.Stream = d.stream
	parts, failed := d.spec.Split(b, d.maxActive)
	d.metrics.Observe(d.stream, parts, failed)
	for i := range parts {
		p := &parts[i]
		if err := validateKeyPrefix(p.Prefix); err != nil {
			failed = appendFailures(failed, p.Records, &pipeline.CodedError{
				Code: "File.InvalidPath", OutputType: prefix.OutputPartitioningFailed,
				Err: fmt.Errorf("partition prefix %q: %w", p.Prefix, err),
			})
			continue
		}
		err := d.writeObject(ctx, p.Key, d.comp, func(w io.Writer) error {
			return d.writeRecords(ctx, w, b.Records, p.Records)
		})
		if err == nil {
			continue
		}
		if ctx.Err() != nil || pipeline.IsRetryable(err) || len(parts) == 1 && len(failed) == 0 {
			// The whole batch is retried (objects already written are
			// rewritten under the same keys) or fails as one.
			return err
		}
		failed = appendFailures(failed, p.Records, err)
	}
	if len(failed) > 0 {
		slices.SortStableFunc(failed, func(a, b pipeline.RecordError) int { return cmp.Compare(a.Index, b.Index) })
		return &pipeline.PartialError{Failed: failed}
	}
	return nil
}

func (d *Destination) writeRecords(ctx context.Context, w io.Writer, recs []pipeline.Record, idx []int) error {
	for n, i := range idx {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if _, err := w.Write(recs[i].Data); err != nil {
			return err
		}
		if d.newline {
			if _, err := w.Write(newline); err != nil {
				return err
			}
		}
	}
	return nil
}

func appendFailures(failed []pipeline.RecordError, idx []int, err error) []pipeline.RecordError {
	for _, i := range idx {
		failed = append(failed, pipeline.RecordError{Index: i, Err: err})
	}
	return failed
}

var newline = []byte{'\n'}

// ObjectKeys returns the slash-separated keys, relative to the output
// directory, of the objects Deliver writes b to, one per partition.
func (d *Destination) ObjectKeys(b pipeline.Batch) []string {
	b.Stream = d.stream
	parts, _ := d.spec.Split(b, d.maxActive)
	keys := make([]string, len(parts))
	for i := range parts {
		keys[i] = parts[i].Key
	}
	return keys
}

// Close stops the destination: it waits for deliveries in progress and
// makes later calls fail with pipeline.ErrClosed. It is idempotent.
func (d *Destination) Close(ctx context.Context) error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	d.closed = true
	return nil
}

// writeObject writes an object atomically: fill streams the content into a
// temporary file through a buffered (and possibly gzip) writer, then the
// file is fsynced and renamed to key and the directory is fsynced.
func (d *Destination) writeObject(ctx context.Context, key string, comp compression, fill func(io.Writer) error) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file destination %s: write %s: %w", d.stream, key, err)
	}
	final := filepath.Join(d.root, filepath.FromSlash(key))
	dir := filepath.Dir(final)
	if err := d.ensureDir(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(final)+".*.tmp")
	if err != nil {
		return classify("create", dir, err)
	}
	tmp := f.Name()
	op := "write"
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("file destination %s: write %s: %w", d.stream, key, err)
			} else {
				err = classify(op, final, err)
			}
		}
	}()

	bw, _ := d.bufs.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(f, writeBufferSize)
	} else {
		bw.Reset(f)
	}
	defer func() { bw.Reset(nil); d.bufs.Put(bw) }()
	var w io.Writer = bw
	var zw *gzip.Writer
	if comp == gzipped {
		zw, _ = d.gzs.Get().(*gzip.Writer)
		if zw == nil {
			zw = gzip.NewWriter(bw)
		} else {
			zw.Reset(bw)
		}
		defer func() { zw.Reset(io.Discard); d.gzs.Put(zw) }()
		w = zw
	}
	if err := fill(w); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	op = "fsync"
	if err := f.Sync(); err != nil {
		return err
	}
	op = "close"
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	op = "rename"
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	op = "fsync directory"
	if err := syncDir(dir); err != nil {
		return err
	}
	return nil
}

// ensureDir creates dir (and its parents) and makes the new entries
// durable by fsyncing each created directory's parent.
func (d *Destination) ensureDir(dir string) error {
	d.dirMu.Lock()
	defer d.dirMu.Unlock()
	if _, ok := d.dirs[dir]; ok {
		return nil
	}
	// Find the deepest existing ancestor, so we know which parents to sync.
	var created []string
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return classify("mkdir", dir, &fs.PathError{Op: "mkdir", Path: p, Err: errNotDir})
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return classify("mkdir", dir, err)
		}
		created = append(created, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if len(created) > 0 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return classify("mkdir", dir, err)
		}
		for _, c := range created {
			if err := syncDir(filepath.Dir(c)); err != nil {
				return classify("fsync directory", filepath.Dir(c), err)
			}
		}
	}
	d.dirs[dir] = struct{}{}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// removeStaleTemps deletes the temporary files of this stream that a crash
// left under the output directory. Other streams' files are left alone.
func (d *Destination) removeStaleTemps() error {
	re := regexp.MustCompile(`^\.` + regexp.QuoteMeta(d.stream) + `-` + prefix.StreamVersion +
		`-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.[0-9a-z!\-_.*'()]+)?\.[0-9]+\.tmp$`)
	removed := 0
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".tmp") && re.MatchString(e.Name()) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove stale temporary files under %s: %w", d.root, err)
	}
	if removed > 0 {
		d.log.Info("removed temporary files left by a crash", "count", removed, "path", d.root)
	}
	return nil
}
