package disk

import (
	"sync"
	"unsafe"

	"github.com/sluice-dev/sluice/pipeline"
)

// readBufs recycles the data buffers of Reads. A Read's records alias the
// buffers it filled (caller-owned memory, so that several batches can be
// in flight); Release gives them back once the caller is done, and the
// next Read reuses them instead of allocating (and zeroing) a batch's
// worth of memory again. Records never released are simply garbage
// collected: the lent table is bounded.
//
// The buffers kept for reuse hold at most as many bytes as the largest
// Read asked for (about one batch): more would only be memory held idle,
// which the garbage collector then works against under a memory limit.
type readBufs struct {
	mu        sync.Mutex
	lent      map[*pipeline.Record][][]byte // by the records slice a Read returned
	free      [][]byte
	freeBytes int
	largest   int // the largest buffer taken
}

const (
	// maxLent bounds the Reads remembered for Release (more than a runner
	// keeps in flight).
	maxLent = 4 * 64
	// maxFree bounds the number of buffers kept for reuse.
	maxFree = 8
)

// take returns an empty buffer for a Read that wants want bytes and needs
// at least need: the smallest free one of capacity want or more, else the
// largest free one of capacity need or more (the reader continues in
// another buffer when it fills up), else a new one of capacity want.
func (b *readBufs) take(want, need int) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.largest = max(b.largest, want)
	best := -1
	for i, buf := range b.free {
		switch c := cap(buf); {
		case c < need:
		case best < 0:
			best = i
		case c >= want && (cap(b.free[best]) < want || c < cap(b.free[best])):
			best = i // fits, and smaller than the best that fits
		case cap(b.free[best]) < want && c > cap(b.free[best]):
			best = i // nothing fits yet: the largest
		}
	}
	if best < 0 {
		return make([]byte, 0, want)
	}
	buf := b.free[best]
	b.free = append(b.free[:best], b.free[best+1:]...)
	b.freeBytes -= cap(buf)
	return buf[:0]
}

// give puts buffers no record aliases back for reuse, as far as the bound
// allows (the others are left to the garbage collector).
func (b *readBufs) give(bufs [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, buf := range bufs {
		if len(b.free) < maxFree && b.freeBytes+cap(buf) <= b.largest {
			b.free = append(b.free, buf)
			b.freeBytes += cap(buf)
		}
	}
}

// lend records that recs alias bufs.
func (b *readBufs) lend(recs []pipeline.Record, bufs [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lent == nil {
		b.lent = map[*pipeline.Record][][]byte{}
	}
	if len(b.lent) >= maxLent {
		for k := range b.lent { // forget one: its buffers are left to the GC
			delete(b.lent, k)
			break
		}
	}
	b.lent[unsafe.SliceData(recs)] = bufs
}

// release takes back the buffers of the Read that returned recs.
func (b *readBufs) release(recs []pipeline.Record) {
	if len(recs) == 0 {
		return
	}
	b.mu.Lock()
	bufs, ok := b.lent[unsafe.SliceData(recs)]
	delete(b.lent, unsafe.SliceData(recs))
	b.mu.Unlock()
	if ok {
		b.give(bufs)
	}
}

// Release gives back the memory of the records one Read returned (the
// slice exactly as returned), once neither they nor their Data are used
// any more; the next Reads reuse it.
func (l *Log) Release(recs []pipeline.Record) { l.bufs.release(recs) }
