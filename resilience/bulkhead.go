package resilience

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/failsafe-go/failsafe-go/bulkhead"
)

// Bulkhead bounds the number of outstanding calls. A call beyond the
// bound fails at once with ErrBulkheadFull: it does not queue.
type Bulkhead struct {
	max    int
	inUse  atomic.Int64
	permit bulkhead.Bulkhead[any]
}

// NewBulkhead builds a standalone bulkhead of max permits, for servers
// that limit concurrent requests; a Chain builds its own with WithBulkhead.
func NewBulkhead(max int) (*Bulkhead, error) {
	if max < 1 {
		return nil, fmt.Errorf("resilience: bulkhead: maximum outstanding calls must be at least 1, got %d", max)
	}
	return newBulkhead(max), nil
}

func newBulkhead(max int) *Bulkhead {
	return &Bulkhead{max: max, permit: bulkhead.New[any](uint(max))}
}

// Max returns the maximum number of outstanding calls.
func (b *Bulkhead) Max() int { return b.max }

// InUse returns the number of outstanding calls now.
func (b *Bulkhead) InUse() int { return int(b.inUse.Load()) }

// Acquire takes a permit, or returns ErrBulkheadFull (preallocated) at
// once. A caller given a permit must call Release.
func (b *Bulkhead) Acquire() error {
	if !b.permit.TryAcquirePermit() {
		return ErrBulkheadFull
	}
	b.inUse.Add(1)
	return nil
}

// Release returns a permit taken by Acquire.
func (b *Bulkhead) Release() {
	b.inUse.Add(-1)
	b.permit.ReleasePermit()
}

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
