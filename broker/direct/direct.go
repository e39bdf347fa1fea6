package direct

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/message"
)

// Errors of the direct broker, for errors.Is.
var (
	// ErrNoSubscribers: WithRequireSubscribers is set, or the message is
	// a dead letter, and no instance of any subscriber id is registered
	// for the channel.
	ErrNoSubscribers = errors.New("direct: no subscriber registered for the channel")
	// ErrNoLiveInstance: a subscriber id of the channel has registered
	// instances, but none took the message before the Send's context
	// ended, or all of them vanished from the registry without a clean
	// Close (their leases expired: they crashed).
	ErrNoLiveInstance = errors.New("direct: no live instance of the subscriber id took the message")
)

var errClosedBroker = fmt.Errorf("direct broker: %w", broker.ErrClosed)

// Broker sends messages straight to the instances of the subscriber ids
// of a channel, found through a discovery.Registry, and receives the
// messages sent to its own subscriptions. It is safe for concurrent use.
// See the package documentation for what it promises and what it does
// not.
type Broker struct {
	reg                discovery.Registry
	res                *discovery.Resolver
	listen, advertise  string
	shards             int
	queueLength        int
	regOpts            []discovery.RegisterOption
	serverTLS          *tls.Config
	clientTLS          *tls.Config
	limits             message.Limits
	requireSubscribers bool
	retryWait          time.Duration
	log                *slog.Logger

	subs adapter.Subscriptions[*subscription]

	mu       sync.Mutex
	receiver *receiver
	peers    map[string]*peer
	views    map[string]*view
	last     map[lastKey]member // ordered delivery: where each shard last went
	next     atomic.Uint64      // round robin of concurrent delivery
	closed   bool
}

// lastKey is a subscriber id's shard of a channel.
type lastKey struct {
	subscriber, channel string
	shard               int
}

var (
	_ broker.Broker             = (*Broker)(nil)
	_ broker.Pinger             = (*Broker)(nil)
	_ broker.DeadLetterProducer = (*Broker)(nil)
)

// New returns a Broker whose subscriptions register in reg and whose
// sends find their receivers there. It opens nothing until used: the
// receiver's listener starts with the first Subscribe, connections to
// other receivers with the first Send to them.
func New(reg discovery.Registry, opts ...Option) (*Broker, error) {
	if reg == nil {
		return nil, errors.New("direct broker: nil registry")
	}
	b := &Broker{reg: reg, listen: "127.0.0.1:0", shards: DefaultShards, queueLength: DefaultQueueLength,
		retryWait: 200 * time.Millisecond, log: slog.Default(),
		peers: map[string]*peer{}, views: map[string]*view{}, last: map[lastKey]member{}}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	res, err := discovery.NewResolver(reg, discovery.WithLogger(b.log))
	if err != nil {
		return nil, fmt.Errorf("direct broker: %w", err)
	}
	b.res = res
	return b, nil
}

// maxFrame is the largest frame a receiver takes: a message at the
// limits, with room for the routing fields and for a malformed message a
// little over them, which the receiver dead-letters rather than refuses.
func (b *Broker) maxFrame() int {
	payload, headers := b.limits.MaxPayloadBytes, b.limits.MaxHeaderBytes
	if payload == 0 {
		payload = message.DefaultMaxPayloadBytes
	}
	if headers == 0 {
		headers = message.DefaultMaxHeaderBytes
	}
	return 2*(payload+headers) + 64<<10
}

// Subscribe starts an instance of subscriberID on channels: it registers
// the instance under each channel, with the broker's receiver address, and
// returns once this broker's own sends see it (other brokers see it when
// their registry watch does). Every instance of a subscriber id must use
// the same delivery mode; Subscribe refuses one that differs from the
// instances registered.
func (b *Broker) Subscribe(ctx context.Context, subscriberID string, channels []string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("direct broker: subscribe %q: %w", subscriberID, err)
	}
	cfg, err := adapter.NewSubscribeConfig(subscriberID, channels, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("direct broker: %w", err)
	}
	if b.subs.Closing() {
		return nil, fmt.Errorf("direct broker: subscribe %q: %w", subscriberID, broker.ErrClosed)
	}
	for _, ch := range cfg.Channels {
		if err := b.checkMode(ctx, ch, cfg); err != nil {
			return nil, err
		}
	}
	r, err := b.startReceiver()
	if err != nil {
		return nil, err
	}
	s := &subscription{b: b, id: newInstanceID(), cfg: cfg, stop: make(chan struct{}), closed: make(chan struct{}),
		room: make(chan struct{}, b.queueLength), shards: map[shardKey]*shardQueue{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.proc = adapter.NewProcessor(cfg, broker.DeadLetters(b))
	if cfg.Delivery == broker.DeliveryConcurrent {
		s.work = make(chan item, b.queueLength)
		for range cfg.MaxInFlight {
			s.workers.Go(s.runWorker)
		}
	}
	if err := b.subs.Add(s, func() { r.add(s) }); err != nil {
		s.abort()
		return nil, errClosedBroker
	}
	err = s.register(ctx, r.address)
	if err == nil {
		err = b.waitSeen(ctx, s)
	}
	if err != nil {
		// Deregister what was registered, within a bound of its own:
		// ctx may be what ended.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), waitGoneLimit)
		defer cancel()
		return nil, errors.Join(err, s.Close(cctx))
	}
	return s, nil
}

// abort stops a subscription that never started.
func (s *subscription) abort() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	close(s.closed)
	if s.work != nil {
		close(s.work)
	}
	s.workers.Wait()
	s.cancel()
}

func newInstanceID() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkMode refuses a subscription whose delivery mode differs from the
// registered instances of its subscriber id on ch.
func (b *Broker) checkMode(ctx context.Context, ch string, cfg broker.SubscribeConfig) error {
	v, err := b.view(ctx, ch)
	if err != nil {
		return err
	}
	for _, g := range v.groups {
		if g.subscriber == cfg.SubscriberID && g.delivery != cfg.Delivery {
			return fmt.Errorf("direct broker: %w: subscriber %q: its instances on %q use %s delivery, this one %s",
				broker.ErrInvalidSubscription, cfg.SubscriberID, ch, g.delivery, cfg.Delivery)
		}
	}
	return nil
}

func (b *Broker) startReceiver() (*receiver, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosedBroker
	}
	if b.receiver == nil {
		r, err := startReceiver(b)
		if err != nil {
			return nil, err
		}
		b.receiver = r
	}
	return b.receiver, nil
}

func (b *Broker) receiverRemove(s *subscription) {
	b.mu.Lock()
	r := b.receiver
	b.mu.Unlock()
	if r != nil {
		r.remove(s)
	}
}

// waitSeen waits until the broker's resolver lists s under each of its
// channels; waitGone until it lists it under none.
func (b *Broker) waitSeen(ctx context.Context, s *subscription) error {
	return b.waitFor(ctx, s, true)
}

func (b *Broker) waitGone(ctx context.Context, s *subscription) error {
	return b.waitFor(ctx, s, false)
}

func (b *Broker) waitFor(ctx context.Context, s *subscription, present bool) error {
	for _, ch := range s.cfg.Channels {
		changed := make(chan struct{}, 1)
		unsubscribe, err := b.res.Subscribe(serviceName(ch), func([]discovery.Instance, error) {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return fmt.Errorf("direct broker: %w", err)
		}
		for {
			insts, err := b.res.Instances(ctx, serviceName(ch))
			if err != nil && !errors.Is(err, discovery.ErrUnknownService) {
				unsubscribe()
				return fmt.Errorf("direct broker: waiting for the registry to list instance %s of %q on %q: %w", s.id, s.cfg.SubscriberID, ch, err)
			}
			found := false
			for _, in := range insts {
				found = found || in.ID == s.id
			}
			if found == present {
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
				unsubscribe()
				return fmt.Errorf("direct broker: waiting for the registry to list instance %s of %q on %q (present %v): %w", s.id, s.cfg.SubscriberID, ch, present, ctx.Err())
			}
		}
		unsubscribe()
	}
	return nil
}

// view returns the channel's subscriber ids as the resolver last saw
// them.
func (b *Broker) view(ctx context.Context, channel string) (*view, error) {
	insts, err := b.res.Instances(ctx, serviceName(channel))
	if err != nil && !errors.Is(err, discovery.ErrUnknownService) {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("direct broker: resolve %q: %w", channel, ctx.Err())
		}
		return nil, fmt.Errorf("direct broker: resolve %q: %w", channel, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if v := b.views[channel]; v != nil && v.sameSet(insts) {
		return v, nil
	}
	v := newView(channel, insts)
	b.views[channel] = v
	return v, nil
}

// peer returns the connection to a receiver address.
func (b *Broker) peer(address string) (*peer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosedBroker
	}
	if p := b.peers[address]; p != nil {
		return p, nil
	}
	var creds credentials.TransportCredentials
	if b.clientTLS != nil {
		creds = credentials.NewTLS(b.clientTLS)
	}
	p, err := newPeer(address, creds, b.maxFrame())
	if err != nil {
		return nil, err
	}
	b.peers[address] = p
	return p, nil
}

// Ping reports broker.ErrClosed once the Broker is closed, and otherwise
// whether the registry answers: without it no Send can find a receiver.
func (b *Broker) Ping(ctx context.Context) error {
	if b.subs.Closing() {
		return fmt.Errorf("direct broker: ping: %w", broker.ErrClosed)
	}
	if _, err := b.reg.Instances(ctx, servicePrefix+"ping"); err != nil && !errors.Is(err, discovery.ErrUnknownService) {
		return fmt.Errorf("direct broker: ping: registry: %w", err)
	}
	return nil
}

// Close closes every subscription, as Subscription.Close does, then the
// receiver and the connections to other receivers. Later calls fail with
// broker.ErrClosed.
func (b *Broker) Close(ctx context.Context) error {
	first, err := b.subs.Close(ctx)
	if !first {
		return nil
	}
	b.mu.Lock()
	b.closed = true
	r, peers := b.receiver, b.peers
	b.peers = map[string]*peer{}
	b.mu.Unlock()
	if r != nil {
		r.stop()
	}
	for _, p := range peers {
		p.close()
	}
	if cerr := b.res.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("direct broker: %w", cerr))
	}
	return err
}

// DeadLetterProducer returns the broker as the Producer of dead letters.
// A dead letter has nowhere to wait in a brokerless system: sent to a
// channel that no instance is registered for, it fails at once with an
// error wrapping ErrNoSubscribers and marked broker.Permanent, and the
// subscription's Processor, after trying the smaller envelopes, logs the
// message at ERROR ("acknowledged and discarded", with the error) and
// reports it to its Observer as discarded (courier_consumer_discarded_total
// with broker/metrics), so that the shard moves on. Subscribe a reader to
// every dead-letter channel to keep them. Other failures (a reader that
// cannot be reached) are retried by the Processor while the subscription
// runs, as for any broker.
func (b *Broker) DeadLetterProducer() broker.Producer {
	return broker.ProducerFunc(func(ctx context.Context, channel string, msgs ...*message.Message) error {
		err := b.send(ctx, channel, true, msgs)
		if errors.Is(err, ErrNoSubscribers) {
			return broker.Permanent(err)
		}
		return err
	})
}
