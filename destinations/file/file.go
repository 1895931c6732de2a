// Package file is a destination that writes a stream's batches as objects in
// a local directory, with Amazon Data Firehose's S3 object layout:
//
//	<prefix>yyyy/MM/dd/HH/<stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>[.gz]
//
// The time path and the timestamp in the name are the UTC arrival time of
// the oldest record of the batch. The uuid is derived from the stream name
// and the batch identity (pipeline.BatchID), so redelivering a batch after a
// crash overwrites the same object instead of creating a duplicate.
//
// Objects are written atomically: a temporary file ".<object>.<random>.tmp"
// in the object's directory is written through a buffered writer, fsynced,
// renamed into place, and the directory is fsynced. Readers never see a
// partial object; temporary files left by a crash are removed by New.
//
// The destination is also a pipeline.DeadLetterWriter: dead letters are
// written, as newline-delimited Firehose error-record JSON, under
// <error_output_prefix><output-type>/yyyy/MM/dd/HH/.
package file

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// streamVersion is the <stream version> part of object names. Firehose
// increments it on every configuration change; Sluice streams are
// configured from a file and stay at 1.
const streamVersion = "1"

const writeBufferSize = 256 << 10

// streamNameRE is Firehose's DeliveryStreamName pattern.
var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// Destination delivers batches to files. It is safe for concurrent use.
type Destination struct {
	root      string
	stream    string
	prefix    string
	errPrefix string
	comp      compression
	newline   bool
	log       *slog.Logger
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
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Destination{
		root:      filepath.Clean(opts.Path),
		stream:    stream,
		prefix:    opts.Prefix,
		errPrefix: opts.errorPrefix(),
		comp:      comp,
		newline:   opts.AppendNewline,
		log:       logger.With("stream", stream, "destination", "file"),
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

// Deliver writes b as one object. An empty batch writes nothing. Errors are
// classified: a full disk or an I/O error is retryable (see
// pipeline.RetryableError), a path that cannot be created is permanent.
// Deliver is idempotent for a given b.ID: a redelivery replaces the object.
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
	key := d.ObjectKey(b)
	return d.writeObject(ctx, key, d.comp, func(w io.Writer) error {
		for i := range b.Records {
			if i%256 == 255 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if _, err := w.Write(b.Records[i].Data); err != nil {
				return err
			}
			if d.newline {
				if _, err := w.Write(newline); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

var newline = []byte{'\n'}

// ObjectKey returns the slash-separated key, relative to the output
// directory, that Deliver writes b to.
func (d *Destination) ObjectKey(b pipeline.Batch) string {
	oldest := b.Oldest().UTC()
	return d.prefix + timePath(oldest) + objectName(d.stream, oldest, batchUUID(d.stream, "data", b.ID)) + d.comp.ext()
}

// Close stops the destination: it waits for deliveries in progress and
// makes later calls fail with pipeline.ErrClosed. It is idempotent.
func (d *Destination) Close(ctx context.Context) error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	d.closed = true
	return nil
}

func timePath(t time.Time) string { return t.Format("2006/01/02/15/") }

func objectName(stream string, t time.Time, id string) string {
	return stream + "-" + streamVersion + "-" + t.Format("2006-01-02-15-04-05") + "-" + id
}

// batchUUID derives a UUID-shaped name (version 8, RFC 9562 "custom")
// from the stream, the kind of object and the batch identity.
func batchUUID(stream, kind string, id pipeline.BatchID) string {
	h := sha256.Sum256([]byte("sluice/destinations/file\x00" + stream + "\x00" + kind + "\x00" + id.String()))
	u := h[:16]
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:16])
	return string(s[:])
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
	re := regexp.MustCompile(`^\.` + regexp.QuoteMeta(d.stream) + `-` + streamVersion +
		`-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.gz)?\.[0-9]+\.tmp$`)
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
