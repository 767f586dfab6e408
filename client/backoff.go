package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential backoff with jitter: the n-th delay (from
// zero) is drawn from [d/2, d] with d = min(initial·2ⁿ, max), so retries of
// many clients spread out instead of arriving together. Not safe for
// concurrent use; each loop owns its own.
type backoff struct {
	initial, max time.Duration
	n            int
}

// next answers the next delay and advances.
func (b *backoff) next() time.Duration {
	d := b.initial
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	if d < b.max {
		b.n++
	}
	return d/2 + rand.N(d/2+1)
}

// reset starts again from the initial delay, after a success.
func (b *backoff) reset() { b.n = 0 }

// jitter answers d changed by a random amount of up to ±frac of it.
func jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 - frac + 2*frac*rand.Float64()))
}

// sleep waits for d, or until ctx is done, and reports whether the full wait
// ended normally.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
