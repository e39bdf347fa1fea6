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
// broker.SubscriberRemover, broker.Pinger, broker.DeadLetterBrowser) if b
// has them, and only then.
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
	dl, hasDL := b.(broker.DeadLetterBrowser)
	type (
		c = channelRemover
		s = subscriberRemover
		p = pinger
		d = deadLetterBrowser
	)
	// One struct type per combination, so that the result has exactly
	// b's optional methods.
	switch {
	case hasCR && hasSR && hasPing && hasDL:
		return struct {
			*tracedBroker
			c
			s
			p
			d
		}{tb, c{cr}, s{sr}, p{pg}, d{dl}}
	case hasCR && hasSR && hasPing:
		return struct {
			*tracedBroker
			c
			s
			p
		}{tb, c{cr}, s{sr}, p{pg}}
	case hasCR && hasSR && hasDL:
		return struct {
			*tracedBroker
			c
			s
			d
		}{tb, c{cr}, s{sr}, d{dl}}
	case hasCR && hasPing && hasDL:
		return struct {
			*tracedBroker
			c
			p
			d
		}{tb, c{cr}, p{pg}, d{dl}}
	case hasSR && hasPing && hasDL:
		return struct {
			*tracedBroker
			s
			p
			d
		}{tb, s{sr}, p{pg}, d{dl}}
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
	case hasCR && hasDL:
		return struct {
			*tracedBroker
			c
			d
		}{tb, c{cr}, d{dl}}
	case hasSR && hasPing:
		return struct {
			*tracedBroker
			s
			p
		}{tb, s{sr}, p{pg}}
	case hasSR && hasDL:
		return struct {
			*tracedBroker
			s
			d
		}{tb, s{sr}, d{dl}}
	case hasPing && hasDL:
		return struct {
			*tracedBroker
			p
			d
		}{tb, p{pg}, d{dl}}
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
	case hasDL:
		return struct {
			*tracedBroker
			d
		}{tb, d{dl}}
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

type deadLetterBrowser struct{ d broker.DeadLetterBrowser }

func (d deadLetterBrowser) BrowseDeadLetters(ctx context.Context, channel string, fn func(broker.DeadLetter) error) error {
	return d.d.BrowseDeadLetters(ctx, channel, fn)
}

func (d deadLetterBrowser) RemoveDeadLetters(ctx context.Context, channel string, letters []broker.DeadLetter) (int, error) {
	return d.d.RemoveDeadLetters(ctx, channel, letters)
}
