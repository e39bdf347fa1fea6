package bench

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/components/requestreply"
	wmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/nats-io/nats.go"
)

// watermillTransport is what a Watermill component runs on: a publisher and
// subscriber for the commands (or events), and for the replies. Each
// constructor registers its teardown in the cleanup it is given.
type watermillTransport struct {
	// Name is the transport's part of the system's name.
	Name string
	// Topic is the commands' topic on this transport.
	Topic string
	Open  func(ctx context.Context, c *cleanup) (watermillPubSubs, error)
}

type watermillPubSubs struct {
	cmdPub   wmessage.Publisher
	cmdSub   wmessage.Subscriber
	replyPub wmessage.Publisher
	replySub wmessage.Subscriber
}

// goChannelTransport is one GoChannel with its defaults for everything.
var goChannelTransport = watermillTransport{Name: "gochannel", Topic: callChannel,
	Open: func(_ context.Context, c *cleanup) (watermillPubSubs, error) {
		ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
		c.add(func(context.Context) error { return ps.Close() })
		return watermillPubSubs{ps, ps, ps, ps}, nil
	}}

// natsTransport is Watermill's NATS adapter (watermill-nats/v2) on an
// embedded nats-server started as Courier's is: the commands go through
// JetStream (a file-backed stream, a durable queue group, explicit acks,
// the publisher waiting for the server's acknowledgement), the replies
// through core NATS. Replies are not durable here, unlike Courier's, which
// go through JetStream too: Watermill's request-reply subscribes once per
// call, and in JetStream mode its NATS adapter would provision a stream
// and a durable consumer for every call.
var natsTransport = watermillTransport{Name: "nats", Topic: "bench_calls",
	Open: func(ctx context.Context, c *cleanup) (watermillPubSubs, error) {
		srv, err := embeddedNATS(ctx, c)
		if err != nil {
			return watermillPubSubs{}, err
		}
		logger := watermill.NopLogger{}
		opts := []nats.Option{nats.InProcessServer(srv.Server()), nats.NoReconnect()}
		js := wmnats.JetStreamConfig{AutoProvision: true, AckAsync: true, DurablePrefix: "bench-responder",
			SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()}}
		core := wmnats.JetStreamConfig{Disabled: true}
		var out watermillPubSubs
		for _, p := range []struct {
			pub *wmessage.Publisher
			cfg wmnats.JetStreamConfig
		}{{&out.cmdPub, js}, {&out.replyPub, core}} {
			pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{NatsOptions: opts, JetStream: p.cfg}, logger)
			if err != nil {
				return out, err
			}
			c.add(func(context.Context) error { return pub.Close() })
			*p.pub = pub
		}
		for _, s := range []struct {
			sub   *wmessage.Subscriber
			group string
			cfg   wmnats.JetStreamConfig
		}{{&out.cmdSub, "bench-responder", js}, {&out.replySub, "", core}} {
			sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{QueueGroupPrefix: s.group, SubscribersCount: 1,
				AckWaitTimeout: 30 * time.Second, CloseTimeout: 5 * time.Second, NatsOptions: opts, JetStream: s.cfg}, logger)
			if err != nil {
				return out, err
			}
			c.add(func(context.Context) error { return sub.Close() })
			*s.sub = sub
		}
		return out, nil
	}}

// WatermillCall runs the call workload on Watermill's request-reply
// component (components/requestreply): a CQRS command bus and command
// processor carry the requests, the PubSubBackend the replies. Each call
// listens on a reply topic of its own (named after the operation id), the
// set-up Watermill's documentation recommends for concurrent callers; with
// one shared reply topic, every caller would receive every reply.
type WatermillCall struct{ Transport watermillTransport }

// Unsupported says why the system cannot run cfg. Over NATS, with 64
// concurrent callers, calls of Watermill's request-reply did not get their
// replies within the call timeout in our runs: it subscribes to each call's
// reply topic on core NATS just before sending the command, and a reply
// published before the server knows of that subscription is dropped. Paced
// calls are measured.
func (w WatermillCall) Unsupported(cfg CallConfig) string {
	if w.Transport.Name == natsTransport.Name && cfg.Rate == 0 {
		return "calls did not get their replies within the timeout under 64 concurrent callers"
	}
	return ""
}

// LosesReplies says why, over NATS, a call may get no reply (the race that
// Unsupported describes, rarer at a steady pace); RunCalls counts such calls
// as lost.
func (w WatermillCall) LosesReplies() string {
	if w.Transport.Name == natsTransport.Name {
		return "a reply published before core NATS knows of the call's reply subscription is dropped"
	}
	return ""
}

// Name implements CallSystem.
func (w WatermillCall) Name() string { return "watermill-requestreply-" + w.Transport.Name }

// StartCalls implements CallSystem.
func (w WatermillCall) StartCalls(ctx context.Context) (CallSession, error) {
	var c cleanup
	t, err := w.Transport.Open(ctx, &c)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	logger := watermill.NopLogger{}
	replyTopic := func(op requestreply.OperationID) string { return "bench.replies." + string(op) }
	backend, err := requestreply.NewPubSubBackend[EchoReply](requestreply.PubSubBackendConfig{
		Publisher: t.replyPub,
		SubscriberConstructor: func(requestreply.PubSubBackendSubscribeParams) (wmessage.Subscriber, error) {
			return t.replySub, nil
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
		return nil, c.fail(ctx, err)
	}
	router, err := wmessage.NewRouter(wmessage.RouterConfig{}, logger)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	topic := func() (string, error) { return w.Transport.Topic, nil }
	bus, err := cqrs.NewCommandBusWithConfig(t.cmdPub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(cqrs.CommandBusGeneratePublishTopicParams) (string, error) { return topic() },
		Marshaler:            cqrs.JSONMarshaler{},
		Logger:               logger,
	})
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	proc, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) { return topic() },
		SubscriberConstructor: func(cqrs.CommandProcessorSubscriberConstructorParams) (wmessage.Subscriber, error) {
			return t.cmdSub, nil
		},
		Marshaler: cqrs.JSONMarshaler{},
		Logger:    logger,
	})
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	err = proc.AddHandlers(requestreply.NewCommandHandlerWithResult("echo", backend,
		func(_ context.Context, cmd *EchoRequest) (EchoReply, error) { return EchoReply{N: cmd.N}, nil }))
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	rr, err := startRouter(ctx, router, c)
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

// runningRouter is a Watermill message.Router running in its own goroutine,
// and the teardown of what it runs on.
type runningRouter struct {
	router *wmessage.Router
	cancel context.CancelFunc
	done   chan error
	c      cleanup
}

// startRouter runs router until Close and returns once it is running; on
// failure it runs c.
func startRouter(ctx context.Context, router *wmessage.Router, c cleanup) (*runningRouter, error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- router.Run(rctx) }()
	select {
	case <-router.Running():
		return &runningRouter{router: router, cancel: cancel, done: done, c: c}, nil
	case err := <-done:
		cancel()
		return nil, c.fail(ctx, err)
	}
}

// Close stops the router, waits for it and tears down its transport.
func (r *runningRouter) Close(ctx context.Context) error {
	r.cancel()
	var err error
	select {
	case err = <-r.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return errors.Join(err, r.router.Close(), r.c.run(ctx))
}
