package natsjs_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/couriertest"
	"github.com/courier-go/courier/message"
)

// rawJetStream returns a plain JetStream client on its own connection to
// e, closed when the test ends.
func rawJetStream(t *testing.T, e *embedded.Server) jetstream.JetStream {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// publishBare publishes as a plain NATS client would: to the channel's
// subject without a shard token, with no Courier header.
func publishBare(t *testing.T, e *embedded.Server, channel string, payloads ...string) {
	t.Helper()
	js := rawJetStream(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range payloads {
		if _, err := js.Publish(ctx, "courier."+channel, []byte(p)); err != nil {
			t.Fatalf("a plain publish to courier.%s: %v", channel, err)
		}
	}
}

// TestPlainClientOnTheBareSubject: a plain client that publishes to
// "courier.<channel>", without a shard token or any Courier header, reaches
// every subscriber id, in order, and each message gets an ID made of the
// stream and its sequence: the same for every subscriber id and attempt.
func TestPlainClientOnTheBareSubject(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	b := newBroker(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const ch = "plain-orders"
	var one, two couriertest.Received
	var failedOnce sync.Once
	for id, h := range map[string]broker.HandlerFunc{"one": one.HandleMessage, "two": func(ctx context.Context, m *message.Message) error {
		failed := false
		failedOnce.Do(func() { failed = true })
		if failed {
			return fmt.Errorf("the first delivery fails, so that the message comes again")
		}
		return two.HandleMessage(ctx, m)
	}} {
		sub, err := b.Subscribe(ctx, id, []string{ch}, h, broker.WithBackoff(broker.ConstantBackoff(time.Millisecond)), broker.WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Close(context.Background()) })
	}
	publishBare(t, e, ch, "plain-1", "plain-2", "plain-3")
	a, c := one.Wait(t, 3, 10*time.Second), two.Wait(t, 3, 10*time.Second)
	for i := range 3 {
		want := fmt.Sprintf("%s-%d", natsjs.StreamName(ch), i+1)
		if string(a[i].Payload) != "plain-"+strconv.Itoa(i+1) || a[i].ID != want || c[i].ID != want {
			t.Errorf("message %d: %q with IDs %q and %q, want plain-%d with ID %q", i, a[i].Payload, a[i].ID, c[i].ID, i+1, want)
		}
	}
}

// TestStreamUpgradedForTheBareSubject: a channel's stream made by an
// earlier Courier, which captured only the shard subjects, is upgraded to
// capture the bare subject too.
func TestStreamUpgradedForTheBareSubject(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	js := rawJetStream(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const ch = "old-orders"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     natsjs.StreamName(ch),
		Subjects: []string{"courier." + ch + ".*"},
		Metadata: map[string]string{natsjs.MetaShards: "4", "courier.channel": ch},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "courier."+ch, []byte("x")); err == nil {
		t.Fatal("the old stream captured the bare subject already")
	}
	b := newBroker(t, e)
	var r couriertest.Received
	sub, err := b.Subscribe(ctx, "reader", []string{ch}, &r)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	publishBare(t, e, ch, "after the upgrade")
	if got := r.Wait(t, 1, 10*time.Second); string(got[0].Payload) != "after the upgrade" {
		t.Fatalf("received %q", got[0].Payload)
	}
}

// TestConsumersExpire: with WithConsumerExpiry, the durable consumers of a
// subscriber id that no instance runs any more are deleted by JetStream,
// instead of staying for good.
func TestConsumersExpire(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	b := newBroker(t, e, natsjs.WithConsumerExpiry(time.Second), natsjs.WithShards(2))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const ch = "expiring"
	var got couriertest.Received
	sub, err := b.Subscribe(ctx, "gone", []string{ch}, &got)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		js, err := jetstream.New(b.Conn())
		if err != nil {
			t.Fatal(err)
		}
		stream, err := js.Stream(ctx, natsjs.StreamName(ch))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range stream.ConsumerNames(ctx).Name() {
			n++
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("%d consumers while subscribed, want 2", n)
	}
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for count() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers left 20s after the last instance closed", count())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
