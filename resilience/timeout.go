package resilience

import (
	"context"
	"errors"
	"fmt"
	"time"
)

type timeoutError struct {
	c   *Chain
	err error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("resilience: chain %q: attempt timed out after %v: %v", e.c.name, e.c.timeout, e.err)
}

// Is matches ErrTimeout and context.DeadlineExceeded.
func (e *timeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

func (e *timeoutError) Unwrap() error { return e.err }

// ownDeadlinePassed reports whether tctx ended, or is due to end, because of
// the chain's own timeout rather than the caller's deadline. The clock is
// checked as well as tctx.Err: a transport can report the deadline (a gRPC
// server resetting the stream at its copy of the deadline, say) a moment
// before tctx's own timer fires.
func ownDeadlinePassed(ctx, tctx context.Context) bool {
	if errors.Is(tctx.Err(), context.DeadlineExceeded) {
		return true
	}
	td, _ := tctx.Deadline()
	if pd, ok := ctx.Deadline(); ok && !td.Before(pd) {
		return false // the caller's deadline, not ours
	}
	return !time.Now().Before(td)
}

func timeoutMiddleware[Req, Resp any](c *Chain, spec Spec[Req, Resp], next Endpoint[Req, Resp]) Endpoint[Req, Resp] {
	d, detach := c.timeout, spec.Detach
	return func(ctx context.Context, req Req) (Resp, error) {
		tctx, cancel := context.WithTimeout(ctx, d)
		resp, err := next(tctx, req)
		if err != nil {
			cancel()
			// Ours only if the caller's own context is still alive.
			if ctx.Err() == nil && ownDeadlinePassed(ctx, tctx) {
				c.timedOut()
				return resp, &timeoutError{c: c, err: err}
			}
			return resp, err
		}
		if detach != nil {
			return detach(resp, cancel), nil
		}
		cancel()
		return resp, nil
	}
}
