package resilience

import (
	"context"
	"errors"
	"fmt"
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

func timeoutMiddleware[Req, Resp any](c *Chain, spec Spec[Req, Resp], next Endpoint[Req, Resp]) Endpoint[Req, Resp] {
	d, detach := c.timeout, spec.Detach
	return func(ctx context.Context, req Req) (Resp, error) {
		tctx, cancel := context.WithTimeout(ctx, d)
		resp, err := next(tctx, req)
		if err != nil {
			cancel()
			// Ours only if the caller's own context is still alive.
			if ctx.Err() == nil && errors.Is(tctx.Err(), context.DeadlineExceeded) {
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
