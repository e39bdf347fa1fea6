package natsjs_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/natsjs/embedded"
)

// consumers lists the consumers of a channel's stream.
func consumers(t *testing.T, js jetstream.JetStream, channel string) []*jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name, err := js.StreamNameBySubject(ctx, "courier."+channel+".0")
	if err != nil {
		t.Fatalf("the stream of channel %q: %v", channel, err)
	}
	stream, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var infos []*jetstream.ConsumerInfo
	cl := stream.ListConsumers(ctx)
	for info := range cl.Info() {
		infos = append(infos, info)
	}
	if err := cl.Err(); err != nil {
		t.Fatal(err)
	}
	return infos
}

// An ephemeral subscription reads through one consumer per channel that
// JetStream keeps in memory and that needs no acknowledgements, and Close
// leaves no consumer behind.
func TestEphemeralLeavesNothingBehind(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	b := newBroker(t, e)
	defer b.Close(context.Background())
	ctx := t.Context()
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}

	rec := newCollector()
	sub, err := b.Subscribe(ctx, "replies.a", []string{"replies.a"}, broker.HandlerFunc(rec.handle), broker.WithEphemeral(), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	infos := consumers(t, js, "replies.a")
	if len(infos) != 1 {
		t.Fatalf("%d consumers while subscribed, want one", len(infos))
	}
	if c := infos[0].Config; c.Durable != "" || !c.MemoryStorage || c.AckPolicy != jetstream.AckNonePolicy {
		t.Errorf("consumer config: durable %q, memory storage %v, ack policy %v; want an in-memory consumer without acks",
			c.Durable, c.MemoryStorage, c.AckPolicy)
	}
	ids := sender(t, b, "replies.a")(20)
	waitFor(t, 10*time.Second, "the messages", func() bool { return len(rec.missing(ids)) == 0 })
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if infos := consumers(t, js, "replies.a"); len(infos) != 0 {
		t.Errorf("%d consumers after Close, want none", len(infos))
	}
}

// An ephemeral subscription over TCP rides out a restart of its server:
// its consumer, lost with the server's memory, is created again from the
// message after the last one delivered.
func TestEphemeralAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	ctx := t.Context()
	e1, b := openOverTCP(t, dir, port)

	rec := newCollector()
	sub, err := b.Subscribe(ctx, "replies.b", []string{"replies.b"}, broker.HandlerFunc(rec.handle), broker.WithEphemeral(), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	send := sender(t, b, "replies.b")
	ids := send(50)
	waitFor(t, 10*time.Second, "the messages before the restart", func() bool { return len(rec.missing(ids)) == 0 })
	if err := e1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	startEmbedded(t, dir, embedded.WithListenPort(port))
	ids = send(50)
	waitFor(t, 30*time.Second, "the messages after the restart", func() bool { return len(rec.missing(ids)) == 0 })
}

// A server restart before the ephemeral subscription has received
// anything must not make it skip what is sent while its consumer is
// being created again.
func TestEphemeralRestartBeforeFirstMessage(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	ctx := t.Context()
	e1, b := openOverTCP(t, dir, port)
	rec := newCollector()
	sub, err := b.Subscribe(ctx, "replies.c", []string{"replies.c"}, broker.HandlerFunc(rec.handle), broker.WithEphemeral(), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	if err := e1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Another Broker sends as soon as the server is back, before the
	// subscription's client has reconnected (it retries every 2s).
	e2 := startEmbedded(t, dir, embedded.WithListenPort(port))
	other := newBroker(t, e2)
	defer other.Close(context.Background())
	ids := sender(t, other, "replies.c")(5)
	waitFor(t, 30*time.Second, "the messages sent before the subscription reconnected", func() bool { return len(rec.missing(ids)) == 0 })
}
