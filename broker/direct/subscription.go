package direct

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/message"
)

// waitGoneLimit bounds Close's wait for its broker's registry watch to
// drop the instance.
const waitGoneLimit = 5 * time.Second

// errGone is wrapped by the refusals of an instance that is closing.
var errGone = errors.New("direct: subscription instance closing")

// subscription is one instance of a subscriber id: registered under each
// of its channels, it queues what senders deliver to it and hands each
// queue to its Processor, one shard's messages at a time in ordered
// delivery, up to MaxInFlight at once in concurrent delivery.
type subscription struct {
	b    *Broker
	id   string // instance id, the registrations' ID
	cfg  broker.SubscribeConfig
	proc *adapter.Processor

	ctx    context.Context // the handlers'; cancelled when Close gives up
	cancel context.CancelFunc
	stop   chan struct{} // closed when Close gives up: no new attempts
	room   chan struct{} // one token per queued message, WithQueueLength of them
	work   chan item     // concurrent delivery: the queue

	mu      sync.Mutex
	closing bool
	shards  map[shardKey]*shardQueue // ordered delivery
	leases  []discovery.Lease
	workers sync.WaitGroup
	watch   sync.WaitGroup // the lease keepers

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

type shardKey struct {
	channel string
	shard   int
}

type item struct {
	channel string
	shard   int
	msg     *message.Message
}

// shardQueue is the queue of one shard of one channel; a worker runs
// while it is not empty.
type shardQueue struct {
	items   []item
	running bool
	empty   chan struct{} // closed when the queue empties; nil while empty
}

// accept queues msg, waiting within ctx for room; it fails with errGone
// once the instance is closing.
func (s *subscription) accept(ctx context.Context, channel string, shard int, msg *message.Message) error {
	if !s.takes(channel) {
		return fmt.Errorf("instance %s does not subscribe to %q", s.id, channel)
	}
	select {
	case s.room <- struct{}{}:
	case <-s.closed:
		return errGone
	case <-ctx.Done():
		return fmt.Errorf("waiting for room in the queue: %w", ctx.Err())
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.room
		return errGone
	}
	it := item{channel: channel, shard: shard, msg: msg}
	if s.cfg.Delivery == broker.DeliveryConcurrent {
		s.work <- it // never blocks: room bounds it
		s.mu.Unlock()
		return nil
	}
	k := shardKey{channel, shard}
	q := s.shards[k]
	if q == nil {
		q = &shardQueue{}
		s.shards[k] = q
	}
	q.items = append(q.items, it)
	if q.empty == nil {
		q.empty = make(chan struct{})
	}
	if !q.running {
		q.running = true
		s.workers.Go(func() { s.runShard(q) })
	}
	s.mu.Unlock()
	return nil
}

func (s *subscription) takes(channel string) bool {
	for _, c := range s.cfg.Channels {
		if c == channel {
			return true
		}
	}
	return false
}

// runShard handles a shard's queue in order until it is empty.
func (s *subscription) runShard(q *shardQueue) {
	for {
		s.mu.Lock()
		if len(q.items) == 0 {
			q.running = false
			close(q.empty)
			q.empty = nil
			s.mu.Unlock()
			return
		}
		it := q.items[0]
		s.mu.Unlock()
		s.handle(it)
		s.mu.Lock()
		q.items[0] = item{}
		q.items = q.items[1:]
		s.mu.Unlock()
	}
}

// runWorker is one of the concurrent delivery workers.
func (s *subscription) runWorker() {
	for it := range s.work {
		s.handle(it)
	}
}

func (s *subscription) handle(it item) {
	defer func() { <-s.room }()
	err := s.proc.Process(s.ctx, s.stop, it.channel, it.shard, 0, it.msg)
	if errors.Is(err, adapter.ErrAbandoned) {
		s.cfg.Logger.LogAttrs(context.Background(), slog.LevelError, "courier: direct broker: message abandoned by a closing instance; it is lost",
			slog.String("subscriber", s.cfg.SubscriberID), slog.String("channel", it.channel), slog.String("message_id", it.msg.ID))
	}
}

// flush returns once the shard's queue is empty (what it held handled,
// dead-lettered or abandoned), or with ctx's error.
func (s *subscription) flush(ctx context.Context, channel string, shard int) error {
	s.mu.Lock()
	var wait chan struct{}
	if q := s.shards[shardKey{channel, shard}]; q != nil {
		wait = q.empty
	}
	s.mu.Unlock()
	if wait == nil {
		return nil
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush of shard %d of %q: %w", shard, channel, ctx.Err())
	}
}

// register registers the instance under each of its channels.
func (s *subscription) register(ctx context.Context, address string) error {
	for _, ch := range s.cfg.Channels {
		inst := discovery.Instance{Service: serviceName(ch), ID: s.id, Address: address, Metadata: map[string]string{
			metaChannel:    ch,
			metaSubscriber: s.cfg.SubscriberID,
			metaDelivery:   s.cfg.Delivery.String(),
			metaShards:     strconv.Itoa(s.b.shards),
		}}
		lease, err := s.b.reg.Register(ctx, inst, s.b.regOpts...)
		if err != nil {
			return fmt.Errorf("direct broker: register %s on %q: %w", s.cfg.SubscriberID, ch, err)
		}
		s.mu.Lock()
		s.leases = append(s.leases, lease)
		s.mu.Unlock()
		s.watch.Go(func() { s.keep(inst, lease) })
	}
	return nil
}

// keep registers the instance again whenever its lease is lost (the
// registry did not get its heartbeats in time), until the instance closes.
func (s *subscription) keep(inst discovery.Instance, lease discovery.Lease) {
	for failures := 0; ; {
		select {
		case <-s.closed:
			return
		case <-lease.Done():
		}
		if lease.Err() == nil {
			return // deregistered by Close
		}
		s.cfg.Logger.Warn("courier: direct broker: registration lost; registering again",
			"subscriber", s.cfg.SubscriberID, "channel", inst.Metadata[metaChannel], "error", lease.Err())
		for {
			ctx, cancel := context.WithTimeout(context.Background(), s.b.retryWait*10)
			l, err := s.b.reg.Register(ctx, inst, s.b.regOpts...)
			cancel()
			if err == nil {
				s.mu.Lock()
				if s.closing {
					s.mu.Unlock()
					_ = l.Deregister(context.Background())
					return
				}
				s.leases = append(s.leases, l)
				s.mu.Unlock()
				lease = l
				failures = 0
				break
			}
			failures++
			select {
			case <-s.closed:
				return
			case <-time.After(min(s.b.retryWait*time.Duration(failures), 5*time.Second)):
			}
		}
	}
}

// Close deregisters the instance, so that senders stop choosing it, then
// handles what it had accepted: every queued message is handled,
// retried or dead-lettered as usual before Close returns. If ctx ends
// first, the handlers' contexts are cancelled, the messages still queued
// are abandoned (logged: they are lost, as in a crash) and Close returns
// ctx's error once the handlers have returned.
func (s *subscription) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *subscription) close(ctx context.Context) error {
	s.mu.Lock()
	leases := s.leases
	s.mu.Unlock()
	var errs []error
	for _, l := range leases {
		if err := l.Deregister(ctx); err != nil {
			errs = append(errs, fmt.Errorf("direct broker: deregister %s: %w", s.cfg.SubscriberID, err))
		}
	}
	// Senders of this broker stop choosing the instance before it
	// refuses them, so that they do not wait on a refusal. A registry
	// that does not report the change in time only costs them a refusal.
	wctx, cancel := context.WithTimeout(ctx, waitGoneLimit)
	if err := s.b.waitGone(wctx, s); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Warn("courier: direct broker: the registry did not report the instance gone; closing anyway",
			"subscriber", s.cfg.SubscriberID, "error", err)
	}
	cancel()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	close(s.closed)
	if s.cfg.Delivery == broker.DeliveryConcurrent {
		close(s.work) // accept sends nothing once closing is set
	}
	done := make(chan struct{})
	go func() { s.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		close(s.stop)
		s.cancel()
		<-done
		errs = append(errs, fmt.Errorf("direct broker: close %s: %w", s.cfg.SubscriberID, ctx.Err()))
	}
	s.cancel()
	s.watch.Wait()
	s.b.receiverRemove(s)
	s.b.subs.Remove(s)
	return errors.Join(errs...)
}
