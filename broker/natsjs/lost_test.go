package natsjs_test

import (
	"context"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/couriertest"
	"github.com/courier-go/courier/message"
)

// TestShardResumesAfterALostDelivery: a delivery is lost on a connection
// that dies (the network drops it, then the connection is cut). JetStream
// holds the shard's next messages until the lost one's ack wait passes; the
// shard must resume within a few seconds, not stall for half a minute.
func TestShardResumesAfterALostDelivery(t *testing.T) {
	e, b, proxy := throughProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	direct := newBroker(t, e) // the producer, on a sound connection

	const ch = "lossy"
	var got couriertest.Received
	sub, err := b.Subscribe(ctx, "reader", []string{ch}, &got, broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	send := func(body string) *message.Message {
		m := message.NewBuilder([]byte(body)).WithPartitionKey("k").Build()
		if err := direct.Send(ctx, ch, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := send("first")
	got.Wait(t, 1, 10*time.Second)

	proxy.Drop(true)
	lost := send("lost")
	time.Sleep(200 * time.Millisecond) // delivered into the void
	proxy.Cut()
	proxy.Drop(false)
	start := time.Now()
	last := send("after")
	msgs := got.Wait(t, 3, 15*time.Second)
	took := time.Since(start)
	if msgs[0].ID != first.ID || msgs[1].ID != lost.ID || msgs[2].ID != last.ID {
		t.Fatalf("received %s, %s, %s; want %s, %s, %s in order", msgs[0].ID, msgs[1].ID, msgs[2].ID, first.ID, lost.ID, last.ID)
	}
	t.Logf("the shard resumed %v after the loss", took.Round(time.Millisecond))
	if took > natsjs.DefaultAckWait+3*time.Second {
		t.Fatalf("the shard resumed after %v, more than the ack wait of %v and a margin", took, natsjs.DefaultAckWait)
	}
}
