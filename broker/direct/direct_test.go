package direct_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
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
		Features: brokertest.Features{Timeout: 20 * time.Second, NoDeadLetterStore: true},
		Raw: func(t *testing.T, b broker.Broker, channel, key string, headers message.Headers, payload []byte) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return direct.PublishRaw(ctx, b.(pair).sender, channel, key, headers, payload)
		},
	})
}

func TestNoSubscribers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := memory.New()
	defer reg.Close()
	lenient := newBroker(t, reg)
	defer lenient.Close(ctx)
	strict := newBroker(t, reg, direct.WithRequireSubscribers())
	defer strict.Close(ctx)
	if err := lenient.Send(ctx, "nobody", message.New([]byte("x"))); err != nil {
		t.Fatalf("Send to a channel without subscribers = %v, want nil (delivered to nobody)", err)
	}
	if err := strict.Send(ctx, "nobody", message.New([]byte("x"))); !errors.Is(err, direct.ErrNoSubscribers) {
		t.Fatalf("Send WithRequireSubscribers to a channel without subscribers = %v, want ErrNoSubscribers", err)
	}
	err := broker.DeadLetters(lenient).Send(ctx, "nobody.dead-letter", message.New([]byte("x")))
	if !errors.Is(err, direct.ErrNoSubscribers) || !broker.IsPermanent(err) {
		t.Fatalf("dead letter to a channel without subscribers = %v, want a permanent ErrNoSubscribers", err)
	}
}

// A dead letter that no reader takes is logged and counted as discarded,
// and the shard goes on.
func TestDeadLetterWithoutReaderIsDiscarded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := memory.New()
	defer reg.Close()
	b := newBroker(t, reg)
	defer b.Close(ctx)
	obs := &discards{}
	handled := make(chan string, 2)
	if _, err := b.Subscribe(ctx, "sub", []string{"ch"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		if string(m.Payload) == "poison" {
			return broker.Permanent(errors.New("cannot handle"))
		}
		handled <- string(m.Payload)
		return nil
	}), broker.WithObserver(obs), broker.WithLogger(quiet)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"poison", "good"} {
		if err := b.Send(ctx, "ch", message.NewBuilder([]byte(p)).WithPartitionKey("k").Build()); err != nil {
			t.Fatal(err)
		}
	}
	if got := <-handled; got != "good" {
		t.Fatalf("handled %q", got)
	}
	if n := obs.n.Load(); n != 1 {
		t.Fatalf("%d messages reported discarded, want the poison one", n)
	}
}

type discards struct {
	broker.NopObserver
	n atomic.Int32
}

func (d *discards) Discarded(context.Context, broker.DeliveryInfo, string, error) { d.n.Add(1) }

func TestMixedDeliveryModesRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := memory.New()
	defer reg.Close()
	b := newBroker(t, reg)
	defer b.Close(ctx)
	h := broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })
	if _, err := b.Subscribe(ctx, "sub", []string{"ch"}, h); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(ctx, "sub", []string{"ch"}, h, broker.WithConcurrentDelivery(4)); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Fatalf("a concurrent instance beside an ordered one = %v, want ErrInvalidSubscription", err)
	}
}

func TestOptionsRefuseBadValues(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	for name, o := range map[string]direct.Option{
		"shards":     direct.WithShards(0),
		"queue":      direct.WithQueueLength(0),
		"listen":     direct.WithListenAddress("nowhere"),
		"advertise":  direct.WithAdvertiseAddress("host:0"),
		"retry wait": direct.WithRetryWait(0),
		"logger":     direct.WithLogger(nil),
		"ttl":        direct.WithRegisterOptions(discovery.WithTTL(time.Millisecond)),
	} {
		if _, err := direct.New(reg, o); err == nil {
			t.Errorf("%s: New accepted a bad value", name)
		}
	}
	if _, err := direct.New(nil); err == nil {
		t.Error("New accepted a nil registry")
	}
}
