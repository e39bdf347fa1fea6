package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// maxChannelFailures bounds the retries of a Send after channel errors that
// are not a lost connection (such as an exchange deleted behind our back).
const maxChannelFailures = 2

// errNacked means RabbitMQ refused a message (basic.nack).
var errNacked = errors.New("rejected by the server (nack)")

// publisher sends messages on a pool of channels in confirm mode. A Send
// uses one channel at a time, so its messages are published in order.
type publisher struct {
	b    *Broker
	conn *connection

	mu       sync.Mutex
	idle     []*pubChannel
	declared map[string]*session // channel exchange -> connection it was declared on
}

type pubChannel struct {
	s      *session
	ch     *amqp091.Channel
	closes chan *amqp091.Error
}

// lost reports whether the channel died with its connection, as opposed to
// a channel error of its own.
func (pc *pubChannel) lost() bool { return pc.s.conn.IsClosed() }

// reason is why the channel closed, if it did.
func (pc *pubChannel) reason() error {
	select {
	case err, ok := <-pc.closes:
		if ok && err != nil {
			return err
		}
	default:
	}
	if pc.lost() {
		return errors.New("connection lost")
	}
	return amqp091.ErrClosed
}

func newPublisher(b *Broker, conn *connection) *publisher {
	return &publisher{b: b, conn: conn, declared: make(map[string]*session)}
}

// publish sends msgs to the channel's exchange and waits for RabbitMQ to
// confirm each. If the connection is lost first, it waits for a new one (as
// long as ctx allows) and publishes again every message not yet confirmed.
func (p *publisher) publish(ctx context.Context, channel string, msgs []outgoing) error {
	next := 0 // msgs[:next] are confirmed
	failures := 0
	for {
		pc, err := p.acquire(ctx)
		if err != nil {
			return err
		}
		if err := p.declare(ctx, pc, channel); err != nil {
			if ctx.Err() != nil || !pc.lost() {
				return err
			}
			continue // the connection went; retry on the next one
		}
		n, err := p.publishOn(ctx, pc, channel, msgs[next:])
		next += n
		if err == nil {
			p.release(pc)
			return nil
		}
		pc.close()
		switch {
		case ctx.Err() != nil, errors.Is(err, errNacked):
			return err
		case pc.lost():
			p.b.cfg.logger.Debug("courier: amqp connection lost during a send; publishing the unconfirmed messages again",
				"channel", channel, "unconfirmed", len(msgs)-next, "error", err)
		case failures < maxChannelFailures:
			// A channel error, e.g. the exchange was deleted: declare
			// it again on a fresh channel.
			failures++
			p.forget(channel)
		default:
			return err
		}
	}
}

// acquire returns an idle channel of the current connection or opens one.
func (p *publisher) acquire(ctx context.Context) (*pubChannel, error) {
	s, err := p.conn.get(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("wait for the connection: %w", err)
	}
	var stale []*pubChannel
	p.mu.Lock()
	var pc *pubChannel
	for len(p.idle) > 0 && pc == nil {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.s == s && !c.ch.IsClosed() {
			pc = c
		} else {
			stale = append(stale, c)
		}
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
	if pc != nil {
		return pc, nil
	}
	var ch *amqp091.Channel
	err = p.b.call(ctx, func() error {
		var err error
		if ch, err = s.conn.Channel(); err != nil {
			return err
		}
		return ch.Confirm(false)
	}, func() {
		if ch != nil {
			_ = ch.Close()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("open a channel: %w", err)
	}
	return &pubChannel{s: s, ch: ch, closes: ch.NotifyClose(make(chan *amqp091.Error, 1))}, nil
}

// release returns a healthy channel to the pool.
func (p *publisher) release(pc *pubChannel) {
	p.mu.Lock()
	if !pc.ch.IsClosed() && len(p.idle) < p.b.cfg.publishChannels {
		p.idle = append(p.idle, pc)
		pc = nil
	}
	p.mu.Unlock()
	if pc != nil {
		pc.close()
	}
}

func (pc *pubChannel) close() { _ = pc.ch.Close() }

// declare declares the channel's exchange once per connection.
func (p *publisher) declare(ctx context.Context, pc *pubChannel, channel string) error {
	p.mu.Lock()
	done := p.declared[channel] == pc.s
	p.mu.Unlock()
	if done {
		return nil
	}
	if err := p.b.call(ctx, func() error { return declareChannel(pc.ch, channel) }, pc.close); err != nil {
		return err
	}
	p.mu.Lock()
	p.declared[channel] = pc.s
	p.mu.Unlock()
	return nil
}

// removeExchange deletes the channel's exchange.
func (p *publisher) removeExchange(ctx context.Context, channel string) error {
	pc, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	p.forget(channel)
	if err := p.b.call(ctx, func() error { return pc.ch.ExchangeDelete(channel, false, false) }, pc.close); err != nil {
		pc.close()
		return err
	}
	p.release(pc)
	return nil
}

func (p *publisher) forget(channel string) {
	p.mu.Lock()
	delete(p.declared, channel)
	p.mu.Unlock()
}

// publishOn publishes msgs on pc and waits for their confirms. It returns
// how many messages, from the first, are confirmed.
func (p *publisher) publishOn(ctx context.Context, pc *pubChannel, channel string, msgs []outgoing) (int, error) {
	confirms := make([]*amqp091.DeferredConfirmation, 0, len(msgs))
	err := p.b.call(ctx, func() error {
		for i := range msgs {
			dc, err := pc.ch.PublishWithDeferredConfirm(channel, msgs[i].key, false, false, msgs[i].pub)
			if err != nil {
				return fmt.Errorf("publish message %s: %w", msgs[i].id, err)
			}
			confirms = append(confirms, dc)
		}
		return nil
	}, pc.close)
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
