// Package backoff is the one exponential backoff Courier's packages share
// for their retry loops (reconnections, pulls, leases, dead-letter sends),
// so that they grow, cap and spread their waits the same way.
//
// It is Courier's own rather than a library's because it is three small
// functions that the public broker.ExponentialBackoff and
// resilience.WithRetry options are built on, and their behaviour is part
// of those packages' documented contract.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Exponential returns the wait after failures failed attempts (1 after the
// first): start, doubled for each failure after the first, capped at limit.
// It does not overflow, however many failures there were.
func Exponential(start, limit time.Duration, failures int) time.Duration {
	d := start
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Jitter returns a wait drawn at random from the upper half of d, so that
// instances that failed together do not retry in step.
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits for d and reports true, or reports false as soon as ctx is
// done.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
