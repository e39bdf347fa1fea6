package resilience

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Bulkhead bounds the number of outstanding calls. A call beyond the
// bound fails at once with ErrBulkheadFull: it does not queue.
type Bulkhead struct {
	max   int64
	inUse atomic.Int64
}

// NewBulkhead builds a standalone bulkhead of max permits, for servers
// that limit concurrent requests; a Chain builds its own with WithBulkhead.
func NewBulkhead(max int) (*Bulkhead, error) {
	if max < 1 {
		return nil, fmt.Errorf("resilience: bulkhead: maximum outstanding calls must be at least 1, got %d", max)
	}
	return newBulkhead(max), nil
}

func newBulkhead(max int) *Bulkhead { return &Bulkhead{max: int64(max)} }

// Max returns the maximum number of outstanding calls.
func (b *Bulkhead) Max() int { return int(b.max) }

// InUse returns the number of outstanding calls now.
func (b *Bulkhead) InUse() int { return int(b.inUse.Load()) }

// Acquire takes a permit, or returns ErrBulkheadFull (preallocated) at
// once. A caller given a permit must call Release.
func (b *Bulkhead) Acquire() error {
	for {
		n := b.inUse.Load()
		if n >= b.max {
			return ErrBulkheadFull
		}
		if b.inUse.CompareAndSwap(n, n+1) {
			return nil
		}
	}
}

// Release returns a permit taken by Acquire.
func (b *Bulkhead) Release() { b.inUse.Add(-1) }

func bulkheadMiddleware[Req, Resp any](c *Chain, spec Spec[Req, Resp], next Endpoint[Req, Resp]) Endpoint[Req, Resp] {
	b, key := c.bulkhead, spec.Key
	return func(ctx context.Context, req Req) (Resp, error) {
		if err := b.Acquire(); err != nil {
			k := ""
			if key != nil {
				k = key(req)
			}
			c.rejected(ctx, k, err)
			var zero Resp
			return zero, err
		}
		defer b.Release()
		return next(ctx, req)
	}
}
