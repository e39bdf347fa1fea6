package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// TestDeadLettersKeptWithoutReader: RabbitMQ drops a message no queue is
// bound for, and nobody reads the dead-letter channel here. Dead letters
// must still be kept: in the channel's kept queue, declared again if an
// operator deleted it.
func TestDeadLettersKeptWithoutReader(t *testing.T) {
	u := serverURL(t)
	b := open(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	ch, id := "kept-dl."+suffix, "kept-dl-sub."+suffix
	dlq := id + broker.DeadLetterSuffix
	kept := dlq + ":kept"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, c := range []string{ch, dlq} {
			if err := b.RemoveChannel(ctx, c); err != nil {
				t.Errorf("RemoveChannel(%s): %v", c, err)
			}
		}
	})

	sub, err := b.Subscribe(ctx, id, []string{ch}, broker.HandlerFunc(func(context.Context, *message.Message) error {
		return broker.Permanent(errors.New("cannot handle it"))
	}), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })

	conn, err := amqp091.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// count returns the messages in the kept queue, or -1 if it does not
	// exist (a passive declare of a missing queue closes the channel).
	count := func() int {
		c, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		q, err := c.QueueDeclarePassive(kept, true, false, false, false, nil)
		if err != nil {
			return -1
		}
		return q.Messages
	}
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := count()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("kept queue %s holds %d messages (-1: missing), want %d", kept, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if err := b.Send(ctx, ch, message.New([]byte("first"))); err != nil {
		t.Fatal(err)
	}
	waitFor(1)

	// An operator deletes the queue, dead letters and all: the next dead
	// letter is returned unroutable, and sent again once the queue is
	// declared again.
	c, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.QueueDelete(kept, false, false, false); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := b.Send(ctx, ch, message.New([]byte("second"))); err != nil {
		t.Fatal(err)
	}
	waitFor(1)
}
