package pipeline

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the delay before retry n (0-based) with full jitter: a random
// duration in [0, min(max, base·2ⁿ)], the AWS architecture blog's
// recommendation, so that retrying clients spread out.
func Backoff(base, max time.Duration, n int) time.Duration {
	ceil := base
	for i := 0; i < n && ceil < max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, max)
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// Sleep waits d, or less if ctx ends first (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
