package firehoseapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestByteLimiter(t *testing.T) {
	l := newByteLimiter(100)
	ctx := context.Background()
	if err := l.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	// A request bigger than the whole budget is capped, so it can run alone.
	got := make(chan int, 3)
	go func() {
		if err := l.acquire(ctx, 1000); err == nil {
			got <- 1000
		}
	}()
	time.Sleep(10 * time.Millisecond)
	// FIFO: a small request queued behind the big one waits for it.
	go func() {
		if err := l.acquire(ctx, 10); err == nil {
			got <- 10
		}
	}()
	select {
	case n := <-got:
		t.Fatalf("acquired %d while 60 of 100 bytes are held", n)
	case <-time.After(20 * time.Millisecond):
	}
	// A waiter whose context ends gets an error and leaves the queue.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := l.acquire(cctx, 50); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire with expired context: %v", err)
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
