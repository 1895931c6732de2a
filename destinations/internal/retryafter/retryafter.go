// Package retryafter reads HTTP Retry-After headers (RFC 9110 §10.2.3),
// which destinations turn into pipeline.RetryableError.After.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Max bounds the delay a server may ask for.
const Max = 24 * time.Hour

// Parse reads a Retry-After value: delay-seconds or an HTTP date, at most
// Max. An empty, invalid or past value gives 0.
func Parse(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(Max/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), Max)
	}
	return 0
}
