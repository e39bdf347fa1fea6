// Package memory is an in-process discovery.Registry: the default for a
// single process and for tests. It behaves like the networked registries:
// registrations are leases that expire when their heartbeats stop, so
// failover works the same way.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/courier-go/courier/discovery"
)

// Registry is an in-memory discovery.Registry, safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	services map[string]map[string]*record
	changed  map[string]chan struct{} // closed when the service's set changes
	leases   map[*Lease]struct{}
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup
}

type record struct {
	inst  discovery.Instance
	lease *Lease
	timer *time.Timer
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{services: map[string]map[string]*record{}, changed: map[string]chan struct{}{},
		leases: map[*Lease]struct{}{}, done: make(chan struct{})}
}

var (
	_ discovery.Registry      = (*Registry)(nil)
	_ discovery.ServiceLister = (*Registry)(nil)
)

// Close ends every lease (without reporting them lost), stops heartbeats and
// finishes every watcher.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	for l := range r.leases {
		l.end(fmt.Errorf("discovery/memory: registry: %w", discovery.ErrClosed))
	}
	for _, recs := range r.services {
		for _, rec := range recs {
			rec.timer.Stop()
		}
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// Register implements discovery.Registry. The returned Lease is a *Lease.
func (r *Registry) Register(ctx context.Context, inst discovery.Instance, opts ...discovery.RegisterOption) (discovery.Lease, error) {
	if err := inst.Validate(); err != nil {
		return nil, fmt.Errorf("discovery/memory: register: %w", err)
	}
	cfg, err := discovery.RegisterSettings(opts...)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery/memory: register %s: %w", inst, err)
	}
	inst = inst.Clone()
	l := &Lease{r: r, cfg: cfg, inst: inst, done: make(chan struct{}), stop: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("discovery/memory: register %s: %w", inst, discovery.ErrClosed)
	}
	recs := r.services[inst.Service]
	if recs == nil {
		recs = map[string]*record{}
		r.services[inst.Service] = recs
	}
	if old := recs[inst.ID]; old != nil {
		old.timer.Stop()
		old.lease.end(fmt.Errorf("discovery/memory: %s: replaced by a new registration: %w", inst, discovery.ErrLeaseLost))
	}
	rec := &record{inst: inst, lease: l}
	rec.timer = time.AfterFunc(cfg.TTL, func() { r.expire(rec) })
	recs[inst.ID] = rec
	r.leases[l] = struct{}{}
	r.notify(inst.Service)
	r.wg.Add(1)
	go func() { defer r.wg.Done(); l.heartbeat(rec) }()
	return l, nil
}

func (r *Registry) expire(rec *record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.remove(rec) {
		return
	}
	rec.lease.end(fmt.Errorf("discovery/memory: %s: no heartbeat for %v: %w", rec.inst, rec.lease.cfg.TTL, discovery.ErrLeaseLost))
}

// remove deletes rec if it is still the current record of its instance.
func (r *Registry) remove(rec *record) bool {
	recs := r.services[rec.inst.Service]
	if recs[rec.inst.ID] != rec {
		return false
	}
	rec.timer.Stop()
	delete(recs, rec.inst.ID)
	if len(recs) == 0 {
		delete(r.services, rec.inst.Service)
	}
	r.notify(rec.inst.Service)
	return true
}

func (r *Registry) notify(service string) {
	if ch, ok := r.changed[service]; ok {
		close(ch)
		delete(r.changed, service)
	}
}

// snapshot returns the service's set and a channel closed at its next change.
func (r *Registry) snapshot(service string) ([]discovery.Instance, <-chan struct{}) {
	recs := r.services[service]
	insts := make([]discovery.Instance, 0, len(recs))
	for _, rec := range recs {
		insts = append(insts, rec.inst.Clone())
	}
	discovery.SortByID(insts)
	ch, ok := r.changed[service]
	if !ok {
		ch = make(chan struct{})
		r.changed[service] = ch
	}
	return insts, ch
}

// Instances implements discovery.Registry.
func (r *Registry) Instances(ctx context.Context, service string) ([]discovery.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery/memory: instances of %q: %w", service, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("discovery/memory: instances of %q: %w", service, discovery.ErrClosed)
	}
	insts, _ := r.snapshot(service)
	if len(insts) == 0 {
		return nil, &discovery.UnknownServiceError{Service: service}
	}
	return insts, nil
}

// Services implements discovery.ServiceLister.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery/memory: services: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("discovery/memory: services: %w", discovery.ErrClosed)
	}
	names := make([]string, 0, len(r.services))
	for name, recs := range r.services {
		if len(recs) > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Watch implements discovery.Registry.
func (r *Registry) Watch(ctx context.Context, service string) (discovery.Watcher, error) {
	if err := discovery.ValidateServiceName(service); err != nil {
		return nil, fmt.Errorf("discovery/memory: watch: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("discovery/memory: watch %q: %w", service, discovery.ErrClosed)
	}
	return &watcher{r: r, service: service, closed: make(chan struct{})}, nil
}

type watcher struct {
	r         *Registry
	service   string
	last      []discovery.Instance
	started   bool
	closed    chan struct{}
	closeOnce sync.Once
}

func (w *watcher) Next(ctx context.Context) ([]discovery.Instance, error) {
	for {
		w.r.mu.Lock()
		if w.r.closed {
			w.r.mu.Unlock()
			return nil, fmt.Errorf("discovery/memory: watch %q: %w", w.service, discovery.ErrClosed)
		}
		insts, changed := w.r.snapshot(w.service)
		w.r.mu.Unlock()
		if !w.started || !slices.EqualFunc(insts, w.last, discovery.Equal) {
			w.started, w.last = true, insts
			return insts, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.closed:
			return nil, fmt.Errorf("discovery/memory: watch %q: %w", w.service, discovery.ErrClosed)
		case <-w.r.done:
		}
	}
}

func (w *watcher) Close() error {
	w.closeOnce.Do(func() { close(w.closed) })
	return nil
}

// Lease is a registration in a memory Registry.
type Lease struct {
	r    *Registry
	cfg  discovery.RegisterConfig
	stop chan struct{} // closed to stop heartbeats (Abandon or end)
	done chan struct{}

	// guarded by r.mu
	inst    discovery.Instance
	err     error
	ended   bool
	stopped bool
}

var _ discovery.Lease = (*Lease)(nil)

func (l *Lease) heartbeat(rec *record) {
	t := time.NewTicker(l.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.r.mu.Lock()
		if l.r.services[rec.inst.Service][rec.inst.ID] == rec {
			rec.timer.Reset(l.cfg.TTL)
		}
		l.r.mu.Unlock()
	}
}

// end finishes the lease; r.mu is held.
func (l *Lease) end(err error) {
	if l.ended {
		return
	}
	l.ended, l.err = true, err
	l.stopHeartbeats()
	delete(l.r.leases, l)
	close(l.done)
}

func (l *Lease) stopHeartbeats() {
	if !l.stopped {
		l.stopped = true
		close(l.stop)
	}
}

// Abandon stops the heartbeats without deregistering, as a crashed process
// would: the registration stays visible until its TTL runs out.
func (l *Lease) Abandon() {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	l.stopHeartbeats()
}

// Instance implements discovery.Lease.
func (l *Lease) Instance() discovery.Instance {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	return l.inst.Clone()
}

// Update implements discovery.Lease.
func (l *Lease) Update(ctx context.Context, inst discovery.Instance) error {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if inst.Service != l.inst.Service || inst.ID != l.inst.ID || inst.Address != l.inst.Address {
		return fmt.Errorf("discovery/memory: update %s: service, id and address cannot change (got %s)", l.inst, inst)
	}
	if l.ended {
		return fmt.Errorf("discovery/memory: update %s: lease ended: %w", l.inst, l.err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("discovery/memory: update %s: %w", l.inst, err)
	}
	rec := l.r.services[inst.Service][inst.ID]
	l.inst = inst.Clone()
	rec.inst = inst.Clone()
	l.r.notify(inst.Service)
	return nil
}

// Deregister implements discovery.Lease.
func (l *Lease) Deregister(ctx context.Context) error {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if l.ended {
		return nil
	}
	if rec := l.r.services[l.inst.Service][l.inst.ID]; rec != nil && rec.lease == l {
		l.r.remove(rec)
	}
	l.end(nil)
	return nil
}

// Done implements discovery.Lease.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err implements discovery.Lease.
func (l *Lease) Err() error {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	return l.err
}
