package memory

import (
	"context"
	"sync"

	"github.com/courier-go/courier/broker/adapter"
)

// subscription is one instance of a subscriber id.
type subscription struct {
	id     string // unique in the Broker: what the shard assignment knows it by
	b      *Broker
	proc   *adapter.Processor
	groups []*group // one per channel
	// jobs feeds the pool of MaxInFlight goroutines that handle the
	// messages of every shard the instance owns in concurrent delivery
	// mode; nil in ordered mode.
	jobs chan job

	ctx    context.Context // the handlers' context
	cancel context.CancelFunc
	stop   chan struct{} // closed when Close begins

	mu      sync.Mutex
	closing bool
	active  int           // workers delivering to this instance now
	idle    chan struct{} // closed when active drops to 0 during Close
}

// acquire registers a worker delivering to s; it fails once s is closing.
func (s *subscription) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.active++
	return true
}

func (s *subscription) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

func (s *subscription) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// Close stops delivery to this instance, hands its shards to the other
// instances and waits for its in-flight handlers.
func (s *subscription) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	close(s.stop)
	var idle chan struct{}
	if s.active > 0 {
		idle = make(chan struct{})
		s.idle = idle
	}
	s.mu.Unlock()

	for _, g := range s.groups {
		g.leave(s)
	}
	defer func() {
		s.cancel()
		s.b.subs.Remove(s)
	}()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-idle
		return ctx.Err()
	}
}
