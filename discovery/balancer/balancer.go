// Package balancer chooses which instance of a service serves a call: round
// robin, random or least outstanding requests, among the instances that are
// healthy and available (breaker closed, not ejected). It is the layer
// between discovery.Resolver and the transports in discovery/httplb and
// discovery/router.
package balancer

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/courier-go/courier/discovery"
)

// Balancer picks one instance among candidates. Implementations are safe
// for concurrent use.
type Balancer interface {
	// Pick returns one of candidates, which is never empty. The caller
	// calls done once the call has finished (response read or failed).
	Pick(candidates []discovery.Instance) (inst discovery.Instance, done func())
}

// Names of the balancers, for configuration.
const (
	NameRoundRobin       = "round-robin"
	NameRandom           = "random"
	NameLeastOutstanding = "least-outstanding"
)

// ByName returns a new balancer of the named kind.
func ByName(name string) (Balancer, error) {
	switch name {
	case NameRoundRobin:
		return RoundRobin(), nil
	case NameRandom:
		return Random(), nil
	case NameLeastOutstanding:
		return LeastOutstanding(), nil
	}
	return nil, fmt.Errorf("balancer: unknown balancer %q (want %s, %s or %s)", name, NameRoundRobin, NameRandom, NameLeastOutstanding)
}

func nop() {}

type roundRobin struct{ n atomic.Uint64 }

// RoundRobin cycles through the candidates in order.
func RoundRobin() Balancer { return &roundRobin{} }

func (b *roundRobin) Pick(c []discovery.Instance) (discovery.Instance, func()) {
	return c[(b.n.Add(1)-1)%uint64(len(c))], nop
}

type random struct{}

// Random picks a candidate uniformly at random.
func Random() Balancer { return random{} }

func (random) Pick(c []discovery.Instance) (discovery.Instance, func()) {
	return c[rand.IntN(len(c))], nop
}

// Outstanding is the least-outstanding-requests balancer; it also reports
// the in-flight calls per instance.
type Outstanding struct {
	mu     sync.Mutex
	counts map[string]int
	rr     atomic.Uint64
}

// LeastOutstanding picks the candidate with the fewest calls in flight
// through this balancer, breaking ties in rotation.
func LeastOutstanding() *Outstanding { return &Outstanding{counts: map[string]int{}} }

// Pick implements Balancer.
func (b *Outstanding) Pick(c []discovery.Instance) (discovery.Instance, func()) {
	start := int(b.rr.Add(1) % uint64(len(c)))
	b.mu.Lock()
	best, bestN := -1, 0
	for i := range c {
		j := (start + i) % len(c)
		if n := b.counts[c[j].String()]; best < 0 || n < bestN {
			best, bestN = j, n
		}
	}
	key := c[best].String()
	b.counts[key]++
	b.mu.Unlock()
	var once sync.Once
	return c[best], func() {
		once.Do(func() {
			b.mu.Lock()
			if b.counts[key]--; b.counts[key] <= 0 {
				delete(b.counts, key)
			}
			b.mu.Unlock()
		})
	}
}

// InFlight returns the calls in flight to inst.
func (b *Outstanding) InFlight(inst discovery.Instance) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts[inst.String()]
}
