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
type readBufs struct {
	mu   sync.Mutex
	lent map[*pipeline.Record][][]byte // by the records slice a Read returned
	free [][]byte
}

const (
	// maxLent bounds the Reads remembered for Release (more than a runner
	// keeps in flight).
	maxLent = 4 * 64
	// maxFree bounds the buffers kept for reuse.
	maxFree = 4
)

// take returns an empty buffer of capacity at least n.
func (b *readBufs) take(n int) []byte {
	b.mu.Lock()
	for i := len(b.free) - 1; i >= 0; i-- {
		if buf := b.free[i]; cap(buf) >= n {
			b.free = append(b.free[:i], b.free[i+1:]...)
			b.mu.Unlock()
			return buf[:0]
		}
	}
	b.mu.Unlock()
	return make([]byte, 0, n)
}

// give puts buffers no record aliases back for reuse.
func (b *readBufs) give(bufs [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, buf := range bufs {
		if len(b.free) < maxFree {
			b.free = append(b.free, buf)
			continue
		}
		// Keep the largest: they serve every smaller Read.
		smallest := 0
		for i := range b.free {
			if cap(b.free[i]) < cap(b.free[smallest]) {
				smallest = i
			}
		}
		if cap(buf) > cap(b.free[smallest]) {
			b.free[smallest] = buf
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
