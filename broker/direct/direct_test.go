package direct_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/broker/direct"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/message"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// pair is two direct brokers on one registry: Send goes through one,
// Subscribe through the other, so that every message crosses a gRPC
// stream between two receivers' worth of state, as between two processes.
type pair struct {
	*direct.Broker                // subscriptions
	sender         *direct.Broker // sends
}

func (p pair) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	return p.sender.Send(ctx, channel, msgs...)
}

func (p pair) Close(ctx context.Context) error {
	err := p.Broker.Close(ctx)
	if serr := p.sender.Close(ctx); err == nil {
		err = serr
	}
	return err
}

func newBroker(t testing.TB, reg discovery.Registry, opts ...direct.Option) *direct.Broker {
	t.Helper()
	b, err := direct.New(reg, append([]direct.Option{direct.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Suite{
		New: func(t *testing.T) broker.Broker {
			reg := memory.New()
			t.Cleanup(func() { reg.Close() })
			return pair{Broker: newBroker(t, reg), sender: newBroker(t, reg)}
		},
		Features: brokertest.Features{Timeout: 20 * time.Second},
		Raw: func(t *testing.T, b broker.Broker, channel, key string, headers message.Headers, payload []byte) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return direct.PublishRaw(ctx, b.(pair).sender, channel, key, headers, payload)
		},
	})
}
