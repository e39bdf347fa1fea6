package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// quietLogger discards what the systems under test log, so that logging
// costs the same (nothing) for every system.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// CourierBroker runs the workload on any Courier broker.Broker that Open
// returns: consumers instances of one subscriber id share the channel's
// shards, a handler returning nil acknowledges, and each message is sent
// with one Send call carrying its partition key.
type CourierBroker struct {
	Label string
	// Open opens a fresh broker (and whatever server it needs, which the
	// returned value's Close stops).
	Open func(context.Context) (brokerCloser, error)
	// Probe, if set, checks that the broker's server is reachable.
	ProbeFunc func(context.Context) error
	// SubscribeOptions are passed to every Subscribe.
	SubscribeOptions []broker.SubscribeOption
	// Channel and Subscriber name the channel and subscriber id (default
	// "bench.events" and "bench-consumer").
	Channel, Subscriber string
}

// Name implements System.
func (c CourierBroker) Name() string { return c.Label }

// Probe implements Prober.
func (c CourierBroker) Probe(ctx context.Context) error {
	if c.ProbeFunc == nil {
		return nil
	}
	return c.ProbeFunc(ctx)
}

// Start implements System.
func (c CourierBroker) Start(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
	b, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	h := broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		deliver(m.Payload)
		return nil
	})
	channel, subscriber := cmp.Or(c.Channel, benchChannel), cmp.Or(c.Subscriber, benchSubscriber)
	opts := append([]broker.SubscribeOption{broker.WithLogger(quietLogger)}, c.SubscribeOptions...)
	for i := range consumers {
		if _, err := b.Subscribe(ctx, subscriber, []string{channel}, h, opts...); err != nil {
			return nil, errors.Join(fmt.Errorf("subscribe instance %d: %w", i, err), b.Close(context.WithoutCancel(ctx)))
		}
	}
	return courierBrokerSession{b: b, channel: channel}, nil
}

type courierBrokerSession struct {
	b       brokerCloser
	channel string
}

func (s courierBrokerSession) Publish(ctx context.Context, key string, payload []byte) error {
	m := message.New(payload)
	m.SetHeader(message.HeaderPartitionID, key)
	return s.b.Send(ctx, s.channel, m)
}

// Close closes the broker, its subscriptions and its server.
func (s courierBrokerSession) Close(ctx context.Context) error { return s.b.Close(ctx) }

// funcSession is a Session made of two functions.
type funcSession struct {
	publish func(ctx context.Context, key string, payload []byte) error
	close   func(ctx context.Context) error
}

func (s funcSession) Publish(ctx context.Context, key string, payload []byte) error {
	return s.publish(ctx, key, payload)
}

func (s funcSession) Close(ctx context.Context) error { return s.close(ctx) }

// funcSystem is a System made of a name and a start function.
type funcSystem struct {
	name  string
	start func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error)
	probe func(context.Context) error
}

func (s funcSystem) Name() string { return s.name }

func (s funcSystem) Start(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
	return s.start(ctx, consumers, deliver)
}

func (s funcSystem) Probe(ctx context.Context) error {
	if s.probe == nil {
		return nil
	}
	return s.probe(ctx)
}

// cleanup collects the teardown steps of a session being started, to run
// them in reverse order on failure or at Close.
type cleanup []func(context.Context) error

func (c *cleanup) add(f func(context.Context) error) { *c = append(*c, f) }

func (c cleanup) run(ctx context.Context) error {
	var errs []error
	for i := len(c) - 1; i >= 0; i-- {
		errs = append(errs, c[i](ctx))
	}
	return errors.Join(errs...)
}

// fail runs the cleanup and returns err joined with its errors.
func (c cleanup) fail(ctx context.Context, err error) error {
	return errors.Join(err, c.run(context.WithoutCancel(ctx)))
}
