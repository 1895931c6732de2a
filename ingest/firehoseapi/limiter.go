package firehoseapi

import (
	"container/list"
	"context"
	"fmt"
	"sync"
)

// byteLimiter bounds the request bytes held by put calls in progress (body
// plus decoded data), so memory does not grow with the number of clients:
// a weighted semaphore, first come first served. Weighing by bytes rather
// than counting requests lets thousands of small PutRecord calls wait for
// the same group commit while a few 6 MiB batches still fit.
type byteLimiter struct {
	mu      sync.Mutex
	size    int64
	used    int64
	waiters list.List // of *waiter
	// queued, when set (by tests), is called with the weight of each
	// request that has to wait, once it is queued (l.mu is held).
	queued func(n int64)
}

type waiter struct {
	n     int64
	ready chan struct{}
}

func newByteLimiter(size int64) *byteLimiter { return &byteLimiter{size: size} }

// acquire takes n bytes (at most the limiter's size), waiting until they
// are free or ctx is done.
func (l *byteLimiter) acquire(ctx context.Context, n int64) error {
	n = min(n, l.size)
	l.mu.Lock()
	if l.size-l.used >= n && l.waiters.Len() == 0 {
		l.used += n
		l.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	elem := l.waiters.PushBack(w)
	if l.queued != nil {
		l.queued(n)
	}
	l.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: give it back.
			l.used -= n
			l.notify()
		default:
			l.waiters.Remove(elem)
			l.notify() // a large waiter leaving may unblock smaller ones
		}
		l.mu.Unlock()
		return fmt.Errorf("waiting for request memory: %w", ctx.Err())
	}
}

// release returns n bytes taken by acquire.
func (l *byteLimiter) release(n int64) {
	n = min(n, l.size)
	l.mu.Lock()
	l.used -= n
	l.notify()
	l.mu.Unlock()
}

// notify grants waiters in order while they fit. l.mu is held.
func (l *byteLimiter) notify() {
	for {
		front := l.waiters.Front()
		if front == nil {
			return
		}
		w := front.Value.(*waiter)
		if l.size-l.used < w.n {
			return
		}
		l.used += w.n
		l.waiters.Remove(front)
		close(w.ready)
	}
}
