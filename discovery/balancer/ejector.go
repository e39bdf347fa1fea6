package balancer

import (
	"fmt"
	"sync"
	"time"

	"github.com/courier-go/courier/discovery"
)

// Ejector is passive outlier detection: an instance that fails a number of
// consecutive calls (connection refused, reset, timeout) is ejected for a
// while, then given traffic again. It implements discovery.Health and is
// safe for concurrent use.
type Ejector struct {
	failures int
	duration time.Duration
	now      func() time.Time

	mu    sync.Mutex
	state map[string]*ejectState
}

type ejectState struct {
	consecutive int
	until       time.Time
}

// NewEjector ejects an instance for d after failures consecutive failures.
func NewEjector(failures int, d time.Duration) (*Ejector, error) {
	if failures < 1 || d <= 0 {
		return nil, fmt.Errorf("balancer: ejector needs failures >= 1 and a positive duration (got %d, %v)", failures, d)
	}
	return &Ejector{failures: failures, duration: d, now: time.Now, state: map[string]*ejectState{}}, nil
}

// Failure records a failed call to inst.
func (e *Ejector) Failure(inst discovery.Instance) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.state[inst.String()]
	if s == nil {
		s = &ejectState{}
		e.state[inst.String()] = s
	}
	s.consecutive++
	if s.consecutive >= e.failures {
		s.until = e.now().Add(e.duration)
		s.consecutive = 0
	}
}

// Success records a successful call to inst.
func (e *Ejector) Success(inst discovery.Instance) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.state[inst.String()]; s != nil && !e.now().Before(s.until) {
		delete(e.state, inst.String())
	}
}

// Available implements discovery.Health: false while inst is ejected.
func (e *Ejector) Available(inst discovery.Instance) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.state[inst.String()]
	return s == nil || !e.now().Before(s.until)
}

// Ejected returns the instances (as "service/id@address") ejected now.
func (e *Ejector) Ejected() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	now := e.now()
	for k, s := range e.state {
		if now.Before(s.until) {
			out = append(out, k)
		}
	}
	return out
}
