package firehoseapi

import (
	"context"
	"errors"
	"testing"
)

func TestByteLimiter(t *testing.T) {
	l := newByteLimiter(100)
	queued := make(chan int64, 3)
	l.queued = func(n int64) { queued <- n }
	ctx := context.Background()
	if err := l.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	// A request bigger than the whole budget is capped (to 100), so it can
	// run alone; it waits while 60 bytes are held.
	got := make(chan int, 3)
	go func() {
		if err := l.acquire(ctx, 1000); err == nil {
			got <- 1000
		}
	}()
	if n := <-queued; n != 100 {
		t.Fatalf("queued %d, want the big request capped to 100", n)
	}
	// FIFO: a small request that would fit (60+10 <= 100) queues behind
	// the big one instead of being granted.
	go func() {
		if err := l.acquire(ctx, 10); err == nil {
			got <- 10
		}
	}()
	select {
	case n := <-got:
		t.Fatalf("acquired %d while 60 of 100 bytes are held and a request waits", n)
	case n := <-queued:
		if n != 10 {
			t.Fatalf("queued %d, want 10", n)
		}
	}
	// A waiter whose context ends gets an error and leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	cerr := make(chan error, 1)
	go func() { cerr <- l.acquire(cctx, 50) }()
	if n := <-queued; n != 50 {
		t.Fatalf("queued %d, want 50", n)
	}
	cancel()
	if err := <-cerr; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a cancelled context: %v", err)
	}
	l.mu.Lock()
	used, waiting := l.used, l.waiters.Len()
	l.mu.Unlock()
	if used != 60 || waiting != 2 {
		t.Fatalf("after the cancelled waiter left: %d bytes used, %d waiters; want 60 and 2", used, waiting)
	}
	l.release(60)
	if n := <-got; n != 1000 {
		t.Fatalf("first grant %d, want the big request (FIFO)", n)
	}
	l.release(1000)
	if n := <-got; n != 10 {
		t.Fatalf("second grant %d", n)
	}
	l.release(10)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used != 0 || l.waiters.Len() != 0 {
		t.Fatalf("used %d, %d waiters", l.used, l.waiters.Len())
	}
}
