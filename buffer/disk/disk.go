package disk

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/disk/vfs"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

// Defaults for zero Options fields.
const (
	DefaultSegmentBytes    = 64 << 20
	DefaultMaxBytes        = 1 << 30
	DefaultMaxPendingBytes = 32 << 20
	DefaultReadChunkBytes  = 1 << 20
	DefaultMinFreeBytes    = 64 << 20
	DefaultReopenBackoff   = time.Second
	maxReopenBackoff       = time.Minute
)

// Options configure a stream's log.
type Options struct {
	// Dir is the stream's directory; it is created if missing.
	Dir string
	// Stream names the stream in metrics and logs.
	Stream string
	// MaxBytes is the quota: frame bytes of undelivered records (appended
	// and not committed). Default DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started.
	// Default DefaultSegmentBytes.
	SegmentBytes int64
	// Durability is buffer.DurabilityFsync (default) or buffer.DurabilityOS.
	Durability buffer.Durability
	// MaxPendingBytes bounds the encoded bytes handed to the writer and
	// not yet written: an Append that would exceed it waits (with its
	// context) for the writer to catch up. Default DefaultMaxPendingBytes.
	MaxPendingBytes int64
	// ReadChunkBytes is the size of each ReadAt done by Read.
	// Default DefaultReadChunkBytes.
	ReadChunkBytes int
	// MinFreeBytes is the space kept free on the buffer's filesystem:
	// appends that would leave less are refused with pipeline.ErrFull
	// (producers get "Slow down." and retry) instead of filling the disk,
	// so that the cursor can still be written and segments reclaimed once
	// delivery resumes. Default DefaultMinFreeBytes; negative disables the
	// check. Filesystems that cannot tell their free space are not checked.
	MinFreeBytes int64
	// FS is the filesystem (default vfs.OS()).
	FS vfs.FS
	// Metrics, shared by every stream of the process (default: a set that
	// is not registered anywhere).
	Metrics *Metrics
	// Logger (default: discards).
	Logger *slog.Logger
	// Now gives arrival times (default time.Now).
	Now func() time.Time
	// Owner describes this process in the directory's lock file (after its
	// pid), e.g. its listen address, so that a second Open names it.
	Owner string
	// Keys, when set, encrypt every segment written from now on under its
	// current key, and decrypt those written under any key it holds (see
	// seal.go). A segment written under a key it does not hold fails Open,
	// naming the key. Nil, or a keyring without a current key (which only
	// reads): new segments are plain.
	Keys *seal.Keyring
	// Track, when set, keeps the source positions carried by the records'
	// metadata (see Track and Positions).
	Track Track
	// ReopenBackoff is the wait before the log first tries to recover by
	// itself after a failed fsync (see the package doc); it doubles after
	// each failed attempt, up to 64 times itself and at most a minute.
	// Default DefaultReopenBackoff.
	ReopenBackoff time.Duration
}

// segment is one segment file. base never changes; the active (last)
// segment's size is owned by the writer goroutine.
type segment struct {
	base pipeline.Position
	f    vfs.File
	size int64
	c    *seal.Cipher // nil: a plain segment
}

// Log is a durable, segmented buffer.Buffer for one stream.
type Log struct {
	fs       vfs.FS
	dir      string
	stream   string
	maxBytes int64
	segBytes int64
	maxPend  int64
	chunk    int
	fsync    bool
	spacer   vfs.FreeSpacer // nil: free space is not checked
	minFree  int64
	free     atomic.Int64 // bytes free on the filesystem, as last measured
	now      func() time.Time
	log      *slog.Logger
	m        *streamMetrics
	logID    [8]byte
	logHex   string
	notify   chan struct{}
	lock     vfs.Unlocker // nil: the filesystem cannot lock

	// Writer goroutine.
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	pool     sync.Pool // *[]byte encode buffers
	iov      [][]byte
	backoff0 time.Duration
	backoff  time.Duration // the wait after the next failed reopen
	retry    *time.Timer

	mu        sync.Mutex
	closed    bool
	failed    error     // a sync failed: appends are refused until reopen
	nextTry   time.Time // when failed: the next reopen attempt
	queue     []*request
	spare     []*request
	tail      pipeline.Position // after the last queued record
	head      pipeline.Position // after the last durable record
	committed pipeline.Position
	inflight  []pipeline.BatchID // in log order; replaced, never modified
	pending   int64              // encoded bytes queued or being written
	freed     chan struct{}      // closed (and replaced) when pending shrinks
	segs      []*segment         // by base; the last one is active

	// fmu guards the lifetime of segment files: Read and State hold it
	// shared while they read, segment deletion and Close exclusively to
	// close files.
	fmu sync.RWMutex

	// Read side: one runner.
	rmu      sync.Mutex
	rrecs    []pipeline.Record // scratch, copied out per Read
	unseal   unsealScratch     // scratch of Read, as rrecs
	rsegs    []*segment
	idbuf    []byte
	lastSkip pipeline.Position
	bufs     readBufs // data buffers lent to callers and given back

	omu       sync.Mutex // the cached arrival time of the oldest record
	oldestPos pipeline.Position
	oldest    time.Time

	smu sync.Mutex // serializes cursor file writes

	track     Track
	keys      *seal.Keyring     // not Sealing: plain segments are written
	positions map[string]string // under mu: the tracked values up to head
	pmu       sync.Mutex        // serializes positions file writes
	posSaved  pipeline.Position // under pmu: the position the file covers
}

var _ buffer.Buffer = (*Log)(nil)

const segSuffix = ".seg"

func segName(base pipeline.Position) string { return fmt.Sprintf("%020d%s", uint64(base), segSuffix) }

// Open opens (creating if needed) the log in opts.Dir and recovers it: a
// torn or corrupt tail of the last segment is truncated at the last good
// frame (counted and logged), fully committed segments are deleted.
//
// It creates opts.Dir and its missing parents, syncing the parent of each
// directory it creates, and locks the directory (file "lock", on
// filesystems that can lock) until Close: a second Open of the same
// directory fails with an error wrapping a *LockedError that names the
// holder.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("disk buffer: Options.Dir is empty")
	}
	switch opts.Durability {
	case "", buffer.DurabilityFsync, buffer.DurabilityOS:
	default:
		return nil, fmt.Errorf("disk buffer: unsupported durability %q", opts.Durability)
	}
	l := &Log{
		fs:       opts.FS,
		dir:      opts.Dir,
		stream:   opts.Stream,
		maxBytes: opts.MaxBytes,
		segBytes: opts.SegmentBytes,
		maxPend:  opts.MaxPendingBytes,
		chunk:    opts.ReadChunkBytes,
		fsync:    opts.Durability != buffer.DurabilityOS,
		now:      opts.Now,
		log:      opts.Logger,
		notify:   make(chan struct{}, 1),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		freed:    make(chan struct{}),
		backoff0: opts.ReopenBackoff,
		track:    opts.Track,
		keys:     opts.Keys,
	}
	if l.fs == nil {
		l.fs = vfs.OS()
	}
	if l.maxBytes <= 0 {
		l.maxBytes = DefaultMaxBytes
	}
	if l.segBytes <= 0 {
		l.segBytes = DefaultSegmentBytes
	}
	switch {
	case opts.MinFreeBytes == 0:
		l.minFree = DefaultMinFreeBytes
	case opts.MinFreeBytes > 0:
		l.minFree = opts.MinFreeBytes
	}
	if sp, ok := l.fs.(vfs.FreeSpacer); ok && l.minFree > 0 {
		l.spacer = sp
	}
	if l.maxPend <= 0 {
		l.maxPend = DefaultMaxPendingBytes
	}
	if l.chunk <= 0 {
		l.chunk = DefaultReadChunkBytes
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.backoff0 <= 0 {
		l.backoff0 = DefaultReopenBackoff
	}
	l.backoff = l.backoff0
	l.log = l.log.With("stream", opts.Stream, "dir", opts.Dir)
	if opts.Metrics == nil {
		opts.Metrics = newMetrics()
	}
	l.m = opts.Metrics.forStream(opts.Stream)
	if err := l.open(opts.Owner); err != nil {
		l.closeFiles()
		if l.lock != nil {
			_ = l.lock.Unlock()
		}
		return nil, fmt.Errorf("disk buffer %s: open %s: %w", opts.Stream, opts.Dir, err)
	}
	l.m.segments.Set(float64(len(l.segs)))
	l.m.healthy.Set(1)
	l.measureFree()
	l.retry = time.NewTimer(time.Hour)
	l.retry.Stop()
	go l.writer()
	return l, nil
}

// open makes and locks the directory, then recovers the log.
func (l *Log) open(owner string) error {
	if err := makeDirs(l.fs, l.dir); err != nil {
		return err
	}
	if lk, ok := l.fs.(vfs.Locker); ok {
		u, err := lk.Lock(filepath.Join(l.dir, lockName), owner)
		if err != nil {
			return err
		}
		l.lock = u
	}
	return l.recover()
}

// makeDirs creates dir and its missing parents and syncs the parent of
// every directory it created, so that they survive a power loss before
// anything in them is acknowledged.
func makeDirs(fsys vfs.FS, dir string) error {
	created, err := fsys.MkdirAll(dir, 0o755)
	if err != nil {
		return err
	}
	for i := len(created) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(created[i])); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) closeFiles() {
	for _, s := range l.segs {
		_ = s.f.Close()
	}
}

// Close answers pending appends (their groups are written first), stops the
// writer goroutine, closes the files and releases the directory's lock.
// Closing twice is harmless.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	// Lock order: smu, rmu, fmu, mu.
	l.smu.Lock()
	l.rmu.Lock()
	l.fmu.Lock()
	l.mu.Lock()
	l.closeFiles()
	l.segs = nil
	l.mu.Unlock()
	l.fmu.Unlock()
	l.rmu.Unlock()
	l.smu.Unlock()
	l.m.healthy.Set(0)
	if l.lock != nil {
		if err := l.lock.Unlock(); err != nil {
			return fmt.Errorf("disk buffer %s: close: %w", l.stream, err)
		}
	}
	return nil
}

// Healthy reports nil while the log accepts appends; otherwise why not:
// closed, or a failed fsync it has not recovered from yet. It does no I/O.
func (l *Log) Healthy() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("disk buffer %s: %w", l.stream, pipeline.ErrClosed)
	}
	return l.failed
}

// Notify returns the channel signalled after appends become readable.
func (l *Log) Notify() <-chan struct{} { return l.notify }

// measureFree records the free space of the buffer's filesystem, which
// enqueue compares with MinFreeBytes. A failed measurement keeps the last
// value (and is logged once per failure streak by the caller's context).
func (l *Log) measureFree() {
	if l.spacer == nil {
		return
	}
	free, err := l.spacer.FreeBytes(l.dir)
	if err != nil {
		l.log.Warn("disk buffer: measuring free space", "err", err)
		return
	}
	l.free.Store(free)
}
