package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// maxChannelFailures bounds the retries of a Send after a channel it
// published on was closed by the server while its connection stayed up
// (such as for an exchange deleted behind our back). Publishing channels
// are shared, so a Send may also see a channel close for another Send's
// message; the bound leaves room for that.
const maxChannelFailures = 4

// errNacked means RabbitMQ refused a message (basic.nack).
var errNacked = errors.New("rejected by the server (nack)")

// ErrUnroutable means RabbitMQ returned a dead letter that no queue took
// (basic.return): its channel's kept queue was deleted. The Send that gets
// it declares the queue again on its next attempt.
var ErrUnroutable = errors.New("amqp broker: no queue took the message (returned unroutable)")

// publisher sends messages on a few confirm-mode channels that concurrent
// Sends share. A Send publishes all its messages on one channel, so they
// are published in order, and waits for their confirmations only; other
// Sends publish on the same channel meanwhile.
//
// Sharing is what makes it fast: RabbitMQ runs a process per channel, and
// many lightly loaded channels cost it more than a few busy ones. In the
// benchmark, 64 goroutines sending on 4 shared channels reached about
// 1.4 times the rate they reached with a channel each.
type publisher struct {
	b    *Broker
	conn *connection

	mu       sync.Mutex
	slots    []*pubChannel       // nil until first used; replaced when closed or stale
	declared map[string]*session // channel exchange -> connection it was declared on
}

type pubChannel struct {
	s      *session
	ch     *amqp091.Channel
	closes chan *amqp091.Error
	sends  int // Sends using it, guarded by publisher.mu

	whyMu sync.Mutex
	why   *amqp091.Error // the server's reason for closing it, once read
}

// lost reports whether the channel died with its connection, as opposed to
// a channel error of its own.
func (pc *pubChannel) lost() bool { return pc.s.conn.IsClosed() }

// reason is why the channel closed, if it did.
func (pc *pubChannel) reason() error {
	pc.whyMu.Lock()
	defer pc.whyMu.Unlock()
	if pc.why == nil {
		// amqp091-go delivers the error before it marks the channel
		// closed; keep it for the other Sends that share the channel.
		select {
		case err, ok := <-pc.closes:
			if ok && err != nil {
				pc.why = err
			}
		default:
		}
	}
	if pc.why != nil {
		return pc.why
	}
	if pc.lost() {
		return errors.New("connection lost")
	}
	return amqp091.ErrClosed
}

func (pc *pubChannel) close() { _ = pc.ch.Close() }

// usable reports whether pc can take publishes on session s.
func (pc *pubChannel) usable(s *session) bool {
	return pc != nil && pc.s == s && !pc.ch.IsClosed()
}

func newPublisher(b *Broker, conn *connection) *publisher {
	return &publisher{
		b:        b,
		conn:     conn,
		slots:    make([]*pubChannel, b.cfg.publishChannels),
		declared: make(map[string]*session),
	}
}

// publish sends msgs to the channel's exchange and waits for RabbitMQ to
// confirm each. If the connection is lost first, it waits for a new one (as
// long as ctx allows) and publishes again every message not yet confirmed.
func (p *publisher) publish(ctx context.Context, channel string, msgs []outgoing) error {
	next := 0 // msgs[:next] are confirmed
	failures := 0
	for {
		s, err := p.conn.get(ctx, nil)
		if err != nil {
			return fmt.Errorf("wait for the connection: %w", err)
		}
		if err := p.declare(ctx, s, channel); err != nil {
			if ctx.Err() != nil || !s.conn.IsClosed() {
				return err
			}
			continue // the connection went; retry on the next one
		}
		pc, err := p.acquire(ctx, s)
		if err != nil {
			if ctx.Err() != nil || !s.conn.IsClosed() {
				return err
			}
			continue
		}
		n, err := p.publishOn(ctx, pc, channel, msgs[next:], false)
		next += n
		p.release(pc)
		if err == nil {
			return nil
		}
		switch {
		case ctx.Err() != nil, errors.Is(err, errNacked):
			return err
		case pc.lost():
			p.b.cfg.logger.Debug("courier: amqp connection lost during a send; publishing the unconfirmed messages again",
				"channel", channel, "unconfirmed", len(msgs)-next, "error", err)
		case pc.ch.IsClosed() && failures < maxChannelFailures:
			// A channel error, e.g. the exchange was deleted: declare
			// it again and publish on a fresh channel.
			failures++
			p.forget(channel)
		default:
			return err
		}
	}
}

// acquire returns the least used of the shared channels of session s,
// opening it if it is not open yet or was closed.
func (p *publisher) acquire(ctx context.Context, s *session) (*pubChannel, error) {
	for {
		p.mu.Lock()
		i := 0
		for j, pc := range p.slots {
			if !pc.usable(s) {
				i = j
				break
			}
			if pc.sends < p.slots[i].sends {
				i = j
			}
		}
		if pc := p.slots[i]; pc.usable(s) {
			pc.sends++
			p.mu.Unlock()
			return pc, nil
		}
		p.mu.Unlock()

		// Open the channel outside the lock; another Send may fill the
		// slot meanwhile, in which case ours is closed and theirs used.
		ch, err := p.b.openChannel(ctx, s, func(ch *amqp091.Channel) error { return ch.Confirm(false) })
		if err != nil {
			return nil, err
		}
		fresh := &pubChannel{s: s, ch: ch, closes: ch.NotifyClose(make(chan *amqp091.Error, 1))}
		p.mu.Lock()
		old := p.slots[i]
		installed := !old.usable(s)
		if installed {
			p.slots[i] = fresh
		}
		p.mu.Unlock()
		if !installed {
			fresh.close()
			continue
		}
		if old != nil {
			old.close() // stale: of a lost connection, or closed already
		}
	}
}

// release ends a Send's use of pc.
func (p *publisher) release(pc *pubChannel) {
	p.mu.Lock()
	pc.sends--
	p.mu.Unlock()
}

// declare declares the channel's exchange once per connection. It does so
// on a channel of its own, since a failed declaration closes the channel
// it was made on, and the publishing channels are shared.
func (p *publisher) declare(ctx context.Context, s *session, channel string) error {
	p.mu.Lock()
	done := p.declared[channel] == s
	p.mu.Unlock()
	if done {
		return nil
	}
	declare := func() error { return p.b.cfg.declareChannel(s.conn, channel) }
	if p.b.cfg.eventuate {
		declare = func() error {
			return withChannel(s.conn, func(ch *amqp091.Channel) error { return declareEventuateChannel(ch, channel) })
		}
	}
	if err := p.b.call(ctx, declare, nil); err != nil {
		return err
	}
	p.mu.Lock()
	p.declared[channel] = s
	p.mu.Unlock()
	return nil
}

// publishDeadLetters publishes msgs to a dead-letter channel so that none
// can vanish: the channel's kept queue, bound to every routing key, is
// declared first (once per connection), and the messages go with the
// mandatory flag on a confirm-mode channel of their own, whose returns
// are read once the confirmations are in (RabbitMQ sends a message's
// basic.return before its basic.ack, and amqp091-go hands both over in
// that order). A returned message fails the Send with ErrUnroutable.
// Dead letters are rare, so the channel of their own costs little and
// keeps returns away from the shared publishing channels.
//
// It makes one attempt: the caller (the Processor, the outbox relay)
// retries what fails.
func (p *publisher) publishDeadLetters(ctx context.Context, channel string, msgs []outgoing) error {
	s, err := p.conn.get(ctx, nil)
	if err != nil {
		return fmt.Errorf("wait for the connection: %w", err)
	}
	kept := keptQueueName(channel)
	p.mu.Lock()
	done := p.declared[kept] == s
	p.mu.Unlock()
	if !done {
		ch, err := p.b.openChannel(ctx, s, func(ch *amqp091.Channel) error { return p.b.cfg.declareKept(s.conn, ch, channel) })
		if err != nil {
			return err
		}
		_ = ch.Close()
		p.mu.Lock()
		p.declared[kept] = s
		p.declared[channel] = s
		p.mu.Unlock()
	}
	var returns chan amqp091.Return
	ch, err := p.b.openChannel(ctx, s, func(ch *amqp091.Channel) error {
		returns = ch.NotifyReturn(make(chan amqp091.Return, len(msgs)))
		return ch.Confirm(false)
	})
	if err != nil {
		return err
	}
	pc := &pubChannel{s: s, ch: ch, closes: ch.NotifyClose(make(chan *amqp091.Error, 1))}
	defer pc.close()
	if _, err := p.publishOn(ctx, pc, channel, msgs, true); err != nil {
		return err
	}
	select {
	case r := <-returns:
		p.forget(kept)
		return fmt.Errorf("%w: message %s to %q: %d %s", ErrUnroutable, r.MessageId, channel, r.ReplyCode, r.ReplyText)
	default:
		return nil
	}
}

// removeExchange deletes the channel's exchange, and its kept queue if it
// is a dead-letter channel that has one.
func (p *publisher) removeExchange(ctx context.Context, channel string) error {
	s, err := p.conn.get(ctx, nil)
	if err != nil {
		return fmt.Errorf("wait for the connection: %w", err)
	}
	p.forget(channel)
	p.forget(keptQueueName(channel))
	ch, err := p.b.openChannel(ctx, s, func(ch *amqp091.Channel) error {
		if _, err := ch.QueueDelete(keptQueueName(channel), false, false, false); err != nil {
			return fmt.Errorf("delete the dead-letter queue of %q: %w", channel, err)
		}
		if err := ch.ExchangeDelete(channel, false, false); err != nil {
			return err
		}
		return ch.ExchangeDelete(otherExchangeName(channel), false, false)
	})
	if err != nil {
		return err
	}
	_ = ch.Close()
	return nil
}

func (p *publisher) forget(channel string) {
	p.mu.Lock()
	delete(p.declared, channel)
	p.mu.Unlock()
}

// publishOn publishes msgs on pc and waits for their confirms. It returns
// how many messages, from the first, are confirmed.
//
// If ctx ends while a publish is blocked (by TCP back-pressure or
// RabbitMQ's flow control), the Send returns and the publish completes in
// the background: pc is shared, so it is not closed to unblock it.
func (p *publisher) publishOn(ctx context.Context, pc *pubChannel, channel string, msgs []outgoing, mandatory bool) (int, error) {
	confirms := make([]*amqp091.DeferredConfirmation, 0, len(msgs))
	err := p.b.call(ctx, func() error {
		for i := range msgs {
			dc, err := pc.ch.PublishWithDeferredConfirm(channel, msgs[i].key, mandatory, false, msgs[i].pub)
			if err != nil {
				return fmt.Errorf("publish message %s: %w", msgs[i].id, err)
			}
			confirms = append(confirms, dc)
		}
		return nil
	}, nil)
	if err != nil {
		return 0, err
	}
	for i, dc := range confirms {
		acked, err := dc.WaitContext(ctx)
		if err != nil {
			return i, fmt.Errorf("wait for the confirmation of message %s: %w", msgs[i].id, err)
		}
		if !acked {
			// amqp091-go also reports the confirmations pending on a
			// channel that closed as negative; only an open channel
			// got a real nack.
			if pc.ch.IsClosed() {
				return i, fmt.Errorf("message %s unconfirmed: channel closed: %w", msgs[i].id, pc.reason())
			}
			return i, fmt.Errorf("message %s %w", msgs[i].id, errNacked)
		}
	}
	return len(msgs), nil
}
