package natsjs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/message"
)

// A handler that runs for longer than the ack wait keeps its message: the
// worker reports progress, so JetStream never delivers it again, and the
// next message of the shard goes through once the long one is done.
func TestLongHandlerKeepsItsMessage(t *testing.T) {
	ctx := t.Context()
	e := startEmbedded(t, t.TempDir())
	b := newBroker(t, e, natsjs.WithAckWait(time.Second), natsjs.WithShards(1))
	defer b.Close(ctx)

	var calls, done atomic.Int32
	h := broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		if calls.Add(1) == 1 {
			select {
			case <-time.After(2500 * time.Millisecond): // two and a half ack waits
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		done.Add(1)
		return nil
	})
	sub, err := b.Subscribe(ctx, "slow", []string{"long-handlers"}, h, broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	for range 2 {
		if err := b.Send(ctx, "long-handlers", message.New(nil)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "both messages handled", func() bool { return done.Load() == 2 })
	if n := calls.Load(); n != 2 {
		t.Errorf("handler called %d times for 2 messages", n)
	}

	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, natsjs.StreamName("long-handlers"))
	if err != nil {
		t.Fatal(err)
	}
	// The consumer sequence counts deliveries, redeliveries included.
	var deliveries uint64
	lister := stream.ListConsumers(ctx)
	for cons := range lister.Info() {
		deliveries += cons.Delivered.Consumer
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	if deliveries != 2 {
		t.Errorf("JetStream delivered 2 messages %d times: progress was not reported", deliveries)
	}
}
