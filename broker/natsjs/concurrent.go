package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
)

// concurrentMaxAckPending bounds the messages of one channel delivered to
// a concurrent subscriber id and not yet acknowledged, over all its
// instances: each instance holds at most twice its MaxInFlight of them
// (those in flight and one pull's worth waiting), so it only matters with
// many instances or large limits.
const concurrentMaxAckPending = 8192

// concurrent is a subscription made with broker.WithConcurrentDelivery:
// per channel, one durable pull consumer shared by every instance of the
// subscriber id, over all the channel's subjects, as a plain nats.go
// application would consume a stream, and MaxInFlight workers per
// instance that take the channels' messages as they come. Nothing is
// sharded and nothing is handed over: JetStream spreads the messages
// over the instances' pull requests, and a message an instance does not
// acknowledge is delivered again, to any of them.
type concurrent struct {
	b    *Broker
	cfg  broker.SubscribeConfig
	proc *adapter.Processor
	id   string

	lifecycle
	pulls   []*pull
	msgs    chan delivery // from the pulls to the workers
	workers sync.WaitGroup
}

// pull consumes one channel for a concurrent subscription.
type pull struct {
	channel string
	cons    jetstream.Consumer
	cc      jetstream.ConsumeContext
}

// delivery is a message and the channel it came from.
type delivery struct {
	channel string
	msg     jetstream.Msg
}

// concurrentConsumerName is the durable consumer of subscriberID's
// concurrent subscription on a channel's stream.
func concurrentConsumerName(subscriberID string) string {
	return readable(subscriberID) + "-" + hash64(subscriberID) + "-all"
}

// subscribeConcurrent starts a concurrent subscription. Its consumers
// exist before it returns, so it receives every message sent afterwards.
func (b *Broker) subscribeConcurrent(ctx context.Context, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	s := &concurrent{
		b:         b,
		cfg:       cfg,
		proc:      adapter.NewProcessor(cfg, b),
		id:        nuid.Next(),
		lifecycle: newLifecycle(ctx),
		msgs:      make(chan delivery),
	}
	fail := func(err error) (broker.Subscription, error) {
		s.teardown()
		return nil, fmt.Errorf("natsjs: subscribe %q: %w", cfg.SubscriberID, b.sendErr(err))
	}
	for _, ch := range cfg.Channels {
		cs, err := b.channelStream(ctx, ch)
		if err != nil {
			return fail(err)
		}
		cons, err := b.concurrentConsumer(ctx, cs, cfg.SubscriberID)
		if err != nil {
			return fail(fmt.Errorf("channel %q: %w", ch, err))
		}
		s.pulls = append(s.pulls, &pull{channel: ch, cons: cons})
	}
	batch := max(2*cfg.MaxInFlight, pullBatch)
	err := b.subs.Add(s, func() {
		for range cfg.MaxInFlight {
			s.workers.Go(s.work)
		}
	})
	if err != nil {
		return fail(err)
	}
	for _, p := range s.pulls {
		p.cc, err = p.cons.Consume(s.hand(p.channel),
			jetstream.PullMaxMessages(batch), jetstream.PullExpiry(pullExpiry),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if !s.stopping() && !b.nc.IsClosed() {
					s.log(slog.LevelWarn, "pulling the channel failed; the client retries", slog.String("channel", p.channel), slog.Any("error", err))
				}
			}))
		if err != nil {
			_ = s.Close(context.Background())
			return nil, fmt.Errorf("natsjs: subscribe %q: channel %q: %w", cfg.SubscriberID, p.channel, b.sendErr(err))
		}
	}
	return s, nil
}

// concurrentConsumer returns the subscriber id's concurrent consumer on a
// channel's stream, creating it if needed. A new one starts after the last
// message stored, or, where the subscriber id consumed the channel in
// ordered mode before, after the last message all its shards handled, so
// that switching mode loses nothing (what some shards handled beyond that
// is delivered again).
func (b *Broker) concurrentConsumer(ctx context.Context, cs *channelStream, subscriberID string) (jetstream.Consumer, error) {
	name := concurrentConsumerName(subscriberID)
	cons, err := b.js.Consumer(ctx, cs.stream, name)
	if err == nil {
		return cons, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("concurrent consumer: %w", err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:           name,
		Description:       fmt.Sprintf("Courier subscriber %s on channel %s, concurrent delivery", subscriberID, cs.channel),
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           b.cfg.ackWait,
		MaxDeliver:        -1, // the Processor dead-letters
		MaxAckPending:     concurrentMaxAckPending,
		FilterSubject:     channelSubjects(cs.channel),
		InactiveThreshold: b.cfg.consumerExpiry,
		Metadata: map[string]string{
			"courier.subscriber": subscriberID,
			metaChannel:          cs.channel,
			"courier.delivery":   broker.DeliveryConcurrent.String(),
		},
	}
	if floor, ok, err := b.orderedFloor(ctx, cs, subscriberID); err != nil {
		return nil, err
	} else if ok {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, floor+1
	}
	cons, err = b.js.CreateConsumer(ctx, cs.stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		cons, err = b.js.Consumer(ctx, cs.stream, name) // created meanwhile by another instance
	}
	if err != nil {
		return nil, fmt.Errorf("concurrent consumer: %w", err)
	}
	return cons, nil
}

// orderedFloor returns the last stream sequence that every shard consumer
// of subscriberID on the channel has acknowledged, if it has any.
func (b *Broker) orderedFloor(ctx context.Context, cs *channelStream, subscriberID string) (uint64, bool, error) {
	var floor uint64
	found := false
	for shard := range cs.shards {
		cons, err := b.js.Consumer(ctx, cs.stream, consumerName(subscriberID, shard))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("shard %d consumer: %w", shard, err)
		}
		info := cons.CachedInfo()
		if !found || info.AckFloor.Stream < floor {
			floor = info.AckFloor.Stream
		}
		found = true
	}
	return floor, found, nil
}

func (s *concurrent) log(level slog.Level, msg string, attrs ...slog.Attr) {
	attrs = append(attrs, slog.String("subscriber", s.cfg.SubscriberID), slog.String("instance", s.id))
	s.cfg.Logger.LogAttrs(context.Background(), level, "courier: natsjs: "+msg, attrs...)
}

// hand returns the callback of a channel's pull: it hands each message to
// a free worker, waiting for one, and gives the message back to JetStream
// at once if the subscription is closing.
func (s *concurrent) hand(channel string) jetstream.MessageHandler {
	return func(msg jetstream.Msg) {
		select {
		case s.msgs <- delivery{channel: channel, msg: msg}:
		case <-s.stop:
			_ = msg.Nak()
		}
	}
}

// work handles messages until the subscription stops.
func (s *concurrent) work() {
	var p progress
	for {
		var d delivery
		select {
		case d = <-s.msgs:
		case <-s.stop:
			return
		}
		if s.stopping() {
			_ = d.msg.Nak()
			return
		}
		meta, err := d.msg.Metadata()
		if err != nil {
			s.log(slog.LevelError, "message without JetStream metadata; acknowledged and skipped", slog.String("channel", d.channel), slog.Any("error", err))
			_ = d.msg.Ack()
			continue
		}
		p.start(d.msg, s.b.cfg.ackWait/3)
		perr := s.proc.Process(s.hctx, s.stop, d.channel, shardOfSubject(d.msg.Subject()), max(int(meta.NumDelivered)-1, 0), decode(d.msg, meta))
		p.stop()
		if err := settle(d.msg, perr); err != nil && !s.b.nc.IsClosed() {
			s.log(slog.LevelWarn, settleFailed, slog.String("channel", d.channel), slog.Bool("handled", perr == nil), slog.Any("error", err))
		}
	}
}

// Close stops pulling, lets the handlers in flight finish and gives back
// the messages received but not started, which go to the other instances.
// If ctx ends first, the handlers' contexts are cancelled and Close still
// waits for them, then returns ctx's error.
func (s *concurrent) Close(ctx context.Context) error {
	defer s.b.subs.Remove(s)
	return s.close(ctx, func() {
		for _, p := range s.pulls {
			if p.cc != nil {
				p.cc.Drain() // the messages still buffered reach hand, which gives them back
			}
		}
	}, &s.workers, s.teardown)
}

// teardown waits, within drainTimeout, for the pulls to give back what
// they had buffered. The workers must have stopped.
func (s *concurrent) teardown() {
	s.halt()
	deadline := time.After(drainTimeout)
	for _, p := range s.pulls {
		if p.cc == nil {
			continue
		}
		select {
		case <-p.cc.Closed():
		case <-deadline:
			p.cc.Stop()
		}
	}
	s.cancel()
}
