package runner

import (
	"sync"
	"time"
)

// logLimiter lets one log per key through every interval and counts the
// ones it suppressed in between.
type logLimiter struct {
	every time.Duration

	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

// allow reports whether a log for key may be written now and, if so, how
// many were suppressed since the last one.
func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.last[key]; ok && now.Sub(last) < l.every {
		l.suppressed[key]++
		return false, 0
	}
	n := l.suppressed[key]
	l.last[key] = now
	l.suppressed[key] = 0
	return true, n
}
