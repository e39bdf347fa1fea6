package broker

import (
	"context"
	"errors"
	"sync"

	"github.com/courier-go/courier/message"
)

// Producer sends messages to channels.
//
// Implementations are safe for concurrent use.
type Producer interface {
	// Send sends msgs, in order, to the named channel and returns once the
	// broker has accepted them (for durable brokers: stored them). Send
	// assigns a time-ordered ID to each message whose ID is empty, so the
	// caller can read it afterwards; the caller must not otherwise modify
	// a message after sending it. Either every message is valid and sent,
	// or Send fails; a failure after the broker accepted some messages may
	// leave those sent, and a retry may then send them twice (consumers
	// absorb the duplicates by message ID).
	Send(ctx context.Context, channel string, msgs ...*message.Message) error
}

// ProducerFunc adapts a function to the Producer interface, for wrappers
// such as a producer that counts or delays what it sends.
type ProducerFunc func(ctx context.Context, channel string, msgs ...*message.Message) error

// Send calls f(ctx, channel, msgs...).
func (f ProducerFunc) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	return f(ctx, channel, msgs...)
}

// Consumer subscribes handlers to channels.
//
// Implementations are safe for concurrent use.
type Consumer interface {
	// Subscribe starts one instance of the consumer subscriberID on the
	// given channels and returns once messages sent after it returns will
	// be delivered to the subscriber id. ctx bounds only the set-up; the
	// subscription runs until it is closed.
	Subscribe(ctx context.Context, subscriberID string, channels []string, h Handler, opts ...SubscribeOption) (Subscription, error)
}

// Subscription is one running instance of a subscriber id.
type Subscription interface {
	// Close stops delivery to this instance and waits for its in-flight
	// handlers to return. Messages it did not finish go to the other
	// instances of the subscriber id, or to the next one that subscribes.
	// If ctx ends first, the handlers' contexts are cancelled and Close
	// still waits for them to return, then reports ctx's error.
	Close(ctx context.Context) error
}

// Broker is a connection to a message broker: a Producer and a Consumer.
type Broker interface {
	Producer
	Consumer
	// Close closes every subscription made through this Broker, as
	// Subscription.Close does, and releases the connection.
	Close(ctx context.Context) error
}

// ChannelRemover is implemented by brokers that can remove a channel, as
// far as the broker keeps it (each adapter says what goes), for a channel
// that has served its purpose, such as the reply channel a
// commands.Caller named for itself. Subscriptions still reading the
// channel stop receiving from it; a later Send creates it again, as the
// first one did. Removing a channel that does not exist is not an error.
type ChannelRemover interface {
	RemoveChannel(ctx context.Context, channel string) error
}

// Pinger is implemented by brokers that can tell whether the server
// answers now: Ping makes a round trip to it and returns an error, within
// ctx, if it does not. Readiness checks (httpx.Health) call it, so that a
// process whose broker is unreachable says so instead of seeming ready.
type Pinger interface {
	Ping(ctx context.Context) error
}

// SubscriberRemover is implemented by brokers that can remove what they
// keep for a subscriber id on channels (its position in them, and where a
// broker queues messages per subscriber id, the messages waiting for it),
// for a subscriber id retired for good: each adapter says what goes. A
// later Subscribe with the id starts afresh, as a new subscriber id does.
// Close the subscriber id's instances first: one still running may fail
// or recreate what was removed. Removing what does not exist is not an
// error.
type SubscriberRemover interface {
	RemoveSubscriber(ctx context.Context, subscriberID string, channels []string) error
}

// DeadLetterProducer is implemented by brokers that send dead letters
// differently from other messages, because a message sent to a channel
// that no subscriber id reads yet would otherwise be dropped (RabbitMQ
// drops what no queue is bound for). Dead letters must be kept until
// someone reads them: the Producer it returns keeps them, and fails a
// Send rather than let a dead letter vanish.
type DeadLetterProducer interface {
	DeadLetterProducer() Producer
}

// DeadLetters returns the Producer to send dead letters through p with:
// p's DeadLetterProducer if it has one, p itself otherwise. Processors
// (through the adapters) and the outbox relay send their dead letters
// through it.
func DeadLetters(p Producer) Producer {
	if d, ok := p.(DeadLetterProducer); ok {
		return d.DeadLetterProducer()
	}
	return p
}

// Handler handles one message.
//
// The message is the handler's own copy of the headers; the payload is
// shared and must be treated as read-only. Returning nil acknowledges the
// message. Returning an error asks for redelivery (see SubscribeConfig);
// wrap it with Permanent to send the message to the dead-letter channel at
// once.
type Handler interface {
	HandleMessage(ctx context.Context, msg *message.Message) error
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, msg *message.Message) error

// HandleMessage calls f(ctx, msg).
func (f HandlerFunc) HandleMessage(ctx context.Context, msg *message.Message) error {
	return f(ctx, msg)
}

// Middleware wraps a Handler with behaviour such as logging, metrics or
// deduplication.
type Middleware func(Handler) Handler

// Chain wraps h with mws, the first middleware outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// CloseAll closes subs concurrently, as an adapter's Broker.Close does with
// the subscriptions it made, and returns their errors joined. Closing them
// at once rather than in turn bounds the wait by the slowest handler, not by
// the sum of them all.
func CloseAll[S Subscription](ctx context.Context, subs []S) error {
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() { errs[i] = s.Close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
