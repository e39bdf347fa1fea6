package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/codec"
	"github.com/courier-go/courier/message"
)

// Caller sends commands and waits for their replies: the blocking Call and
// the gathering of several responders' replies. It is a thin layer over the
// asynchronous API: it subscribes to a reply channel of its own and matches
// replies to waiting calls by reply_to_message_id.
//
// Each Caller needs its own reply channel (a service with several instances
// gives each instance one), because a reply must reach the instance that
// waits for it. A Caller is safe for concurrent use.
type Caller struct {
	producer     *Producer
	codecs       codec.Set
	replyChannel string
	sub          broker.Subscription
	// remover removes the reply channel on Close: set when the Caller
	// named the channel itself and the broker can remove channels.
	remover broker.ChannelRemover

	mu      sync.Mutex
	pending map[string]chan ReplyMessage
}

// NewCaller subscribes to replyChannel (as a subscriber id of the same
// name) and returns a Caller that sends through b. An empty replyChannel
// picks a unique one, "courier.replies.<random>".
//
// The subscription is ephemeral (broker.WithEphemeral): a reply matters
// only to the Caller waiting for it, so brokers that can keep the reply
// channel's position in memory do so, which saves the broker a durable
// consumer's writes on every reply. Replies sent while no Caller listens
// on the channel are not delivered to the next one; no call waits for
// them anyway.
func NewCaller(ctx context.Context, b interface {
	broker.Producer
	broker.Consumer
}, replyChannel string, opts ...Option) (*Caller, error) {
	var remover broker.ChannelRemover
	if replyChannel == "" {
		var r [8]byte
		_, _ = rand.Read(r[:])
		replyChannel = "courier.replies." + hex.EncodeToString(r[:])
		remover, _ = b.(broker.ChannelRemover)
	}
	o := apply(opts)
	c := &Caller{producer: NewProducer(b, opts...), codecs: o.codecs, replyChannel: replyChannel, remover: remover, pending: map[string]chan ReplyMessage{}}
	sub, err := b.Subscribe(ctx, replyChannel, []string{replyChannel}, broker.HandlerFunc(c.onReply), broker.WithEphemeral())
	if err != nil {
		return nil, fmt.Errorf("commands: caller: %w", err)
	}
	c.sub = sub
	return c, nil
}

// ReplyChannel returns the channel the Caller receives replies on.
func (c *Caller) ReplyChannel() string { return c.replyChannel }

// Close stops receiving replies; calls still waiting end with their
// contexts. A reply channel the Caller named itself is removed from a
// broker that can remove channels (broker.ChannelRemover), so that callers
// that come and go leave nothing behind; a reply that arrives later fails
// to send, or creates the channel again, and is never read.
func (c *Caller) Close(ctx context.Context) error {
	err := c.sub.Close(ctx)
	if c.remover != nil {
		if rerr := c.remover.RemoveChannel(ctx, c.replyChannel); rerr != nil {
			err = errors.Join(err, fmt.Errorf("commands: caller: %w", rerr))
		}
	}
	return err
}

func (c *Caller) onReply(_ context.Context, m *message.Message) error {
	c.mu.Lock()
	ch := c.pending[m.Header(message.HeaderReplyToMessageID)]
	c.mu.Unlock()
	if ch == nil {
		return nil // a late or duplicate reply
	}
	select {
	case ch <- ReplyMessage{Message: m, codecs: c.codecs}:
	default: // the waiter has what it asked for
	}
	return nil
}

// send registers a waiter for up to n replies, then sends cmd.
func (c *Caller) send(ctx context.Context, channel string, cmd any, n int, opts []SendOption) (string, chan ReplyMessage, error) {
	m, err := c.producer.Message(cmd, append(opts, ReplyTo(c.replyChannel))...)
	if err != nil {
		return "", nil, err
	}
	m.SetHeader(message.HeaderCommandDestination, channel)
	ch := make(chan ReplyMessage, n)
	c.mu.Lock()
	c.pending[m.ID] = ch
	c.mu.Unlock()
	if err := c.producer.p.Send(ctx, channel, m); err != nil {
		c.forget(m.ID)
		return "", nil, fmt.Errorf("commands: send %s to %s: %w", m.Header(message.HeaderCommandType), channel, err)
	}
	return m.ID, ch, nil
}

func (c *Caller) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Request sends cmd to channel and waits for its reply, undecoded.
func (c *Caller) Request(ctx context.Context, channel string, cmd any, opts ...SendOption) (ReplyMessage, error) {
	id, ch, err := c.send(ctx, channel, cmd, 1, opts)
	if err != nil {
		return ReplyMessage{}, err
	}
	defer c.forget(id)
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return ReplyMessage{}, fmt.Errorf("commands: waiting for the reply to %s on %s: %w", id, channel, ctx.Err())
	}
}

// Call sends cmd to channel and waits for the reply, decoded as an R. A
// failure reply gives a *FailureError (see As); the context's end gives its
// error.
func Call[R any](ctx context.Context, c *Caller, channel string, cmd any, opts ...SendOption) (R, error) {
	r, err := c.Request(ctx, channel, cmd, opts...)
	if err != nil {
		var zero R
		return zero, err
	}
	return DecodeReply[R](r)
}

// Gather publishes one request to channel — normally a publish-subscribe
// channel with several responders — and collects replies until it has max
// of them or ctx's deadline passes. Reaching the deadline is not an error:
// Gather returns what arrived. A cancelled ctx returns the replies so far
// and the cancellation.
func (c *Caller) Gather(ctx context.Context, channel string, request any, max int, opts ...SendOption) ([]ReplyMessage, error) {
	if max < 1 {
		return nil, fmt.Errorf("commands: gather needs max >= 1, got %d", max)
	}
	id, ch, err := c.send(ctx, channel, request, max, opts)
	if err != nil {
		return nil, err
	}
	defer c.forget(id)
	var out []ReplyMessage
	seen := map[string]bool{}
	for len(out) < max {
		select {
		case r := <-ch:
			if !seen[r.ID] { // a redelivered reply counts once
				seen[r.ID] = true
				out = append(out, r)
			}
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return out, nil
			}
			return out, ctx.Err()
		}
	}
	return out, nil
}
