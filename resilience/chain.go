package resilience

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Chain holds a configured set of policies. Build it once with NewChain,
// share it between the clients that call one remote service, and apply it
// with Wrap (or through rpc/httpx and rpc/grpcx). A Chain is safe for
// concurrent use.
type Chain struct {
	events
	timeout  time.Duration
	bulkhead *Bulkhead
	breakers *Breakers
	retry    *retryConfig
}

// Option configures a Chain.
type Option func(*chainConfig) error

type chainConfig struct {
	name         string
	observer     Observer
	logger       *slog.Logger
	timeout      time.Duration
	bulkhead     int
	breakers     *Breakers
	breakerOpts  []BreakerOption
	withBreakers bool
	retryOpts    []RetryOption
	withRetry    bool
}

// NewChain builds a Chain from options. Each policy is present only if its
// option is given. Invalid settings (a zero timeout, a negative threshold)
// are refused with an error naming the setting.
func NewChain(opts ...Option) (*Chain, error) {
	cfg := chainConfig{name: "default", observer: NopObserver{}, logger: slog.Default()}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("resilience: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	c := &Chain{
		events:  events{name: cfg.name, observer: cfg.observer, logger: cfg.logger},
		timeout: cfg.timeout,
	}
	if cfg.bulkhead > 0 {
		c.bulkhead = newBulkhead(cfg.bulkhead)
	}
	switch {
	case cfg.breakers != nil:
		c.breakers = cfg.breakers
	case cfg.withBreakers:
		base := []BreakerOption{BreakerName(cfg.name), BreakerObserver(cfg.observer), BreakerLogger(cfg.logger)}
		b, err := NewBreakers(append(base, cfg.breakerOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("resilience: chain %q: %w", cfg.name, err)
		}
		c.breakers = b
	}
	if cfg.withRetry {
		r, err := newRetryConfig(cfg.retryOpts)
		if err != nil {
			return nil, fmt.Errorf("resilience: chain %q: %w", cfg.name, err)
		}
		c.retry = r
	}
	return c, nil
}

// Name returns the chain's name, as given to WithName.
func (c *Chain) Name() string { return c.name }

// Breakers returns the chain's circuit breakers, or nil without
// WithCircuitBreaker or WithBreakers.
func (c *Chain) Breakers() *Breakers { return c.breakers }

// Bulkhead returns the chain's bulkhead, or nil without WithBulkhead.
func (c *Chain) Bulkhead() *Bulkhead { return c.bulkhead }

// Retries reports whether the chain may make more than one attempt.
func (c *Chain) Retries() bool { return c.retry != nil && c.retry.attempts > 1 }

// Timeout returns the per-attempt timeout, or 0 without WithTimeout.
func (c *Chain) Timeout() time.Duration { return c.timeout }

// WithName names the chain in metrics and logs (default "default").
func WithName(name string) Option {
	return func(c *chainConfig) error {
		if name == "" {
			return errors.New("resilience: WithName: empty name")
		}
		c.name = name
		return nil
	}
}

// WithObserver reports the policies' events to o.
func WithObserver(o Observer) Option {
	return func(c *chainConfig) error {
		if o == nil {
			return errors.New("resilience: WithObserver: nil observer")
		}
		c.observer = o
		return nil
	}
}

// WithLogger logs breaker transitions (and, at debug level, rejections,
// retries and fallbacks) to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *chainConfig) error {
		if l == nil {
			return errors.New("resilience: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithTimeout bounds each attempt to d: the attempt's context is cancelled
// when d has passed, and the attempt fails with an error wrapping
// ErrTimeout and context.DeadlineExceeded.
func WithTimeout(d time.Duration) Option {
	return func(c *chainConfig) error {
		if d <= 0 {
			return fmt.Errorf("resilience: WithTimeout: timeout must be positive, got %v", d)
		}
		c.timeout = d
		return nil
	}
}

// WithBulkhead allows at most max outstanding attempts; an attempt beyond
// that fails at once with ErrBulkheadFull.
func WithBulkhead(max int) Option {
	return func(c *chainConfig) error {
		if max < 1 {
			return fmt.Errorf("resilience: WithBulkhead: maximum outstanding calls must be at least 1, got %d", max)
		}
		c.bulkhead = max
		return nil
	}
}

// WithCircuitBreaker gives the chain a registry of circuit breakers, one
// per key (see Spec.Key), configured by opts.
func WithCircuitBreaker(opts ...BreakerOption) Option {
	return func(c *chainConfig) error {
		if c.breakers != nil {
			return errors.New("resilience: WithCircuitBreaker and WithBreakers are exclusive")
		}
		c.withBreakers = true
		c.breakerOpts = opts
		return nil
	}
}

// WithBreakers makes the chain use an existing registry of breakers, shared
// with other chains or with a balancer. Its transitions and rejections are
// reported to the registry's own observer and logger (BreakerObserver,
// BreakerLogger), not the chain's.
func WithBreakers(b *Breakers) Option {
	return func(c *chainConfig) error {
		if b == nil {
			return errors.New("resilience: WithBreakers: nil breakers")
		}
		if c.withBreakers {
			return errors.New("resilience: WithCircuitBreaker and WithBreakers are exclusive")
		}
		c.breakers = b
		return nil
	}
}

// WithRetry retries failed idempotent calls, configured by opts.
func WithRetry(opts ...RetryOption) Option {
	return func(c *chainConfig) error {
		c.withRetry = true
		c.retryOpts = opts
		return nil
	}
}
