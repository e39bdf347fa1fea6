package natsjs

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/backoff"
)

// cleanupTimeout bounds the clean-up requests of a Close whose context
// has already ended, such as deleting its membership keys.
const cleanupTimeout = 5 * time.Second

// Subscribe starts an instance of subscriberID on channels. It creates the
// channels' streams and the subscriber id's consumers if needed, registers
// the instance in the membership bucket and returns; the instance then
// takes its share of the shards. Messages sent after Subscribe returns are
// delivered to the subscriber id: a new subscriber id's consumers start
// after the last message stored when they were created.
func (b *Broker) Subscribe(ctx context.Context, subscriberID string, channels []string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsjs: subscribe %q: %w", subscriberID, err)
	}
	cfg, err := adapter.NewSubscribeConfig(subscriberID, channels, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("natsjs: %w", err)
	}
	if b.subs.Closing() {
		return nil, fmt.Errorf("natsjs: subscribe %q: %w", subscriberID, broker.ErrClosed)
	}
	if cfg.Delivery == broker.DeliveryConcurrent {
		return b.subscribeConcurrent(ctx, cfg)
	}
	if cfg.Ephemeral {
		return b.subscribeEphemeral(ctx, cfg)
	}
	members, err := b.membership(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsjs: subscribe %q: %w", subscriberID, b.sendErr(err))
	}

	s := &subscription{
		b:         b,
		cfg:       cfg,
		proc:      adapter.NewProcessor(cfg, b),
		members:   members,
		id:        nuid.Next(),
		lifecycle: newLifecycle(ctx),
	}
	fail := func(err error) (broker.Subscription, error) {
		s.teardown()
		return nil, fmt.Errorf("natsjs: subscribe %q: %w", subscriberID, b.sendErr(err))
	}
	for _, ch := range cfg.Channels {
		g, err := s.newGroup(ctx, ch)
		if err != nil {
			return fail(err)
		}
		s.groups = append(s.groups, g)
		if err := g.join(ctx); err != nil {
			return fail(err)
		}
	}
	reconnects := b.nc.StatusChanged(nats.CONNECTED)
	err = b.subs.Add(s, func() {
		s.bg.Add(2)
		go s.heartbeat()
		go s.followReconnects(reconnects)
		for _, g := range s.groups {
			for _, w := range g.workers {
				s.workers.Add(1)
				go w.run()
			}
		}
	})
	if err != nil {
		b.nc.RemoveStatusListener(reconnects)
		return fail(err)
	}
	return s, nil
}

// subscription is one instance of a subscriber id.
type subscription struct {
	b       *Broker
	cfg     broker.SubscribeConfig
	proc    *adapter.Processor
	members *membership
	id      string // instance id, unique among the instances
	groups  []*group

	lifecycle

	workers sync.WaitGroup // shard workers
	bg      sync.WaitGroup // the heartbeat and the reconnection follower
}

// log reports a subscription event.
func (s *subscription) log(level slog.Level, msg string, attrs ...slog.Attr) {
	attrs = append(attrs, slog.String("subscriber", s.cfg.SubscriberID), slog.String("instance", s.id))
	s.cfg.Logger.LogAttrs(context.Background(), level, "courier: natsjs: "+msg, attrs...)
}

// Close stops delivery to this instance: every shard worker stops pulling,
// lets its in-flight handler finish and gives back the messages it had
// received but not started. Then the instance leaves the membership, so
// that the other instances take over its shards. If ctx ends first, the
// handlers' contexts are cancelled and Close still waits for them, then
// returns ctx's error.
func (s *subscription) Close(ctx context.Context) error {
	defer s.b.subs.Remove(s)
	return s.close(ctx, func() {
		for _, g := range s.groups {
			g.reassign()
		}
	}, &s.workers, s.teardown)
}

// teardown stops the heartbeat, leaves the membership and stops the
// watchers. The workers must have stopped.
func (s *subscription) teardown() {
	s.halt()
	s.bg.Wait() // the heartbeat
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for _, g := range s.groups {
		g.leave(ctx)
	}
	s.cancel()
}

// heartbeat keeps the instance's membership keys alive. Of a run of
// failures, only the first is logged as a warning.
func (s *subscription) heartbeat() {
	defer s.bg.Done()
	t := time.NewTicker(s.members.heartbeat)
	defer t.Stop()
	failing := make([]bool, len(s.groups))
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		for i, g := range s.groups {
			ctx, cancel := context.WithTimeout(context.Background(), s.members.heartbeat)
			err := g.put(ctx)
			cancel()
			switch {
			case err == nil && failing[i]:
				s.log(slog.LevelInfo, "membership heartbeat back", slog.String("channel", g.channel))
			case err != nil && !failing[i] && !s.stopping():
				s.log(slog.LevelWarn, "membership heartbeat failed; the other instances take over this one's shards if it fails for longer than the TTL",
					slog.String("channel", g.channel), slog.Duration("ttl", s.members.ttl), slog.Any("error", err))
			}
			failing[i] = err != nil
		}
	}
}

// followReconnects refreshes the instance's membership keys as soon as
// the connection is re-established, as they may have expired meanwhile.
func (s *subscription) followReconnects(ch chan nats.Status) {
	defer s.bg.Done()
	defer s.b.nc.RemoveStatusListener(ch)
	for {
		select {
		case <-s.stop:
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
		}
		s.log(slog.LevelInfo, "reconnected; refreshing the membership")
		for _, g := range s.groups {
			if !s.retry(func(ctx context.Context) error {
				return g.put(ctx)
			}, "refreshing the membership", g.channel) {
				return
			}
		}
	}
}

// retry runs f until it succeeds, with growing pauses, and reports false
// if the subscription stopped first.
func (s *subscription) retry(f func(context.Context) error, what, channel string) bool {
	for failures := 0; ; failures++ {
		ctx, cancel := context.WithTimeout(context.Background(), max(s.members.heartbeat, 2*time.Second))
		err := f(ctx)
		cancel()
		if err == nil {
			if failures > 0 {
				s.log(slog.LevelInfo, what+" succeeded", slog.String("channel", channel), slog.Int("failures", failures))
			}
			return true
		}
		if s.stopping() {
			return false
		}
		level := slog.LevelDebug
		if failures == 0 {
			level = slog.LevelWarn
		}
		s.log(level, what+" failed; will retry", slog.String("channel", channel), slog.Any("error", err))
		t := time.NewTimer(backoff.Exponential(250*time.Millisecond, 5*time.Second, failures+1))
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return false
		}
	}
}

// newGroup makes sure the channel's stream and the subscriber id's
// consumers on its shards exist.
func (s *subscription) newGroup(ctx context.Context, channel string) (*group, error) {
	cs, err := s.b.channelStream(ctx, channel)
	if err != nil {
		return nil, err
	}
	g := &group{
		s:       s,
		channel: channel,
		stream:  cs.stream,
		prefix:  memberPrefix(s.cfg.SubscriberID, channel),
		members: make(map[string]int),
		owned:   make([]bool, cs.shards),
	}
	g.key = g.prefix + s.id
	for shard := range cs.shards {
		cons, err := s.b.js.CreateOrUpdateConsumer(ctx, cs.stream, jetstream.ConsumerConfig{
			Durable: consumerName(s.cfg.SubscriberID, shard),
			Description: fmt.Sprintf("Courier subscriber %s on channel %s, shard %d",
				s.cfg.SubscriberID, channel, shard),
			DeliverPolicy:     jetstream.DeliverNewPolicy,
			AckPolicy:         jetstream.AckExplicitPolicy,
			AckWait:           s.b.cfg.ackWait,
			MaxDeliver:        -1, // the Processor dead-letters
			MaxAckPending:     1,  // one message of a shard at a time, in order
			FilterSubject:     shardSubject(channel, shard),
			InactiveThreshold: s.b.cfg.consumerExpiry,
			Metadata: map[string]string{
				"courier.subscriber": s.cfg.SubscriberID,
				metaChannel:          channel,
				"courier.shard":      strconv.Itoa(shard),
			},
		})
		if err != nil {
			return nil, fmt.Errorf("channel %q: consumer for shard %d: %w", channel, shard, err)
		}
		g.workers = append(g.workers, &worker{g: g, shard: shard, cons: cons, wake: make(chan struct{}, 1)})
	}
	return g, nil
}
