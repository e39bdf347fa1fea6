package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Resolver turns logical service names into instance sets for clients. For
// each service asked for it runs one watch on the registry and keeps the
// last set it received: when the registry becomes unreachable, clients keep
// the last known instances, and the watch is retried with backoff until the
// registry returns. A Resolver is safe for concurrent use; Close stops its
// watches.
type Resolver struct {
	reg        Registry
	log        *slog.Logger
	retryMin   time.Duration
	retryMax   time.Duration
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	mu         sync.Mutex
	entries    map[string]*entry
	closed     bool
	nextSubKey int
}

// ResolverOption configures a Resolver.
type ResolverOption func(*Resolver) error

// WithLogger sets the logger for watch failures (default slog.Default()).
func WithLogger(l *slog.Logger) ResolverOption {
	return func(r *Resolver) error {
		if l == nil {
			return fmt.Errorf("discovery: nil logger")
		}
		r.log = l
		return nil
	}
}

// WithRetry sets the backoff between attempts to re-open a failed watch:
// from min, doubling up to max (defaults 100ms and 5s).
func WithRetry(min, max time.Duration) ResolverOption {
	return func(r *Resolver) error {
		if min <= 0 || max < min {
			return fmt.Errorf("discovery: retry backoff %v..%v: need 0 < min <= max", min, max)
		}
		r.retryMin, r.retryMax = min, max
		return nil
	}
}

// NewResolver returns a Resolver reading from reg.
func NewResolver(reg Registry, opts ...ResolverOption) (*Resolver, error) {
	if reg == nil {
		return nil, fmt.Errorf("discovery: nil registry")
	}
	r := &Resolver{reg: reg, log: slog.Default(), retryMin: 100 * time.Millisecond, retryMax: 5 * time.Second,
		entries: map[string]*entry{}}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Close stops every watch. Instances and Subscribe fail afterwards.
func (r *Resolver) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}

// Instances returns the service's last known instances, healthy or not,
// sorted by ID. The first call for a service waits, up to ctx, for the
// registry's answer. A service without instances gives an error wrapping
// ErrUnknownService that names it; a registry that has never answered gives
// its error.
func (r *Resolver) Instances(ctx context.Context, service string) ([]Instance, error) {
	e, err := r.entry(service)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("discovery: resolving %q: %w", service, ctx.Err())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.known {
		return nil, fmt.Errorf("discovery: resolving %q: %w", service, e.err)
	}
	if len(e.insts) == 0 {
		return nil, &UnknownServiceError{Service: service}
	}
	return e.insts, nil
}

// Subscribe calls fn with the service's instance set whenever it changes,
// starting with the current one once known, and with an error while the
// registry has never answered. Calls are serialized per service and must
// not block for long. The returned function ends the subscription.
func (r *Resolver) Subscribe(service string, fn func([]Instance, error)) (func(), error) {
	e, err := r.entry(service)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.nextSubKey++
	key := r.nextSubKey
	r.mu.Unlock()
	e.mu.Lock()
	e.subs[key] = fn
	if e.known || e.err != nil {
		// Deliver the current state through the entry's goroutine so that
		// calls stay serialized.
		e.poke()
	}
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		delete(e.subs, key)
		e.mu.Unlock()
	}, nil
}

func (r *Resolver) entry(service string) (*entry, error) {
	if err := ValidateServiceName(service); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("discovery: resolver: %w", ErrClosed)
	}
	if e, ok := r.entries[service]; ok {
		return e, nil
	}
	e := &entry{service: service, ready: make(chan struct{}), subs: map[int]func([]Instance, error){},
		wake: make(chan struct{}, 1)}
	r.entries[service] = e
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.watch(e) }()
	go func() { defer r.wg.Done(); e.notifyLoop(r.ctx) }()
	return e, nil
}

// watch keeps one watch open on the registry, retrying with backoff.
func (r *Resolver) watch(e *entry) {
	backoff := r.retryMin
	for {
		w, err := r.reg.Watch(r.ctx, e.service)
		if err == nil {
			for {
				var insts []Instance
				insts, err = w.Next(r.ctx)
				if err != nil {
					break
				}
				e.set(insts)
				backoff = r.retryMin
			}
			w.Close()
		}
		if r.ctx.Err() != nil {
			return
		}
		e.fail(err)
		r.log.Warn("discovery: watch failed; keeping the last known instances",
			"service", e.service, "retry_in", backoff, "error", err)
		select {
		case <-time.After(backoff):
		case <-r.ctx.Done():
			return
		}
		backoff = min(2*backoff, r.retryMax)
	}
}

type entry struct {
	service string
	ready   chan struct{} // closed at the first set or first error
	wake    chan struct{} // signals notifyLoop
	mu      sync.Mutex
	insts   []Instance
	known   bool
	err     error
	subs    map[int]func([]Instance, error)
}

func (e *entry) set(insts []Instance) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.known && slices.EqualFunc(insts, e.insts, Equal) {
		return
	}
	e.insts, e.known, e.err = insts, true, nil
	e.markReady()
	e.poke()
}

func (e *entry) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.known {
		return // keep serving the last known set
	}
	e.err = err
	e.markReady()
	e.poke()
}

func (e *entry) markReady() {
	select {
	case <-e.ready:
	default:
		close(e.ready)
	}
}

func (e *entry) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// notifyLoop delivers the latest state to subscribers, coalescing updates.
func (e *entry) notifyLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		}
		e.mu.Lock()
		insts, known, err := e.insts, e.known, e.err
		subs := make([]func([]Instance, error), 0, len(e.subs))
		for _, fn := range e.subs {
			subs = append(subs, fn)
		}
		e.mu.Unlock()
		if !known && err == nil {
			continue
		}
		for _, fn := range subs {
			if known {
				fn(insts, nil)
			} else {
				fn(nil, fmt.Errorf("discovery: resolving %q: %w", e.service, err))
			}
		}
	}
}

// Equal reports whether two instances are the same registration in the same
// state.
func Equal(a, b Instance) bool {
	return a.Service == b.Service && a.ID == b.ID && a.Address == b.Address && a.Version == b.Version &&
		a.Unhealthy == b.Unhealthy && mapsEqual(a.Metadata, b.Metadata)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// SortByID sorts instances by ID, as Registry and Watcher results are.
func SortByID(insts []Instance) {
	slices.SortFunc(insts, func(a, b Instance) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
}
