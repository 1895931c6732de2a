package firehoseapi

import (
	"sync"
	"time"
)

// Quota is a stream's Firehose Direct PUT quota: records, requests and
// bytes per second, each a token bucket holding one second's worth
// (zero: not limited). Calls over it are throttled as Firehose throttles
// them: PutRecordBatch answers 200 with "Slow down." for the records over
// it, PutRecord answers 503; both count in ThrottledRecords.
type Quota struct {
	RecordsPerSecond  float64
	RequestsPerSecond float64
	BytesPerSecond    float64
}

func (q Quota) isZero() bool { return q == Quota{} }

// bucket is a token bucket of rate tokens a second, holding at most one
// second's worth; a zero rate never runs out.
type bucket struct {
	rate, tokens float64
	last         time.Time
}

func (b *bucket) refill(now time.Time) {
	if b.rate == 0 {
		return
	}
	if !b.last.IsZero() {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
}

func (b *bucket) has(n float64) bool { return b.rate == 0 || b.tokens >= n }

func (b *bucket) take(n float64) {
	if b.rate != 0 {
		b.tokens -= n
	}
}

// limiter is one stream's quota state.
type limiter struct {
	mu               sync.Mutex
	recs, reqs, size bucket
	now              func() time.Time
}

func newLimiter(q Quota) *limiter {
	l := &limiter{now: time.Now}
	l.recs = bucket{rate: q.RecordsPerSecond, tokens: q.RecordsPerSecond}
	l.reqs = bucket{rate: q.RequestsPerSecond, tokens: q.RequestsPerSecond}
	l.size = bucket{rate: q.BytesPerSecond, tokens: q.BytesPerSecond}
	return l
}

// admit takes a request and as many of its records (sizes, in order) as
// the quota allows now, and returns how many: the records after the
// first one over the quota are all refused, so what is accepted is a
// prefix. With no request token left, none is.
func (l *limiter) admit(sizes func(i int) int, n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.recs.refill(now)
	l.reqs.refill(now)
	l.size.refill(now)
	if !l.reqs.has(1) {
		return 0
	}
	l.reqs.take(1)
	for i := 0; i < n; i++ {
		b := float64(sizes(i))
		if !l.recs.has(1) || !l.size.has(b) {
			return i
		}
		l.recs.take(1)
		l.size.take(b)
	}
	return n
}
