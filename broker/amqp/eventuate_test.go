package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/internal/eventuate/eventuatetest"
	"github.com/courier-go/courier/message"
)

// Eventuate Tram's side of these tests does what Eventuate's own code does,
// call for call (eventuate-foundation/eventuate-messaging-rabbitmq at
// commit e8a10f07654dbb00193fa45c3e62565d894e2bb3): javaDeclare is
// Subscription.leaderSelected and assignmentUpdated, javaPublish
// EventuateRabbitMQProducer.send, with the Java client's defaults for the
// arguments Eventuate leaves out (exchangeDeclare(name, type): not
// durable, not auto-deleted, not internal, no arguments). The messages are
// the fixtures of internal/eventuate/testdata, taken from Eventuate's
// sources (its README names the files and commits).

func dial(t *testing.T, u string) *amqp091.Connection {
	t.Helper()
	conn, err := amqp091.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// javaDeclare declares, on a channel of its own, what Eventuate's leading
// consumer of subscriberID declares for channelName with partitions
// partitions, in its order; it returns the error of the first declaration
// RabbitMQ refuses.
func javaDeclare(conn *amqp091.Connection, channelName, subscriberID string, partitions int) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	hash := fmt.Sprintf("%s-%s", channelName, subscriberID)
	if err := ch.ExchangeDeclare(hash, "x-consistent-hash", false, false, false, false, nil); err != nil {
		return err
	}
	for i := range partitions {
		q := fmt.Sprintf("%s-%s-%d", channelName, subscriberID, i)
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			return err
		}
		if err := ch.QueueBind(q, "10", hash, false, nil); err != nil {
			return err
		}
	}
	if err := ch.ExchangeDeclare(channelName, "fanout", false, false, false, false, nil); err != nil {
		return err
	}
	return ch.ExchangeBind(hash, "", channelName, false, nil)
}

// javaPublish is EventuateRabbitMQProducer.send(topic, key, body).
func javaPublish(t *testing.T, conn *amqp091.Connection, topic, key string, body []byte) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(topic, "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish(topic, key, false, false, amqp091.Publishing{Headers: amqp091.Table{"key": key}, Body: body}); err != nil {
		t.Fatal(err)
	}
}

// javaConsume consumes the partition queues of subscriberID on channelName,
// as Eventuate's consumer does once they are assigned to it.
func javaConsume(t *testing.T, conn *amqp091.Connection, channelName, subscriberID string, partitions int) <-chan amqp091.Delivery {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan amqp091.Delivery, 16)
	for i := range partitions {
		d, err := ch.Consume(fmt.Sprintf("%s-%s-%d", channelName, subscriberID, i), "", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for x := range d {
				out <- x
			}
		}()
	}
	return out
}

// removeJava deletes what javaDeclare declared, but the channel's exchange.
func removeJava(t *testing.T, u, channelName, subscriberID string, partitions int) {
	conn, err := amqp091.Dial(u)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Error(err)
		return
	}
	for i := range partitions {
		ch.QueueDelete(fmt.Sprintf("%s-%s-%d", channelName, subscriberID, i), false, false, false)
	}
	ch.ExchangeDelete(fmt.Sprintf("%s-%s", channelName, subscriberID), false, false)
}

func unique(prefix string) string { return fmt.Sprintf("%s-%08x", prefix, rand.Uint32()) }

func quiet() broker.SubscribeOption { return eventuatetest.Quiet() }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestEventuateTopology: Courier in Eventuate's format declares what
// Eventuate declares, so that whichever declares second, RabbitMQ accepts
// it; Courier's own topology is refused by Eventuate's declarations.
func TestEventuateTopology(t *testing.T) {
	u := serverURL(t)
	conn := dial(t, u)
	b := open(t, u, amqp.WithEventuateFormat(), amqp.WithEventuatePartitions(3))
	t.Cleanup(func() { b.Close(context.Background()) })
	h := broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })

	t.Run("EventuateFirst", func(t *testing.T) {
		ch, sub := unique("ev.topo"), unique("java-first")
		if err := javaDeclare(conn, ch, sub, 3); err != nil {
			t.Fatalf("Eventuate's declarations: %v", err)
		}
		s, err := b.Subscribe(ctxFor(t), sub, []string{ch}, h, quiet())
		if err != nil {
			t.Fatalf("Subscribe after Eventuate declared: %v", err)
		}
		s.Close(context.Background())
		if err := b.Send(ctxFor(t), ch, message.New([]byte(`{}`))); err != nil {
			t.Fatalf("Send after Eventuate declared: %v", err)
		}
		t.Cleanup(func() {
			b.RemoveSubscriber(context.Background(), sub, []string{ch})
			b.RemoveChannel(context.Background(), ch)
		})
	})
	t.Run("CourierFirst", func(t *testing.T) {
		ch, sub := unique("ev.topo"), unique("courier-first")
		s, err := b.Subscribe(ctxFor(t), sub, []string{ch}, h, quiet())
		if err != nil {
			t.Fatal(err)
		}
		s.Close(context.Background())
		t.Cleanup(func() {
			b.RemoveSubscriber(context.Background(), sub, []string{ch})
			b.RemoveChannel(context.Background(), ch)
		})
		if err := javaDeclare(conn, ch, sub, 3); err != nil {
			t.Fatalf("Eventuate's declarations after Courier's: %v", err)
		}
	})
	t.Run("CourierFormatIsRefused", func(t *testing.T) {
		// Courier's own format declares a topic exchange of the same
		// name: the issue this profile solves.
		plain := open(t, u)
		t.Cleanup(func() { plain.Close(context.Background()) })
		ch := unique("ev.topo")
		if err := plain.Send(ctxFor(t), ch, message.New([]byte(`{}`))); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeChannels(t, plain, ch) })
		var amqpErr *amqp091.Error
		if err := javaDeclare(conn, ch, unique("java"), 1); !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.PreconditionFailed {
			t.Fatalf("Eventuate's declarations on Courier's own topology: %v, want PRECONDITION_FAILED", err)
		}
	})
}

// TestEventuateRoundTrip: an event and a command published as Eventuate
// publishes them reach Courier handlers, dispatched by their Java type
// names, and the reply reaches Eventuate's consumer of the reply channel
// as Eventuate's CommandDispatcher would send it.
func TestEventuateRoundTrip(t *testing.T) {
	u := serverURL(t)
	conn := dial(t, u)
	b := open(t, u, amqp.WithEventuateFormat())
	t.Cleanup(func() { b.Close(context.Background()) })
	kitchen, customer, saga := unique("kitchen"), unique("customer"), unique("order-saga")
	t.Cleanup(func() {
		b.RemoveSubscriber(context.Background(), kitchen, []string{eventuatetest.EventChannel})
		b.RemoveSubscriber(context.Background(), customer, []string{eventuatetest.CommandChannel})
		removeJava(t, u, eventuatetest.ReplyChannel, saga, 2)
	})
	// The saga's reply channel, as Eventuate's consumer declares it.
	if err := javaDeclare(conn, eventuatetest.ReplyChannel, saga, 2); err != nil {
		t.Fatal(err)
	}
	replies := javaConsume(t, conn, eventuatetest.ReplyChannel, saga, 2)
	eventuatetest.RoundTrip(t, b, eventuatetest.Eventuate{
		Publish: func(t *testing.T, channel, key string, envelope []byte) { javaPublish(t, conn, channel, key, envelope) },
		Reply: func(t *testing.T) ([]byte, string) {
			select {
			case r := <-replies:
				if r.Headers["key"] != r.RoutingKey || r.DeliveryMode != amqp091.Persistent {
					t.Errorf("reply key header %v, routing key %q, delivery mode %d", r.Headers["key"], r.RoutingKey, r.DeliveryMode)
				}
				return r.Body, r.RoutingKey
			case <-ctxFor(t).Done():
				t.Fatal("no reply reached Eventuate's consumer")
				return nil, ""
			}
		},
	}, kitchen, customer)
}

// TestEventuateMalformedAndTakeover: a delivery that is not an envelope is
// dead-lettered at once, as it was, and the messages of its partition
// behind it are handled; when the instance that consumes the partitions
// closes, another instance of the subscriber id takes them over.
func TestEventuateMalformedAndTakeover(t *testing.T) {
	u := serverURL(t)
	conn := dial(t, u)
	b := open(t, u, amqp.WithEventuateFormat())
	t.Cleanup(func() { b.Close(context.Background()) })
	ch, sub := unique("ev.in"), unique("ev-sub")
	dlq := sub + broker.DeadLetterSuffix
	t.Cleanup(func() {
		b.RemoveSubscriber(context.Background(), sub, []string{ch})
		removeChannels(t, b, ch, dlq)
	})

	handled := make(chan string, 16)
	var calls atomic.Int32
	handler := broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		calls.Add(1)
		handled <- string(m.Payload)
		return nil
	})
	first, err := b.Subscribe(ctxFor(t), sub, []string{ch}, handler, quiet())
	if err != nil {
		t.Fatal(err)
	}
	// A second instance finds both partitions taken, and waits.
	second, err := b.Subscribe(ctxFor(t), sub, []string{ch}, handler, quiet())
	if err != nil {
		t.Fatalf("a second instance: %v", err)
	}
	t.Cleanup(func() { second.Close(context.Background()) })

	javaPublish(t, conn, ch, "k", []byte("not json"))
	javaPublish(t, conn, ch, "k", []byte(`{"payload":"first","headers":{"ID":"0000018c39a0b5e2-0242ac1200050001","PARTITION_ID":"k"}}`))
	if got := waitFor(t, handled); got != "first" {
		t.Fatalf("handled %q, want first", got)
	}
	first.Close(context.Background())

	// The dead letter, in Courier's format, in the dead-letter channel's
	// kept queue.
	dch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dead, ok, err := dch.Get(dlq+":kept", true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if string(dead.Body) != "not json" || !strings.Contains(fmt.Sprint(dead.Headers[message.HeaderDeadLetterReason]), "not an Eventuate envelope") {
				t.Errorf("dead letter %q with reason %v", dead.Body, dead.Headers[message.HeaderDeadLetterReason])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter")
		}
		time.Sleep(50 * time.Millisecond)
	}

	javaPublish(t, conn, ch, "k", []byte(`{"payload":"second","headers":{"ID":"0000018c39a0b5e2-0242ac1200050002","PARTITION_ID":"k"}}`))
	if got := waitFor(t, handled); got != "second" {
		t.Fatalf("handled %q, want second", got)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the handler was called %d times, want 2 (never for the malformed delivery)", n)
	}
}

func waitFor(t *testing.T, c <-chan string) string {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(15 * time.Second):
		t.Fatal("nothing handled within 15s")
		return ""
	}
}

// TestEventuateCall: a blocking call over Eventuate's topology, whose
// caller reads its replies through an ephemeral subscription: a queue of
// its own on the reply channel's fanout exchange.
func TestEventuateCall(t *testing.T) {
	u := serverURL(t)
	b := open(t, u, amqp.WithEventuateFormat())
	t.Cleanup(func() { b.Close(context.Background()) })
	ctx := ctxFor(t)
	service, replies := unique("ev.customers"), unique("ev.replies")
	customer := unique("customer")
	t.Cleanup(func() {
		b.RemoveSubscriber(context.Background(), customer, []string{service})
		removeChannels(t, b, service, replies)
	})
	d := commands.NewDispatcher(b)
	commands.Handle(d, func(_ context.Context, c commands.Command[eventuatetest.ReserveCredit]) (commands.Reply, error) {
		return commands.Success(eventuatetest.CreditReserved{CreditReservationID: int(c.Payload.OrderID)}), nil
	})
	sub, err := d.Subscribe(ctx, b, customer, service, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close(context.Background()) })
	caller, err := commands.NewCaller(ctx, b, replies, commands.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	r, err := commands.Call[eventuatetest.CreditReserved](ctx, caller, service, eventuatetest.ReserveCredit{OrderID: 42})
	if err != nil || r.CreditReservationID != 42 {
		t.Fatalf("Call = %+v, %v", r, err)
	}
	if err := caller.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestEventuateRefusesWhatItsTopologyCannotServe(t *testing.T) {
	u := serverURL(t)
	b := open(t, u, amqp.WithEventuateFormat())
	t.Cleanup(func() { b.Close(context.Background()) })
	h := broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })
	if _, err := b.Subscribe(ctxFor(t), unique("ev-refused"), []string{"ev.refused"}, h, broker.WithConcurrentDelivery(4)); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Errorf("concurrent delivery: %v, want ErrInvalidSubscription", err)
	}
	if err := b.Send(ctxFor(t), unique("ev.text"), message.New([]byte{0xff})); !broker.IsPermanent(err) {
		t.Errorf("Send of a payload that is not text: %v, want a permanent error", err)
	}
	if _, err := amqp.Open(ctxFor(t), u, amqp.WithEventuatePartitions(0)); err == nil {
		t.Error("0 partitions accepted")
	}
}

// TestEventuateInstancesShare: two instances of a subscriber id share
// Eventuate's partitions: the first takes both, then hands one over to
// the second, and each handles the messages of its partition.
func TestEventuateInstancesShare(t *testing.T) {
	u := serverURL(t)
	b := open(t, u, amqp.WithEventuateFormat(), amqp.WithRebalanceInterval(100*time.Millisecond))
	t.Cleanup(func() { b.Close(context.Background()) })
	ch, sub := unique("ev.share"), unique("ev-share")
	t.Cleanup(func() {
		b.RemoveSubscriber(context.Background(), sub, []string{ch})
		removeChannels(t, b, ch)
	})
	var byInstance [2]atomic.Int32
	for i := range byInstance {
		s, err := b.Subscribe(ctxFor(t), sub, []string{ch}, broker.HandlerFunc(func(context.Context, *message.Message) error {
			byInstance[i].Add(1)
			return nil
		}), quiet())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(context.Background()) })
	}
	deadline := time.Now().Add(15 * time.Second)
	for n := 0; byInstance[0].Load() == 0 || byInstance[1].Load() == 0; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d messages, the instances handled %d and %d: the partitions are not shared", n, byInstance[0].Load(), byInstance[1].Load())
		}
		if err := b.Send(ctxFor(t), ch, message.NewBuilder([]byte(`{}`)).WithPartitionKey(fmt.Sprint("k-", n)).Build()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
