package amqp

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

var _ broker.DeadLetterBrowser = (*Broker)(nil)

// BrowseDeadLetters reads the channel's kept queue, "<channel>:kept",
// where dead letters stay (see the package documentation), on an AMQP
// channel of its own: it takes each message with basic.get without
// acknowledging it, as many as the queue held when the call began, then
// closes the AMQP channel, which puts every one of them back; RabbitMQ
// puts a message it takes back in its place in the queue, so the order
// stays (the conformance suite checks it on classic and quorum queues), and
// the call returns once they are back. A quorum queue counts each such
// return as a delivery, toward its delivery limit if one is set by policy.
// A letter's Position is its message ID. See broker.DeadLetterBrowser.
func (b *Broker) BrowseDeadLetters(ctx context.Context, channel string, fn func(broker.DeadLetter) error) error {
	if err := message.ValidateChannel(channel); err != nil {
		return fmt.Errorf("amqp broker: browse dead letters: %w", err)
	}
	err := b.walkKept(ctx, channel, func(_ *amqp091.Channel, d *amqp091.Delivery) (bool, bool, error) {
		m := decode(d)
		return true, false, fn(broker.DeadLetter{Message: m, Position: m.ID})
	})
	if err != nil {
		return fmt.Errorf("amqp broker: browse dead letters of %q: %w", channel, err)
	}
	return nil
}

// RemoveDeadLetters takes the kept queue's messages as BrowseDeadLetters
// does, acknowledges those with the letters' IDs (so RabbitMQ deletes
// them), and puts the others back in their places. A letter whose ID
// occurs more than once in the queue removes the first of them. See
// broker.DeadLetterBrowser.
func (b *Broker) RemoveDeadLetters(ctx context.Context, channel string, letters []broker.DeadLetter) (int, error) {
	if err := message.ValidateChannel(channel); err != nil {
		return 0, fmt.Errorf("amqp broker: remove dead letters: %w", err)
	}
	want := make(map[string]int, len(letters))
	for _, l := range letters {
		if l.Position == "" {
			return 0, fmt.Errorf("amqp broker: remove dead letters of %q: %w: an empty message id", channel, broker.ErrInvalidPosition)
		}
		want[l.Position]++
	}
	removed, left := 0, len(letters)
	err := b.walkKept(ctx, channel, func(ch *amqp091.Channel, d *amqp091.Delivery) (bool, bool, error) {
		id := decode(d).ID
		if want[id] == 0 {
			return true, false, nil
		}
		if err := b.call(ctx, func() error { return ch.Ack(d.DeliveryTag, false) }, nil); err != nil {
			return false, false, fmt.Errorf("acknowledge %s: %w", id, err)
		}
		want[id]--
		removed++
		left--
		return left > 0, true, nil
	})
	if err != nil {
		return removed, fmt.Errorf("amqp broker: remove dead letters of %q: %w", channel, err)
	}
	return removed, nil
}

// walkKept takes the messages of channel's kept queue without
// acknowledging them, as many as it held at the start, and calls visit
// with each until visit returns false or an error (and whether it
// acknowledged the message); then it closes the AMQP channel, which puts
// back every message not acknowledged, and waits (within ctx, at most
// restoreWait) until the queue holds them again: a quorum queue takes them
// back a moment after the channel closed. A kept queue that does not exist
// holds nothing.
func (b *Broker) walkKept(ctx context.Context, channel string, visit func(*amqp091.Channel, *amqp091.Delivery) (more, acked bool, err error)) error {
	if b.subs.Closing() {
		return broker.ErrClosed
	}
	sess, err := b.subConn.get(ctx, nil)
	if err != nil {
		return fmt.Errorf("wait for the connection: %w", err)
	}
	queue := keptQueueName(channel)
	count := -1
	passive := func(ch *amqp091.Channel) error {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			return err
		}
		count = q.Messages
		return nil
	}
	ch, err := b.openChannel(ctx, sess, passive)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue %q: %w", queue, err)
	}
	start, taken, acked := count, 0, 0
	walkErr := func() error {
		for range start {
			var (
				d  amqp091.Delivery
				ok bool
			)
			err := b.call(ctx, func() error {
				var err error
				d, ok, err = ch.Get(queue, false)
				return err
			}, func() { _ = ch.Close() })
			if err != nil {
				return fmt.Errorf("get from %q: %w", queue, err)
			}
			if !ok {
				return nil // emptied meanwhile
			}
			taken++
			more, ack, err := visit(ch, &d)
			if ack {
				acked++
			}
			if err != nil || !more {
				return err
			}
		}
		return nil
	}()
	// Closing the channel returns the unacknowledged messages to the
	// queue; wait until they are there, so that the next walk sees them.
	closeErr := b.call(context.WithoutCancel(ctx), ch.Close, nil)
	if walkErr != nil || taken == 0 {
		return walkErr
	}
	if closeErr != nil {
		return fmt.Errorf("close the channel that held the messages of %q: %w", queue, closeErr)
	}
	return b.awaitRestored(ctx, sess, passive, &count, start-acked)
}

// restoreWait bounds how long walkKept waits for the messages it put
// back: longer only if another client took some of them meanwhile.
const restoreWait = 10 * time.Second

// awaitRestored polls the kept queue's message count (passive sets
// *count) until it is at least floor, within ctx and restoreWait.
func (b *Broker) awaitRestored(ctx context.Context, sess *session, passive func(*amqp091.Channel) error, count *int, floor int) error {
	ctx, cancel := context.WithTimeout(ctx, restoreWait)
	defer cancel()
	for {
		ch, err := b.openChannel(ctx, sess, passive)
		if err == nil {
			err = b.call(ctx, ch.Close, nil)
		}
		switch {
		case isNotFound(err):
			return nil // deleted meanwhile
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
			return nil // someone else took messages meanwhile
		case err != nil:
			return fmt.Errorf("count the messages put back: %w", err)
		case *count >= floor:
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}
