package firehoseapi

import (
	"testing"
	"time"
)

// TestLimiter: a bucket holds one second's worth, refills continuously,
// admits a prefix of a batch, and a request without a request token gets
// nothing.
func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(Quota{RecordsPerSecond: 10, RequestsPerSecond: 3, BytesPerSecond: 100})
	l.now = func() time.Time { return now }
	size := func(int) int { return 5 }
	if n := l.admit(size, 8); n != 8 {
		t.Fatalf("first batch: %d of 8", n)
	}
	if n := l.admit(size, 8); n != 2 {
		t.Fatalf("second batch: %d, want the 2 records left", n)
	}
	now = now.Add(500 * time.Millisecond) // 5 records, 1.5 requests, 50 bytes back: 5, 1.5, 100
	if n := l.admit(func(int) int { return 30 }, 5); n != 3 {
		t.Fatalf("after half a second, 30-byte records: %d, want 3 (the bytes run out)", n)
	}
	if n := l.admit(size, 1); n != 1 { // the last whole request token (1.5 left)
		t.Fatalf("the fourth request: %d", n)
	}
	if n := l.admit(size, 1); n != 0 { // 0.5 left
		t.Fatalf("without a request token: %d", n)
	}
	now = now.Add(time.Hour)
	if n := l.admit(size, 50); n != 10 {
		t.Fatalf("after an hour: %d, want a second's worth (10)", n)
	}
	free := newLimiter(Quota{BytesPerSecond: 1 << 20})
	if n := free.admit(size, 500); n != 500 {
		t.Fatalf("records and requests unlimited: %d", n)
	}
}
