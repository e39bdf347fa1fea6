// Package memory is an in-process broker with the full semantics of the
// broker port: publish-subscribe per subscriber id, competing instances,
// sharded channels with per-key order while instances join and leave,
// retries and dead-lettering. It is meant for tests and single-process
// applications; nothing survives the process.
//
// Each channel has a fixed number of shards (WithShards). A subscriber id
// keeps its position in every shard for the broker's lifetime, so closing
// its last subscription and subscribing again later resumes where it
// stopped. A subscriber id starts at the end of the channel: it receives
// the messages sent after its first Subscribe returned. Messages sent to a
// channel with no subscriber id are dropped, as nothing would ever read
// them, but for dead letters, which the Broker keeps until they are
// removed (Broker.DeadLetterProducer, broker.DeadLetterBrowser); a message
// is kept in memory until every subscriber id of its
// channel has handled it. broker.WithEphemeral changes nothing here, where
// every position is in memory anyway.
//
// In concurrent delivery mode (broker.WithConcurrentDelivery(n)) the
// shards and positions are the same, but a shard's worker hands each
// message to the handler in a goroutine of its own, up to n at once per
// instance over all its shards, without waiting for the ones before, and
// moves the shard's position past the longest run of handled messages.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/message"
)

// DefaultShards is the number of shards of each channel unless WithShards
// says otherwise.
const DefaultShards = 16

// Option configures a Broker.
type Option func(*Broker) error

// WithShards sets the number of shards of each channel: the most handlers
// that run at once for one subscriber id on one channel.
func WithShards(n int) Option {
	return func(b *Broker) error {
		if n < 1 {
			return fmt.Errorf("memory broker: shards must be at least 1, got %d", n)
		}
		b.shards = n
		return nil
	}
}

// WithLimits sets the message size limits Send enforces.
func WithLimits(l message.Limits) Option {
	return func(b *Broker) error {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("memory broker: %w", err)
		}
		b.limits = l
		return nil
	}
}

// Broker is the in-process broker. It is safe for concurrent use.
type Broker struct {
	shards int
	limits message.Limits
	next   atomic.Uint32 // round-robin shard for messages without a key
	// instances numbers the subscriptions, for their ids.
	instances atomic.Uint64

	mu       sync.RWMutex
	channels map[string]*channel
	// kept holds each dead-letter channel's dead letters, in the order
	// they were sent, until RemoveDeadLetters; keptSeq numbers them.
	kept    map[string][]keptLetter
	keptSeq uint64
	subs    adapter.Subscriptions[*subscription] // closing: Close began

	done chan struct{} // closed by Close: stops the workers
	wg   sync.WaitGroup
}

var _ broker.Broker = (*Broker)(nil)

// New returns an empty broker.
func New(opts ...Option) (*Broker, error) {
	b := &Broker{
		shards:   DefaultShards,
		channels: make(map[string]*channel),
		kept:     make(map[string][]keptLetter),
		done:     make(chan struct{}),
	}
	for _, opt := range opts {
		if err := opt(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Send appends msgs to the channel's shards, each picked by the message's
// partition key. It never blocks on consumers.
func (b *Broker) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory broker: send to %q: %w", channel, err)
	}
	if err := adapter.PrepareSend(channel, msgs, b.limits); err != nil {
		return fmt.Errorf("memory broker: %w", err)
	}
	ch, err := b.channel(channel)
	if err != nil {
		return err
	}
	date := message.FormatDate(time.Now())
	for _, m := range msgs {
		stored := &message.Message{ID: m.ID, Headers: make(message.Headers, len(m.Headers)+2), Payload: bytes.Clone(m.Payload)}
		for k, v := range m.Headers {
			stored.Headers[k] = v
		}
		stored.Headers[message.HeaderDestination] = channel
		if _, ok := stored.Headers[message.HeaderDate]; !ok {
			stored.Headers[message.HeaderDate] = date
		}
		ch.shards[b.shardOf(m.PartitionKey())].append(stored)
	}
	return nil
}

// shardOf maps a partition key to a shard with FNV-1a; messages without a
// key go round robin.
func (b *Broker) shardOf(key string) int {
	if key == "" {
		return int(b.next.Add(1) % uint32(b.shards))
	}
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(b.shards))
}

// channel returns the named channel, creating it on first use.
func (b *Broker) channel(name string) (*channel, error) {
	b.mu.RLock()
	ch, ok := b.channels[name]
	closed := b.subs.Closing()
	b.mu.RUnlock()
	if closed {
		return nil, fmt.Errorf("memory broker: channel %q: %w", name, broker.ErrClosed)
	}
	if ok {
		return ch, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs.Closing() {
		return nil, fmt.Errorf("memory broker: channel %q: %w", name, broker.ErrClosed)
	}
	return b.channelLocked(name), nil
}

func (b *Broker) channelLocked(name string) *channel {
	ch, ok := b.channels[name]
	if !ok {
		ch = &channel{b: b, name: name, shards: make([]*shard, b.shards), groups: make(map[string]*group)}
		for i := range ch.shards {
			ch.shards[i] = &shard{}
		}
		b.channels[name] = ch
	}
	return ch
}

// Ping reports broker.ErrClosed once the Broker is closed, and nil before:
// an in-process broker is always reachable. See broker.Pinger.
func (b *Broker) Ping(context.Context) error {
	if b.subs.Closing() {
		return fmt.Errorf("memory broker: ping: %w", broker.ErrClosed)
	}
	return nil
}

// Subscribe starts an instance of subscriberID on channels. It takes over a
// fair share of the channels' shards from the instances already running.
func (b *Broker) Subscribe(ctx context.Context, subscriberID string, channels []string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory broker: subscribe %q: %w", subscriberID, err)
	}
	cfg, err := adapter.NewSubscribeConfig(subscriberID, channels, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("memory broker: %w", err)
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &subscription{id: fmt.Sprintf("instance-%d", b.instances.Add(1)), b: b, proc: adapter.NewProcessor(cfg, b.DeadLetterProducer()), ctx: hctx, cancel: cancel, stop: make(chan struct{})}
	if cfg.Delivery == broker.DeliveryConcurrent {
		s.jobs = make(chan job)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	err = b.subs.Add(s, func() {
		if s.jobs != nil {
			s.active = cfg.MaxInFlight // the pool, until Close stops it
			for range cfg.MaxInFlight {
				go s.work()
			}
		}
		for _, name := range cfg.Channels {
			g := b.channelLocked(name).groupLocked(subscriberID)
			s.groups = append(s.groups, g)
			g.join(s)
		}
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("memory broker: subscribe %q: %w", subscriberID, err)
	}
	return s, nil
}

// Close closes every subscription, waiting for in-flight handlers as
// Subscription.Close does, and stops the broker. Later calls fail with
// broker.ErrClosed.
func (b *Broker) Close(ctx context.Context) error {
	first, err := b.subs.Close(ctx)
	if !first {
		return nil
	}
	close(b.done)
	b.wg.Wait()
	return err
}
