package tracing

import (
	"context"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/courier-go/courier/broker"
)

// Broker returns a broker that works through b with tracing: its Send
// is Producer's, its dead letters go through Producer(broker.DeadLetters(b)),
// and its Subscribe follows each delivery (SubscribeOption, before the
// caller's options, so that a broker.WithTracer among them wins).
//
// The returned broker has b's optional methods (broker.ChannelRemover,
// broker.SubscriberRemover, broker.Pinger) if b has them, and only then.
// Closing it closes b. When the Tracing is off (see New), Broker returns b
// itself.
func (t *Tracing) Broker(b broker.Broker) broker.Broker {
	if t.off {
		return b
	}
	tb := &tracedBroker{producer: producer{t: t, p: b, op: "send", opType: semconv.MessagingOperationTypeSend}, b: b}
	cr, hasCR := b.(broker.ChannelRemover)
	sr, hasSR := b.(broker.SubscriberRemover)
	pg, hasPing := b.(broker.Pinger)
	type (
		c = channelRemover
		s = subscriberRemover
		p = pinger
	)
	switch {
	case hasCR && hasSR && hasPing:
		return struct {
			*tracedBroker
			c
			s
			p
		}{tb, c{cr}, s{sr}, p{pg}}
	case hasCR && hasSR:
		return struct {
			*tracedBroker
			c
			s
		}{tb, c{cr}, s{sr}}
	case hasCR && hasPing:
		return struct {
			*tracedBroker
			c
			p
		}{tb, c{cr}, p{pg}}
	case hasSR && hasPing:
		return struct {
			*tracedBroker
			s
			p
		}{tb, s{sr}, p{pg}}
	case hasCR:
		return struct {
			*tracedBroker
			c
		}{tb, c{cr}}
	case hasSR:
		return struct {
			*tracedBroker
			s
		}{tb, s{sr}}
	case hasPing:
		return struct {
			*tracedBroker
			p
		}{tb, p{pg}}
	}
	return tb
}

type tracedBroker struct {
	producer
	b broker.Broker
}

// Subscribe subscribes through the wrapped broker with the tracer first.
func (b *tracedBroker) Subscribe(ctx context.Context, subscriberID string, channels []string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	all := make([]broker.SubscribeOption, 0, len(opts)+1)
	all = append(all, b.t.SubscribeOption())
	return b.b.Subscribe(ctx, subscriberID, channels, h, append(all, opts...)...)
}

// Close closes the wrapped broker.
func (b *tracedBroker) Close(ctx context.Context) error { return b.b.Close(ctx) }

type channelRemover struct{ r broker.ChannelRemover }

func (c channelRemover) RemoveChannel(ctx context.Context, channel string) error {
	return c.r.RemoveChannel(ctx, channel)
}

type subscriberRemover struct{ r broker.SubscriberRemover }

func (s subscriberRemover) RemoveSubscriber(ctx context.Context, subscriberID string, channels []string) error {
	return s.r.RemoveSubscriber(ctx, subscriberID, channels)
}

type pinger struct{ p broker.Pinger }

func (p pinger) Ping(ctx context.Context) error { return p.p.Ping(ctx) }
