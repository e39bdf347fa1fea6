package bench

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/components/requestreply"
	wmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// WatermillCall runs the call workload on Watermill's request-reply
// component (components/requestreply) over a GoChannel: a CQRS command bus
// and command processor carry the requests, the PubSubBackend the replies.
// Each call listens on a reply topic of its own (named after the
// operation id), the set-up Watermill's documentation recommends for
// concurrent callers; with one shared reply topic, every caller would
// receive every reply.
type WatermillCall struct{}

// Name implements CallSystem.
func (WatermillCall) Name() string { return "watermill-requestreply-gochannel" }

// StartCalls implements CallSystem.
func (WatermillCall) StartCalls(ctx context.Context) (CallSession, error) {
	logger := watermill.NopLogger{}
	ps := gochannel.NewGoChannel(gochannel.Config{}, logger)
	replyTopic := func(op requestreply.OperationID) string { return "bench.replies." + string(op) }
	backend, err := requestreply.NewPubSubBackend[EchoReply](requestreply.PubSubBackendConfig{
		Publisher: ps,
		SubscriberConstructor: func(requestreply.PubSubBackendSubscribeParams) (wmessage.Subscriber, error) {
			return ps, nil
		},
		GenerateSubscribeTopic: func(p requestreply.PubSubBackendSubscribeParams) (string, error) {
			return replyTopic(p.OperationID), nil
		},
		GeneratePublishTopic: func(p requestreply.PubSubBackendPublishParams) (string, error) {
			return replyTopic(p.OperationID), nil
		},
		Logger: logger,
	}, requestreply.BackendPubsubJSONMarshaler[EchoReply]{})
	if err != nil {
		return nil, errors.Join(err, ps.Close())
	}
	router, err := wmessage.NewRouter(wmessage.RouterConfig{}, logger)
	if err != nil {
		return nil, errors.Join(err, ps.Close())
	}
	bus, err := cqrs.NewCommandBusWithConfig(ps, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(cqrs.CommandBusGeneratePublishTopicParams) (string, error) { return callChannel, nil },
		Marshaler:            cqrs.JSONMarshaler{},
		Logger:               logger,
	})
	if err != nil {
		return nil, errors.Join(err, ps.Close())
	}
	proc, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) { return callChannel, nil },
		SubscriberConstructor: func(cqrs.CommandProcessorSubscriberConstructorParams) (wmessage.Subscriber, error) {
			return ps, nil
		},
		Marshaler: cqrs.JSONMarshaler{},
		Logger:    logger,
	})
	if err != nil {
		return nil, errors.Join(err, ps.Close())
	}
	err = proc.AddHandlers(requestreply.NewCommandHandlerWithResult("echo", backend,
		func(_ context.Context, cmd *EchoRequest) (EchoReply, error) { return EchoReply{N: cmd.N}, nil }))
	if err != nil {
		return nil, errors.Join(err, ps.Close())
	}
	rr, err := startRouter(ctx, ps, router)
	if err != nil {
		return nil, err
	}
	return &watermillCalls{runningRouter: rr, bus: bus, backend: backend}, nil
}

type watermillCalls struct {
	*runningRouter
	bus     *cqrs.CommandBus
	backend *requestreply.PubSubBackend[EchoReply]
}

func (s *watermillCalls) Call(ctx context.Context, n int) (int, error) {
	r, err := requestreply.SendWithReply[EchoReply](ctx, s.bus, s.backend, &EchoRequest{N: n})
	if err != nil {
		return 0, err
	}
	if r.Error != nil {
		return 0, r.Error
	}
	return r.HandlerResult.N, nil
}

// runningRouter is a Watermill message.Router running in its own goroutine
// over a GoChannel, and the means to stop both.
type runningRouter struct {
	ps     *gochannel.GoChannel
	router *wmessage.Router
	cancel context.CancelFunc
	done   chan error
}

// startRouter runs router until Close and returns once it is running.
func startRouter(ctx context.Context, ps *gochannel.GoChannel, router *wmessage.Router) (*runningRouter, error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- router.Run(rctx) }()
	select {
	case <-router.Running():
		return &runningRouter{ps: ps, router: router, cancel: cancel, done: done}, nil
	case err := <-done:
		cancel()
		return nil, errors.Join(err, ps.Close())
	}
}

// Close stops the router, waits for it and closes the GoChannel.
func (r *runningRouter) Close(ctx context.Context) error {
	r.cancel()
	var err error
	select {
	case err = <-r.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return errors.Join(err, r.router.Close(), r.ps.Close())
}
