package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

// State is a circuit breaker's state.
type State int

// Circuit breaker states.
const (
	// Closed lets calls through and counts their failures.
	Closed State = iota
	// Open rejects calls until the open delay has passed.
	Open
	// HalfOpen lets a few probe calls through; they close or reopen it.
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

func stateOf(s circuitbreaker.State) State {
	switch s {
	case circuitbreaker.OpenState:
		return Open
	case circuitbreaker.HalfOpenState:
		return HalfOpen
	}
	return Closed
}

// BreakerOption configures the circuit breakers of a Breakers registry.
type BreakerOption func(*breakerConfig) error

type breakerConfig struct {
	events
	rate      float64
	minCalls  uint
	window    time.Duration
	failures  uint
	of        uint
	delay     time.Duration
	probes    uint
	isFailure func(error) bool
}

// FailureRate opens a breaker when, within the last window, at least
// minCalls calls were made and at least rate (0 < rate <= 1) of them
// failed: a time-windowed threshold. It replaces FailureCount.
func FailureRate(rate float64, minCalls int, window time.Duration) BreakerOption {
	return func(c *breakerConfig) error {
		if !(rate > 0 && rate <= 1) {
			return fmt.Errorf("resilience: FailureRate: rate must be in (0, 1], got %v", rate)
		}
		if minCalls < 1 {
			return fmt.Errorf("resilience: FailureRate: minimum calls must be at least 1, got %d", minCalls)
		}
		if window <= 0 {
			return fmt.Errorf("resilience: FailureRate: window must be positive, got %v", window)
		}
		c.rate, c.minCalls, c.window = rate, uint(minCalls), window
		c.failures, c.of = 0, 0
		return nil
	}
}

// FailureCount opens a breaker when failures of the last of calls failed:
// a count-windowed threshold (FailureCount(5, 5) is five failures in a
// row). It replaces FailureRate.
func FailureCount(failures, of int) BreakerOption {
	return func(c *breakerConfig) error {
		if failures < 1 {
			return fmt.Errorf("resilience: FailureCount: failures must be at least 1, got %d", failures)
		}
		if of < failures {
			return fmt.Errorf("resilience: FailureCount: window of %d calls is smaller than the %d failures", of, failures)
		}
		c.failures, c.of = uint(failures), uint(of)
		c.rate, c.minCalls, c.window = 0, 0, 0
		return nil
	}
}

// OpenDelay is how long an open breaker rejects calls before it half-opens
// (default 5s).
func OpenDelay(d time.Duration) BreakerOption {
	return func(c *breakerConfig) error {
		if d <= 0 {
			return fmt.Errorf("resilience: OpenDelay: delay must be positive, got %v", d)
		}
		c.delay = d
		return nil
	}
}

// HalfOpenProbes is the number of calls a half-open breaker lets through
// (default 1). All must succeed to close it; one failure reopens it.
func HalfOpenProbes(n int) BreakerOption {
	return func(c *breakerConfig) error {
		if n < 1 {
			return fmt.Errorf("resilience: HalfOpenProbes: need at least 1 probe, got %d", n)
		}
		c.probes = uint(n)
		return nil
	}
}

// FailureIf decides which errors count as failures of the remote side. The
// default counts every error except those marked Permanent and
// context.Canceled (the caller gave up). Errors that do not count are
// recorded as successes: the remote side answered.
func FailureIf(f func(error) bool) BreakerOption {
	return func(c *breakerConfig) error {
		if f == nil {
			return errors.New("resilience: FailureIf: nil classifier")
		}
		c.isFailure = f
		return nil
	}
}

// BreakerName names the registry in metrics and logs.
func BreakerName(name string) BreakerOption {
	return func(c *breakerConfig) error {
		if name == "" {
			return errors.New("resilience: BreakerName: empty name")
		}
		c.name = name
		return nil
	}
}

// BreakerObserver reports transitions and rejections to o.
func BreakerObserver(o Observer) BreakerOption {
	return func(c *breakerConfig) error {
		if o == nil {
			return errors.New("resilience: BreakerObserver: nil observer")
		}
		c.observer = o
		return nil
	}
}

// BreakerLogger logs transitions to l instead of slog.Default().
func BreakerLogger(l *slog.Logger) BreakerOption {
	return func(c *breakerConfig) error {
		if l == nil {
			return errors.New("resilience: BreakerLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// DefaultFailure is the default failure classifier: any error except those
// marked Permanent and context.Canceled.
func DefaultFailure(err error) bool {
	return err != nil && !IsPermanent(err) && !errors.Is(err, context.Canceled)
}

// Breakers is a registry of circuit breakers by key: one per remote
// instance, host or method, created on first use with the registry's
// settings. A balancer asks Allow to skip instances whose breaker is open.
type Breakers struct {
	cfg breakerConfig

	mu sync.RWMutex
	m  map[string]*Breaker
}

// NewBreakers builds a registry. Without a threshold option it uses
// FailureRate(0.5, 10, 10*time.Second).
func NewBreakers(opts ...BreakerOption) (*Breakers, error) {
	cfg := breakerConfig{
		events:    events{name: "default", observer: NopObserver{}, logger: slog.Default()},
		rate:      0.5,
		minCalls:  10,
		window:    10 * time.Second,
		delay:     5 * time.Second,
		probes:    1,
		isFailure: DefaultFailure,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("resilience: nil breaker option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Breakers{cfg: cfg, m: map[string]*Breaker{}}, nil
}

// Get returns the breaker of key, creating it closed if needed.
func (b *Breakers) Get(key string) *Breaker {
	b.mu.RLock()
	br := b.m[key]
	b.mu.RUnlock()
	if br != nil {
		return br
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if br = b.m[key]; br == nil {
		br = b.newBreaker(key)
		b.m[key] = br
	}
	return br
}

// State returns the state of key's breaker; a key never used is Closed.
func (b *Breakers) State(key string) State {
	b.mu.RLock()
	br := b.m[key]
	b.mu.RUnlock()
	if br == nil {
		return Closed
	}
	return br.State()
}

// Allow reports, without taking a permit, whether a call to key would be
// let through now: false while its breaker is open and its delay has not
// passed. It is cheap and does not allocate.
func (b *Breakers) Allow(key string) bool {
	b.mu.RLock()
	br := b.m[key]
	b.mu.RUnlock()
	if br == nil {
		return true
	}
	return br.cb.State() != circuitbreaker.OpenState || br.cb.RemainingDelay() == 0
}

// Snapshot returns the state of every breaker by key.
func (b *Breakers) Snapshot() map[string]State {
	b.mu.RLock()
	m := maps.Clone(b.m)
	b.mu.RUnlock()
	out := make(map[string]State, len(m))
	for k, br := range m {
		out[k] = br.State()
	}
	return out
}

// Remove forgets key's breaker (an instance that left the registry).
func (b *Breakers) Remove(key string) {
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
}

func (b *Breakers) newBreaker(key string) *Breaker {
	c := &b.cfg
	builder := circuitbreaker.NewBuilder[any]().WithDelay(c.delay).WithSuccessThreshold(c.probes)
	if c.rate > 0 {
		builder = builder.WithFailureRateThreshold(c.rate, c.minCalls, c.window)
	} else {
		builder = builder.WithFailureThresholdRatio(c.failures, c.of)
	}
	builder = builder.OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
		c.stateChanged(key, stateOf(e.OldState), stateOf(e.NewState))
	})
	return &Breaker{key: key, events: &c.events, isFailure: c.isFailure, cb: builder.Build()}
}

// Breaker is the circuit breaker of one key.
type Breaker struct {
	key       string
	events    *events
	isFailure func(error) bool
	cb        circuitbreaker.CircuitBreaker[any]
}

// Key returns the breaker's key.
func (br *Breaker) Key() string { return br.key }

// State returns the breaker's state.
func (br *Breaker) State() State { return stateOf(br.cb.State()) }

// RemainingDelay returns how long an open breaker keeps rejecting calls.
func (br *Breaker) RemainingDelay() time.Duration { return br.cb.RemainingDelay() }

// Open forces the breaker open (an operator's decision, a drain).
func (br *Breaker) Open() { br.cb.Open() }

// Close forces the breaker closed, with fresh counts.
func (br *Breaker) Close() { br.cb.Close() }

// Acquire asks for a permit: nil, or ErrBreakerOpen (preallocated) while
// the breaker is open or half-open with every probe out. A caller given a
// permit must call Record with the call's outcome.
func (br *Breaker) Acquire() error {
	if br.cb.TryAcquirePermit() {
		return nil
	}
	return ErrBreakerOpen
}

// Record reports the outcome of a permitted call: a failure when err
// counts as one (see FailureIf), a success otherwise.
//
// A rejection by the bulkhead, which sits inside the breaker, is recorded
// as a success: the remote side was not called, and a half-open breaker
// must get its probe permit back.
func (br *Breaker) Record(err error) {
	if err != nil && !errors.Is(err, ErrBulkheadFull) && br.isFailure(err) {
		br.cb.RecordFailure()
	} else {
		br.cb.RecordSuccess()
	}
}

func breakerMiddleware[Req, Resp any](c *Chain, spec Spec[Req, Resp], next Endpoint[Req, Resp]) Endpoint[Req, Resp] {
	breakers, key := c.breakers, spec.Key
	return func(ctx context.Context, req Req) (Resp, error) {
		k := ""
		if key != nil {
			k = key(req)
		}
		br := breakers.Get(k)
		if err := br.Acquire(); err != nil {
			breakers.cfg.rejected(ctx, k, err)
			var zero Resp
			return zero, err
		}
		resp, err := next(ctx, req)
		br.Record(err)
		return resp, err
	}
}
