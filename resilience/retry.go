package resilience

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/courier-go/courier/internal/backoff"
)

// RetryOption configures retries.
type RetryOption func(*retryConfig) error

type retryConfig struct {
	attempts      int
	initial, max  time.Duration
	jitter        float64
	maxRetryAfter time.Duration
	retryIf       func(error) bool
}

// MaxAttempts is the total number of attempts, the first included
// (default 3).
func MaxAttempts(n int) RetryOption {
	return func(c *retryConfig) error {
		if n < 1 {
			return fmt.Errorf("resilience: MaxAttempts: need at least 1 attempt, got %d", n)
		}
		c.attempts = n
		return nil
	}
}

// Backoff waits initial before the first retry and doubles the wait for
// each further one, up to max (default 50ms and 2s).
func Backoff(initial, max time.Duration) RetryOption {
	return func(c *retryConfig) error {
		if initial <= 0 {
			return fmt.Errorf("resilience: Backoff: initial delay must be positive, got %v", initial)
		}
		if max < initial {
			return fmt.Errorf("resilience: Backoff: maximum delay %v is below the initial %v", max, initial)
		}
		c.initial, c.max = initial, max
		return nil
	}
}

// Jitter randomizes each backoff delay d to a value in [d*(1-f), d]
// (default 0.5); 0 turns jitter off, 1 is "full jitter".
func Jitter(f float64) RetryOption {
	return func(c *retryConfig) error {
		if !(f >= 0 && f <= 1) {
			return fmt.Errorf("resilience: Jitter: factor must be in [0, 1], got %v", f)
		}
		c.jitter = f
		return nil
	}
}

// MaxRetryAfter caps the wait a server may ask for (HTTP Retry-After, gRPC
// pushback): a longer one ends the retries and returns the error (default
// 10s). Within the cap the server's delay replaces the backoff.
func MaxRetryAfter(d time.Duration) RetryOption {
	return func(c *retryConfig) error {
		if d <= 0 {
			return fmt.Errorf("resilience: MaxRetryAfter: must be positive, got %v", d)
		}
		c.maxRetryAfter = d
		return nil
	}
}

// RetryIf decides which errors are worth another attempt. Whatever it
// says, rejections by the breaker or the bulkhead, Permanent errors and the
// end of the caller's context are never retried. The default retries every
// other error.
func RetryIf(f func(error) bool) RetryOption {
	return func(c *retryConfig) error {
		if f == nil {
			return errors.New("resilience: RetryIf: nil classifier")
		}
		c.retryIf = f
		return nil
	}
}

func newRetryConfig(opts []RetryOption) (*retryConfig, error) {
	c := &retryConfig{attempts: 3, initial: 50 * time.Millisecond, max: 2 * time.Second,
		jitter: 0.5, maxRetryAfter: 10 * time.Second, retryIf: func(error) bool { return true }}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("resilience: nil retry option")
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// delay returns the wait before retry number n (1-based) after err, and
// false when the server asked for more than maxRetryAfter.
func (c *retryConfig) delay(n int, err error) (time.Duration, bool) {
	if d, ok := RetryAfter(err); ok {
		return d, d <= c.maxRetryAfter
	}
	d := backoff.Exponential(c.initial, c.max, n)
	if c.jitter > 0 {
		d -= time.Duration(rand.Float64() * c.jitter * float64(d))
	}
	return d, true
}

func (c *retryConfig) retryable(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && !Rejected(err) && !IsPermanent(err) && c.retryIf(err)
}

type attemptKey struct{}

// Attempt returns the attempt number (1 for the first) of the call that
// ctx belongs to, for endpoints that must prepare a repeated request (an
// HTTP body to rewind).
func Attempt(ctx context.Context) int {
	if n, ok := ctx.Value(attemptKey{}).(int); ok {
		return n
	}
	return 1
}

func retryMiddleware[Req, Resp any](c *Chain, spec Spec[Req, Resp], next Endpoint[Req, Resp]) Endpoint[Req, Resp] {
	r, idempotent := c.retry, spec.Idempotent
	return func(ctx context.Context, req Req) (Resp, error) {
		resp, err := next(ctx, req)
		if err == nil || !idempotent(req) {
			return resp, err
		}
		for n := 1; n < r.attempts && r.retryable(ctx, err); n++ {
			d, ok := r.delay(n, err)
			if !ok {
				break
			}
			if dl, has := ctx.Deadline(); has && time.Until(dl) < d {
				break // the caller would be gone before the retry starts
			}
			c.retrying(ctx, n, d, err)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return resp, err
			case <-t.C:
			}
			resp, err = next(context.WithValue(ctx, attemptKey{}, n+1), req)
			if err == nil {
				return resp, nil
			}
		}
		return resp, err
	}
}
