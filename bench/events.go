package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	wmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/events"
)

// BenchEvent is the domain event of the event-dispatch workload; its Data
// is the workload's payload, JSON-encoded (base64) by both systems.
type BenchEvent struct {
	Data []byte `json:"data"`
}

const benchAggregate = "BenchAggregate"

// CourierEvents runs the end-to-end workload (Run) as domain events:
// events.Publisher publishes a BenchEvent per message for the aggregate
// whose id is the partition key, and each consumer instance is an
// events.Dispatcher with a typed handler, subscribed under one subscriber
// id.
type CourierEvents struct {
	Label string
	Open  func(context.Context) (brokerCloser, error)
}

// Name implements System.
func (c CourierEvents) Name() string { return c.Label }

// Start implements System.
func (c CourierEvents) Start(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
	b, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	quiet := broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	d := events.NewDispatcher()
	events.On(d, benchAggregate, func(_ context.Context, e events.Event[BenchEvent]) error {
		deliver(e.Payload.Data)
		return nil
	})
	for range consumers {
		if _, err := d.Subscribe(ctx, b, benchSubscriber, quiet); err != nil {
			return nil, errors.Join(err, b.Close(ctx))
		}
	}
	return courierEvents{b: b, pub: events.NewPublisher(b)}, nil
}

type courierEvents struct {
	b   brokerCloser
	pub *events.Publisher
}

func (s courierEvents) Publish(ctx context.Context, key string, payload []byte) error {
	return s.pub.Publish(ctx, benchAggregate, key, BenchEvent{Data: payload})
}

func (s courierEvents) Close(ctx context.Context) error { return s.b.Close(ctx) }

// WatermillEvents runs the end-to-end workload on Watermill's CQRS
// component over a GoChannel with its defaults: cqrs.EventBus publishes,
// a cqrs.EventProcessor on a message.Router dispatches to a typed handler.
// GoChannel has no consumer groups, so the router's one handler consumes
// every event (the consumers argument is not used); the router acks each
// event after its handler returns.
type WatermillEvents struct{}

// Name implements System.
func (WatermillEvents) Name() string { return "watermill-cqrs-gochannel" }

// Start implements System.
func (WatermillEvents) Start(ctx context.Context, _ int, deliver func([]byte)) (Session, error) {
	logger := watermill.NopLogger{}
	ps := gochannel.NewGoChannel(gochannel.Config{}, logger)
	c := cleanup{func(context.Context) error { return ps.Close() }}
	topic := func() (string, error) { return benchAggregate, nil }
	bus, err := cqrs.NewEventBusWithConfig(ps, cqrs.EventBusConfig{
		GeneratePublishTopic: func(cqrs.GenerateEventPublishTopicParams) (string, error) { return topic() },
		Marshaler:            cqrs.JSONMarshaler{},
		Logger:               logger,
	})
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	router, err := wmessage.NewRouter(wmessage.RouterConfig{}, logger)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	proc, err := cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) { return topic() },
		SubscriberConstructor: func(cqrs.EventProcessorSubscriberConstructorParams) (wmessage.Subscriber, error) {
			return ps, nil
		},
		Marshaler: cqrs.JSONMarshaler{},
		Logger:    logger,
	})
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	err = proc.AddHandlers(cqrs.NewEventHandler("bench", func(_ context.Context, e *BenchEvent) error {
		deliver(e.Data)
		return nil
	}))
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	rr, err := startRouter(ctx, router, c)
	if err != nil {
		return nil, err
	}
	return &watermillEvents{runningRouter: rr, bus: bus}, nil
}

type watermillEvents struct {
	*runningRouter
	bus *cqrs.EventBus
}

func (s *watermillEvents) Publish(ctx context.Context, _ string, payload []byte) error {
	return s.bus.Publish(ctx, &BenchEvent{Data: payload})
}
