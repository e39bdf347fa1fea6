package bench

import (
	"context"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
)

// Channel and subscriber names used by the adapters.
const (
	benchChannel    = "bench.events"
	benchSubscriber = "bench-consumer"
)

// CourierMemory runs the workload on Courier's in-memory broker with its
// defaults (memory.New()): the consumers are instances of one subscriber
// id, sharing the channel's shards, and a handler returning nil
// acknowledges the message.
type CourierMemory struct {
	// Options are passed to memory.New.
	Options []memory.Option
	// Concurrent subscribes in concurrent delivery mode, with benchInFlight
	// messages in flight per instance, instead of the default ordered
	// mode; the system is then "courier-memory-concurrent".
	Concurrent bool
}

// benchInFlight is the MaxInFlight of every Courier system in concurrent
// delivery mode: as many messages in flight per instance as the prefetch
// the AMQP systems are given.
const benchInFlight = 16

// Name implements System.
func (c CourierMemory) Name() string {
	if c.Concurrent {
		return "courier-memory-concurrent"
	}
	return "courier-memory"
}

// Start implements System.
func (c CourierMemory) Start(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
	b, err := memory.New(c.Options...)
	if err != nil {
		return nil, err
	}
	h := broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		deliver(m.Payload)
		return nil
	})
	var opts []broker.SubscribeOption
	if c.Concurrent {
		opts = append(opts, broker.WithConcurrentDelivery(benchInFlight))
	}
	for range consumers {
		if _, err := b.Subscribe(ctx, benchSubscriber, []string{benchChannel}, h, opts...); err != nil {
			_ = b.Close(ctx)
			return nil, err
		}
	}
	return courierSession{b}, nil
}

type courierSession struct{ b *memory.Broker }

// Publish sends one message built the way an application would: a new
// message with an ID and the partition key header.
func (s courierSession) Publish(ctx context.Context, key string, payload []byte) error {
	m := message.New(payload)
	m.SetHeader(message.HeaderPartitionID, key)
	return s.b.Send(ctx, benchChannel, m)
}

// Close closes the broker and with it every subscription.
func (s courierSession) Close(ctx context.Context) error { return s.b.Close(ctx) }
