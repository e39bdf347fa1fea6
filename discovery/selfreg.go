package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Check reports an instance's health: nil when healthy.
type Check func(ctx context.Context) error

// SelfRegistrar is the self-registration pattern: a service instance
// registers itself when it starts, keeps its lease alive, marks itself
// unhealthy while its health check fails (clients then skip it without the
// registration churning), re-registers when its lease is lost (e.g. after a
// registry outage longer than the TTL), and deregisters on graceful
// shutdown, so that clients stop calling it before it goes away.
//
//	sr, _ := discovery.NewSelfRegistrar(reg, inst, discovery.WithCheck(check, 2*time.Second))
//	go sr.Run(ctx) // until ctx ends (SIGTERM), then deregisters
type SelfRegistrar struct {
	reg        Registry
	inst       Instance
	regOpts    []RegisterOption
	check      Check
	interval   time.Duration
	timeout    time.Duration
	retry      time.Duration
	log        *slog.Logger
	registered chan struct{}
	once       sync.Once

	mu      sync.Mutex
	healthy bool
}

// SelfOption configures a SelfRegistrar.
type SelfOption func(*SelfRegistrar) error

// WithCheck runs check every interval (with a timeout of interval) and marks
// the instance unhealthy while it fails. Without it the instance is always
// healthy.
func WithCheck(check Check, interval time.Duration) SelfOption {
	return func(s *SelfRegistrar) error {
		if check == nil || interval <= 0 {
			return errors.New("discovery: WithCheck needs a check and a positive interval")
		}
		s.check, s.interval, s.timeout = check, interval, interval
		return nil
	}
}

// WithRegisterOptions passes options (TTL, heartbeat) to every Register.
func WithRegisterOptions(opts ...RegisterOption) SelfOption {
	return func(s *SelfRegistrar) error {
		if _, err := RegisterSettings(opts...); err != nil {
			return err
		}
		s.regOpts = append(s.regOpts, opts...)
		return nil
	}
}

// WithRetryInterval sets the pause between failed registration attempts
// (default 1s).
func WithRetryInterval(d time.Duration) SelfOption {
	return func(s *SelfRegistrar) error {
		if d <= 0 {
			return fmt.Errorf("discovery: retry interval %v must be positive", d)
		}
		s.retry = d
		return nil
	}
}

// WithSelfLogger sets the logger (default slog.Default()).
func WithSelfLogger(l *slog.Logger) SelfOption {
	return func(s *SelfRegistrar) error {
		if l == nil {
			return errors.New("discovery: nil logger")
		}
		s.log = l
		return nil
	}
}

// NewSelfRegistrar validates inst and the options.
func NewSelfRegistrar(reg Registry, inst Instance, opts ...SelfOption) (*SelfRegistrar, error) {
	if reg == nil {
		return nil, errors.New("discovery: nil registry")
	}
	if err := inst.Validate(); err != nil {
		return nil, fmt.Errorf("discovery: self-registration: %w", err)
	}
	s := &SelfRegistrar{reg: reg, inst: inst.Clone(), retry: time.Second, log: slog.Default(),
		registered: make(chan struct{}), healthy: true}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Registered is closed once the instance has been registered the first time.
func (s *SelfRegistrar) Registered() <-chan struct{} { return s.registered }

// Healthy reports the last health check's verdict.
func (s *SelfRegistrar) Healthy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.healthy
}

// Run registers the instance and keeps it registered until ctx ends, then
// deregisters it (waiting up to 5 seconds) and returns nil. It returns an
// error only when the registry refuses the instance itself.
func (s *SelfRegistrar) Run(ctx context.Context) error {
	var ticks <-chan time.Time
	if s.check != nil {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		ticks = t.C
		s.runCheck(ctx)
	}
	for {
		lease, err := s.register(ctx)
		if err != nil {
			return err
		}
		if lease == nil {
			return nil // ctx ended
		}
		s.once.Do(func() { close(s.registered) })
		lost := s.keep(ctx, lease, ticks)
		if !lost {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := lease.Deregister(dctx); err != nil {
				s.log.Warn("discovery: deregistration failed; the registration expires after its TTL",
					"instance", s.inst.String(), "error", err)
			}
			return nil
		}
	}
}

// register registers until it succeeds, ctx ends (nil, nil) or the
// instance is refused.
func (s *SelfRegistrar) register(ctx context.Context) (Lease, error) {
	for {
		inst := s.inst.Clone()
		inst.Unhealthy = !s.Healthy()
		lease, err := s.reg.Register(ctx, inst, s.regOpts...)
		switch {
		case err == nil:
			s.log.Info("discovery: registered", "instance", inst.String(), "healthy", inst.Healthy())
			return lease, nil
		case errors.Is(err, ErrInvalidInstance) || errors.Is(err, ErrReadOnly) || errors.Is(err, ErrClosed):
			return nil, fmt.Errorf("discovery: self-registration of %s: %w", inst, err)
		case ctx.Err() != nil:
			return nil, nil
		}
		s.log.Warn("discovery: registration failed; retrying", "instance", inst.String(), "retry_in", s.retry, "error", err)
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(s.retry):
		}
	}
}

// keep watches the lease and runs the checks; it reports whether the lease
// was lost (false: ctx ended).
func (s *SelfRegistrar) keep(ctx context.Context, lease Lease, ticks <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-lease.Done():
			s.log.Warn("discovery: registration lost; registering again", "instance", s.inst.String(), "error", lease.Err())
			return true
		case <-ticks:
			before := s.Healthy()
			s.runCheck(ctx)
			if now := s.Healthy(); now != before && ctx.Err() == nil {
				inst := lease.Instance()
				inst.Unhealthy = !now
				if err := lease.Update(ctx, inst); err != nil {
					s.log.Warn("discovery: publishing health failed", "instance", inst.String(), "healthy", now, "error", err)
					s.setHealthy(before) // try again at the next tick
				} else {
					s.log.Info("discovery: health changed", "instance", inst.String(), "healthy", now)
				}
			}
		}
	}
}

func (s *SelfRegistrar) runCheck(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.check(cctx)
	if err != nil && ctx.Err() == nil {
		s.log.Debug("discovery: health check failed", "instance", s.inst.String(), "error", err)
	}
	if ctx.Err() == nil {
		s.setHealthy(err == nil)
	}
}

func (s *SelfRegistrar) setHealthy(h bool) {
	s.mu.Lock()
	s.healthy = h
	s.mu.Unlock()
}
