package amqp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/couriertest"
	"github.com/courier-go/courier/message"
)

// plainPublish publishes as a plain amqp091-go client would, with the
// routing key it likes and no Courier header or message-id, and waits for
// RabbitMQ's confirmation; it fails on a message returned unroutable.
func plainPublish(t *testing.T, u, exchange, routingKey string, bodies ...string) {
	t.Helper()
	conn, err := amqp091.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp091.Return, len(bodies)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, body := range bodies {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, routingKey, true, false, amqp091.Publishing{Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish %q: acked %v, %v", body, ok, err)
		}
	}
	select {
	case r := <-returns:
		t.Fatalf("RabbitMQ returned %q unroutable: %s", r.Body, r.ReplyText)
	default:
	}
}

// TestPlainClientAnyRoutingKey: a plain client publishes to a channel's
// exchange with a routing key of its own and no ID. Every subscriber id
// receives the messages, in the order they were published, with the same
// ID, made from the message's content.
func TestPlainClientAnyRoutingKey(t *testing.T) {
	u := serverURL(t)
	b := open(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := fmt.Sprintf("plain-orders.%d", time.Now().UnixNano())
	t.Cleanup(func() { removeChannels(t, b, ch) })

	readers := map[string]*couriertest.Received{"plain-one." + ch: {}, "plain-two." + ch: {}}
	for id, c := range readers {
		sub, err := b.Subscribe(ctx, id, []string{ch}, c, broker.WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Close(context.Background()) })
	}
	plainPublish(t, u, ch, "orders.created", "plain-1", "plain-2", "plain-3")
	var first []*message.Message
	for id, c := range readers {
		got := c.Wait(t, 3, 20*time.Second)
		for i, m := range got {
			if want := fmt.Sprintf("plain-%d", i+1); string(m.Payload) != want || m.ID == "" {
				t.Errorf("%s: message %d is %q with ID %q, want %q with an ID", id, i, m.Payload, m.ID, want)
			}
		}
		if first == nil {
			first = got
			continue
		}
		for i := range got {
			if got[i].ID != first[i].ID {
				t.Errorf("message %d has ID %q for one subscriber id and %q for the other", i, got[i].ID, first[i].ID)
			}
		}
	}
}

// TestExchangeOfAnEarlierVersion: a channel whose exchange was declared
// without the alternate exchange (by an earlier version of Courier) still
// works for Courier's own messages.
func TestExchangeOfAnEarlierVersion(t *testing.T) {
	u := serverURL(t)
	ch := fmt.Sprintf("old-exchange.%d", time.Now().UnixNano())
	conn, err := amqp091.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ExchangeDeclare(ch, amqp091.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	b := open(t, u)
	t.Cleanup(func() { removeChannels(t, b, ch) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got couriertest.Received
	sub, err := b.Subscribe(ctx, "old-exchange-reader."+ch, []string{ch}, &got, broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	m := message.NewBuilder([]byte("hello")).WithPartitionKey("k").Build()
	if err := b.Send(ctx, ch, m); err != nil {
		t.Fatal(err)
	}
	if msgs := got.Wait(t, 1, 20*time.Second); msgs[0].ID != m.ID {
		t.Fatalf("received %s, want %s", msgs[0].ID, m.ID)
	}
}

// removeChannels removes the channels a test made.
func removeChannels(t *testing.T, b broker.ChannelRemover, channels ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ch := range channels {
		if err := b.RemoveChannel(ctx, ch); err != nil {
			t.Errorf("RemoveChannel(%s): %v", ch, err)
		}
	}
}
