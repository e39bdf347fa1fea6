package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/direct"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/message"
)

// directSuite is Courier's brokerless broker beside Courier's NATS
// JetStream broker on an embedded nats-server: the broker workload
// (throughput, latency) in both delivery modes, then a run in which the
// receiver is killed with a backlog and a new one takes over, counting the
// messages whose Send had returned and that no handler ever saw.
//
// The direct systems run a receiving broker and a sending broker on one
// in-process registry, so every message crosses a loopback gRPC stream, as
// between two processes on one machine.
type directSuite struct{}

func (directSuite) Name() string { return "direct" }

// brokers is the suite's broker workload, which BenchmarkBrokers runs too.
func (directSuite) brokers() BrokerSuite {
	return BrokerSuite{
		ID: "direct",
		Systems: func() []System {
			concurrent := []broker.SubscribeOption{broker.WithConcurrentDelivery(benchInFlight)}
			return []System{
				CourierBroker{Label: "courier-direct", Open: newCourierDirect},
				CourierBroker{Label: "courier-direct-concurrent", Open: newCourierDirect, SubscribeOptions: concurrent},
				CourierBroker{Label: "courier-natsjs", Open: newCourierEmbeddedNATS},
				CourierBroker{Label: "courier-natsjs-concurrent", Open: newCourierEmbeddedNATS, SubscribeOptions: concurrent},
			}
		},
		FullMessages:  50_000,
		QuickMessages: 2_000,
		Rounds:        3,
		Checks: []Check{
			{System: "courier-direct", Peer: "courier-natsjs", Min: 1, Goal: "issue 24, ordered: direct >= embedded NATS"},
			{System: "courier-direct-concurrent", Peer: "courier-natsjs-concurrent", Min: 1, Goal: "issue 24, concurrent: direct >= embedded NATS"},
		},
	}
}

func (d directSuite) Run(ctx context.Context, o Options) ([]Table, error) {
	tables, err := d.brokers().Run(ctx, o)
	kill := Table{ID: "direct-receiver-killed", Columns: []string{"system", "sent (Send returned nil)", "handled", "lost", "Send errors"}}
	n := o.messages(20_000, 2_000)
	kill.Title = fmt.Sprintf("%d messages over 16 keys, a 1 ms handler; the receiver killed after half", n)
	var errs []error
	for _, sys := range []struct {
		name string
		open func(ctx context.Context) (killSetup, error)
	}{{"courier-direct", openDirectKill}, {"courier-natsjs", openNATSKill}} {
		r, err := runKill(ctx, sys.open, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s, receiver killed: %w", sys.name, err))
			kill.Note("%s failed: %v", sys.name, err)
			continue
		}
		o.progress("%-12s %-34s sent %d, lost %d", "direct", sys.name+" (killed)", r.sent, r.sent-r.handled)
		kill.AddRow(sys.name, strconv.Itoa(r.sent), strconv.Itoa(r.handled), strconv.Itoa(r.sent-r.handled), strconv.Itoa(r.sendErrors))
	}
	kill.Note("killed: the receiving broker closed with an expired context, which cancels its handlers and drops what it holds, " +
		"as a crash does (broker/direct's TestReceiverProcessKilled does it to a process with SIGKILL); a new receiver subscribes at once")
	return append(tables, kill), errors.Join(err, errors.Join(errs...))
}

// newCourierDirect opens a pair of direct brokers on a registry of their
// own: subscriptions on one, Send on the other.
func newCourierDirect(context.Context) (brokerCloser, error) {
	reg := memory.New()
	recv, err := direct.New(reg, direct.WithLogger(quietLogger))
	if err != nil {
		return brokerCloser{}, err
	}
	send, err := direct.New(reg, direct.WithLogger(quietLogger))
	if err != nil {
		return brokerCloser{}, err
	}
	return brokerCloser{Broker: directPair{Broker: recv, sender: send}, after: func(ctx context.Context) error {
		return errors.Join(send.Close(ctx), reg.Close())
	}}, nil
}

// directPair subscribes through one broker and sends through another.
type directPair struct {
	broker.Broker
	sender broker.Broker
}

func (p directPair) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	return p.sender.Send(ctx, channel, msgs...)
}

// killSetup is a sender and a way to open receiving brokers.
type killSetup struct {
	sender   broker.Producer
	receiver func(ctx context.Context) (broker.Broker, error)
	close    func(ctx context.Context) error
}

// receive opens a receiving broker and subscribes h; kill closes it with
// an expired context, as a crash would end it.
func (s killSetup) receive(ctx context.Context, h broker.Handler) (kill func(), err error) {
	b, err := s.receiver(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := b.Subscribe(ctx, benchSubscriber, []string{benchChannel}, h, broker.WithLogger(quietLogger)); err != nil {
		return nil, errors.Join(err, b.Close(ctx))
	}
	return func() { _ = b.Close(expired()) }, nil
}

func openDirectKill(context.Context) (killSetup, error) {
	reg := memory.New()
	send, err := direct.New(reg, direct.WithLogger(quietLogger))
	if err != nil {
		return killSetup{}, err
	}
	return killSetup{sender: send, close: func(ctx context.Context) error { return errors.Join(send.Close(ctx), reg.Close()) },
		receiver: func(context.Context) (broker.Broker, error) { return direct.New(reg, direct.WithLogger(quietLogger)) }}, nil
}

func openNATSKill(ctx context.Context) (killSetup, error) {
	dir, err := os.MkdirTemp("", "courier-bench-nats-")
	if err != nil {
		return killSetup{}, err
	}
	srv, err := embedded.Start(ctx, dir)
	if err != nil {
		return killSetup{}, errors.Join(err, os.RemoveAll(dir))
	}
	send, err := srv.Broker(ctx)
	if err != nil {
		return killSetup{}, errors.Join(err, srv.Shutdown(ctx), os.RemoveAll(dir))
	}
	return killSetup{sender: send, close: func(ctx context.Context) error {
		return errors.Join(send.Close(ctx), srv.Shutdown(ctx), os.RemoveAll(dir))
	}, receiver: func(ctx context.Context) (broker.Broker, error) { return srv.Broker(ctx) }}, nil
}

// expired returns a context that has ended.
func expired() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

type killResult struct{ sent, handled, sendErrors int }

// runKill sends n messages, kills the receiver after half of them and
// starts another, then waits until every message sent was handled or
// nothing more arrives for longer than NATS's ack wait, and counts.
func runKill(ctx context.Context, open func(context.Context) (killSetup, error), n int) (killResult, error) {
	s, err := open(ctx)
	if err != nil {
		return killResult{}, err
	}
	defer s.close(context.WithoutCancel(ctx))
	var mu sync.Mutex
	seen := map[string]bool{}
	h := broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		seen[string(m.Payload)] = true
		mu.Unlock()
		return nil
	})
	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	kill, err := s.receive(ctx, h)
	if err != nil {
		return killResult{}, err
	}
	var r killResult
	for i := range n {
		if i == n/2 {
			kill()
			if kill, err = s.receive(ctx, h); err != nil {
				return r, err
			}
		}
		m := message.NewBuilder([]byte(strconv.Itoa(i))).WithPartitionKey("key-" + strconv.Itoa(i%16)).Build()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.sender.Send(sctx, benchChannel, m)
		cancel()
		if err != nil {
			r.sendErrors++
			continue
		}
		r.sent++
	}
	defer kill()
	last, since := handled(), time.Now()
	for handled() < r.sent && time.Since(since) < 7*time.Second {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return r, ctx.Err()
		}
		if h := handled(); h != last {
			last, since = h, time.Now()
		}
	}
	r.handled = handled()
	return r, nil
}
