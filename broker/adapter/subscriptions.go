package adapter

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/courier-go/courier/broker"
)

// Subscriptions is the registry of the subscriptions a Broker made, for
// adapters: Subscribe adds each one, Subscription.Close removes it, and
// Broker.Close closes those left and refuses new ones. The zero value is
// empty and ready to use. It is safe for concurrent use.
type Subscriptions[S interface {
	comparable
	broker.Subscription
}] struct {
	mu      sync.Mutex
	subs    map[S]struct{}
	closing atomic.Bool
}

// Add registers s and, unless start is nil, runs start before any Close
// can begin, so that Close finds s started. Once Close has begun, Add
// runs nothing and fails with broker.ErrClosed.
func (r *Subscriptions[S]) Add(s S, start func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing.Load() {
		return broker.ErrClosed
	}
	if r.subs == nil {
		r.subs = make(map[S]struct{})
	}
	r.subs[s] = struct{}{}
	if start != nil {
		start()
	}
	return nil
}

// Remove forgets s, which has closed.
func (r *Subscriptions[S]) Remove(s S) {
	r.mu.Lock()
	delete(r.subs, s)
	r.mu.Unlock()
}

// Closing reports whether Close has begun.
func (r *Subscriptions[S]) Closing() bool { return r.closing.Load() }

// Close makes later calls of Add fail, then closes the registered
// subscriptions concurrently, as CloseAll does, and returns their errors
// joined. Only the first call does so and reports first; later calls
// return at once.
func (r *Subscriptions[S]) Close(ctx context.Context) (first bool, err error) {
	r.mu.Lock()
	if r.closing.Load() {
		r.mu.Unlock()
		return false, nil
	}
	r.closing.Store(true)
	subs := slices.Collect(maps.Keys(r.subs))
	r.mu.Unlock()
	return true, broker.CloseAll(ctx, subs)
}
