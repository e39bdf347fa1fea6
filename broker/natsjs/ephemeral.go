package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/backoff"
)

// ephemeral is a subscription made with broker.WithEphemeral: one ordered
// consumer per channel, which JetStream keeps in memory and which needs no
// acknowledgements, read by one goroutine per channel.
type ephemeral struct {
	b       *Broker
	cfg     broker.SubscribeConfig
	proc    *adapter.Processor
	id      string
	readers []*reader

	lifecycle
	readersWG sync.WaitGroup
}

// reader reads one channel of an ephemeral subscription.
type reader struct {
	channel string
	stream  string
	cons    jetstream.Consumer
	it      jetstream.MessagesContext
}

// subscribeEphemeral starts an ephemeral subscription. Its consumers are
// created before it returns, so it receives every message sent afterwards.
func (b *Broker) subscribeEphemeral(ctx context.Context, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	s := &ephemeral{
		b:         b,
		cfg:       cfg,
		proc:      adapter.NewProcessor(cfg, b),
		id:        nuid.Next(),
		lifecycle: newLifecycle(ctx),
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
		// Start after the last message stored now, as an explicit
		// sequence rather than "new": if the consumer is created again
		// before it delivered anything, it must not skip what came in
		// meanwhile.
		stream, err := b.js.Stream(ctx, cs.stream)
		if err != nil {
			return fail(fmt.Errorf("channel %q: stream %s: %w", ch, cs.stream, err))
		}
		cons, err := b.js.OrderedConsumer(ctx, cs.stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{channelSubjects(ch)},
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    stream.CachedInfo().State.LastSeq + 1,
			NamePrefix:     readable(cfg.SubscriberID) + "-" + s.id,
			Metadata: map[string]string{
				"courier.subscriber": cfg.SubscriberID,
				metaChannel:          ch,
				"courier.ephemeral":  "true",
			},
		})
		if err != nil {
			return fail(fmt.Errorf("channel %q: ephemeral consumer: %w", ch, err))
		}
		r := &reader{channel: ch, stream: cs.stream, cons: cons}
		s.readers = append(s.readers, r)
		if r.it, err = cons.Messages(jetstream.PullMaxMessages(pullBatch)); err != nil {
			return fail(fmt.Errorf("channel %q: ephemeral consumer: %w", ch, err))
		}
	}
	err := b.subs.Add(s, func() {
		for _, r := range s.readers {
			s.readersWG.Add(1)
			go s.read(r)
		}
	})
	if err != nil {
		return fail(err)
	}
	return s, nil
}

func (s *ephemeral) log(level slog.Level, msg string, attrs ...slog.Attr) {
	attrs = append(attrs, slog.String("subscriber", s.cfg.SubscriberID), slog.String("instance", s.id))
	s.cfg.Logger.LogAttrs(context.Background(), level, "courier: natsjs: "+msg, attrs...)
}

// read hands r's messages to the Processor one at a time, in the order of
// the stream, until the subscription stops. The ordered consumer resumes
// by itself after a reconnection or a server restart, from the message
// after the last one it delivered.
func (s *ephemeral) read(r *reader) {
	defer s.readersWG.Done()
	failures := 0
	for {
		msg, err := r.it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || s.stopping() {
				return
			}
			failures++
			if failures == 1 {
				s.log(slog.LevelWarn, "reading the channel failed; will retry", slog.String("channel", r.channel), slog.Any("error", err))
			}
			t := time.NewTimer(backoff.Exponential(retryWait, maxRetryWait, failures))
			select {
			case <-t.C:
			case <-s.stop:
			}
			t.Stop()
			continue
		}
		failures = 0
		meta, err := msg.Metadata()
		if err != nil {
			s.log(slog.LevelError, "message without JetStream metadata; skipped", slog.String("channel", r.channel), slog.Any("error", err))
			continue
		}
		if err := s.proc.Process(s.hctx, s.stop, r.channel, shardOfSubject(msg.Subject()), 0, decode(msg, meta)); err != nil {
			return // abandoned: the subscription is closing
		}
	}
}

// shardOfSubject reads the shard number at the end of a channel's subject,
// or -1.
func shardOfSubject(subject string) int {
	n, err := strconv.Atoi(subject[strings.LastIndexByte(subject, '.')+1:])
	if err != nil {
		return -1
	}
	return n
}

// Close stops delivery, lets the handlers in flight finish and deletes the
// subscription's consumers. Messages received but not started are
// dropped: no one else was to receive them. If ctx ends first, the
// handlers' contexts are cancelled and Close still waits for them, then
// returns ctx's error.
func (s *ephemeral) Close(ctx context.Context) error {
	defer s.b.subs.Remove(s)
	return s.close(ctx, func() {
		for _, r := range s.readers {
			r.it.Stop()
		}
	}, &s.readersWG, s.teardown)
}

// teardown stops the readers' iterators and deletes their consumers
// rather than leave them to expire. The readers must have stopped.
func (s *ephemeral) teardown() {
	s.halt()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for _, r := range s.readers {
		if r.it != nil {
			r.it.Stop()
		}
		if info := r.cons.CachedInfo(); info != nil && !s.b.nc.IsClosed() {
			_ = s.b.js.DeleteConsumer(ctx, r.stream, info.Name)
		}
	}
	s.cancel()
}
