package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/commands"
)

// EchoRequest and EchoReply are the request and reply of the call
// workload, encoded as JSON by every system.
type (
	EchoRequest struct {
		N int `json:"n"`
	}
	EchoReply struct {
		N int `json:"n"`
	}
)

const callChannel = "bench.calls"

// brokerCloser is a Broker plus whatever must stop after it (an embedded
// server and its directory).
type brokerCloser struct {
	broker.Broker
	after func(context.Context) error
}

func (b brokerCloser) Close(ctx context.Context) error {
	err := b.Broker.Close(ctx)
	if b.after != nil {
		err = errors.Join(err, b.after(ctx))
	}
	return err
}

// newCourierMemory opens Courier's in-memory broker.
func newCourierMemory(context.Context) (brokerCloser, error) {
	b, err := memory.New()
	return brokerCloser{Broker: b}, err
}

// newCourierEmbeddedNATS starts an embedded NATS JetStream server with
// file storage in a temporary directory, as an application on Courier's
// durable default would, and opens a Broker on it.
func newCourierEmbeddedNATS(ctx context.Context) (brokerCloser, error) {
	dir, err := os.MkdirTemp("", "courier-bench-nats-")
	if err != nil {
		return brokerCloser{}, err
	}
	srv, err := embedded.Start(ctx, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return brokerCloser{}, err
	}
	stop := func(ctx context.Context) error {
		return errors.Join(srv.Shutdown(ctx), os.RemoveAll(dir))
	}
	b, err := srv.Broker(ctx)
	if err != nil {
		return brokerCloser{}, errors.Join(err, stop(ctx))
	}
	return brokerCloser{Broker: b, after: stop}, nil
}

// CourierCall runs the call workload on commands.Call: a command dispatcher
// answers EchoRequest commands, a commands.Caller waits for the replies on
// its own reply channel.
type CourierCall struct {
	Label string
	Open  func(context.Context) (brokerCloser, error)
}

// Name implements CallSystem.
func (c CourierCall) Name() string { return c.Label }

// StartCalls implements CallSystem.
func (c CourierCall) StartCalls(ctx context.Context) (CallSession, error) {
	b, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := commands.NewDispatcher(b, commands.WithLogger(quiet))
	commands.Handle(d, func(_ context.Context, cmd commands.Command[EchoRequest]) (commands.Reply, error) {
		return commands.Success(EchoReply{N: cmd.Payload.N}), nil
	})
	if _, err := d.Subscribe(ctx, b, "bench-responder", callChannel, broker.WithLogger(quiet)); err != nil {
		return nil, errors.Join(err, b.Close(ctx))
	}
	caller, err := commands.NewCaller(ctx, b, "")
	if err != nil {
		return nil, errors.Join(err, b.Close(ctx))
	}
	return courierCalls{b: b, caller: caller}, nil
}

type courierCalls struct {
	b      brokerCloser
	caller *commands.Caller
}

func (s courierCalls) Call(ctx context.Context, n int) (int, error) {
	r, err := commands.Call[EchoReply](ctx, s.caller, callChannel, EchoRequest{N: n})
	return r.N, err
}

// Close closes the broker, which closes the caller's and the responder's
// subscriptions.
func (s courierCalls) Close(ctx context.Context) error { return s.b.Close(ctx) }
