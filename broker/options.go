package broker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/courier-go/courier/internal/backoff"
	"github.com/courier-go/courier/message"
)

// Defaults for SubscribeConfig.
const (
	DefaultMaxAttempts  = 5
	DefaultBackoffStart = 100 * time.Millisecond
	DefaultBackoffMax   = 10 * time.Second
	// DefaultMaxUnavailable bounds how long a handler's failures caused
	// by an unavailable dependency (see Unavailable) are retried without
	// counting toward its attempts: longer than a database's restart or
	// failover.
	DefaultMaxUnavailable = 5 * time.Minute
	// DeadLetterSuffix is appended to the subscriber id to name its
	// default dead-letter channel.
	DeadLetterSuffix = ".dead-letter"
)

// Backoff returns how long to wait before the next attempt, given the number
// of failed attempts so far (1 after the first failure).
type Backoff func(failures int) time.Duration

// ExponentialBackoff returns a Backoff that waits start after the first
// failure, doubling each time up to limit, each wait drawn at random from
// its upper half so that instances do not retry in step.
func ExponentialBackoff(start, limit time.Duration) Backoff {
	return func(failures int) time.Duration {
		return backoff.Jitter(backoff.Exponential(start, limit, failures))
	}
}

// ConstantBackoff returns a Backoff that always waits d.
func ConstantBackoff(d time.Duration) Backoff {
	return func(int) time.Duration { return d }
}

// SubscribeConfig is the resolved configuration of a subscription. Adapters
// get it from NewSubscribeConfig.
type SubscribeConfig struct {
	// SubscriberID is the consumer group the subscription belongs to.
	SubscriberID string
	// Channels are the validated channel names, without duplicates.
	Channels []string
	// Handler is the handler after every middleware.
	Handler Handler
	// MaxAttempts is how many times a message is handed to the handler
	// before it is dead-lettered; at least 1.
	MaxAttempts int
	// Backoff spaces the attempts.
	Backoff Backoff
	// DeadLetterChannel receives the messages the handler gave up on.
	DeadLetterChannel string
	// HandlerTimeout bounds each call of the handler; 0 means no bound.
	HandlerTimeout time.Duration
	// MaxUnavailable bounds how long failures marked Unavailable are
	// retried without counting toward MaxAttempts.
	MaxUnavailable time.Duration
	// Logger receives the subscription's events.
	Logger *slog.Logger
	// Ephemeral is set by WithEphemeral.
	Ephemeral bool
	// Observer is told of dead-lettered and discarded messages, and of
	// each call of the handler if it is a HandlerObserver.
	Observer Observer
	// Tracer follows each delivery (WithTracer); nil for none.
	Tracer Tracer
	// Delivery is the delivery mode: DeliveryOrdered unless
	// WithConcurrentDelivery was given.
	Delivery DeliveryMode
	// MaxInFlight is, in DeliveryConcurrent mode, the most messages the
	// instance handles at once; 0 in DeliveryOrdered mode.
	MaxInFlight int
}

// DeliveryMode is how a subscription hands its messages to the handler.
type DeliveryMode int

const (
	// DeliveryOrdered hands the messages of one partition key to the
	// handler one at a time, in the order they were sent, while instances
	// of the subscriber id join and leave: each channel is split into
	// shards by partition key, each shard is handled by one instance at a
	// time, and a shard moves to another instance only after what was
	// fetched for it was acknowledged or returned. Messages of different
	// shards are handled concurrently. It is the default.
	DeliveryOrdered DeliveryMode = iota
	// DeliveryConcurrent hands the messages of a channel to the handler
	// with up to SubscribeConfig.MaxInFlight of them in flight per
	// instance, in no particular order, even for one partition key. It
	// keeps every other promise of DeliveryOrdered: at-least-once
	// delivery, retries with backoff, dead-lettering, and Close waiting
	// for the handlers in flight. It is for handlers that do not depend on
	// order (idempotent writes, notifications, work items), which then do
	// not pay for it: each adapter consumes such a subscription the way a
	// plain client of its broker would, without shards.
	DeliveryConcurrent
)

// String returns "ordered" or "concurrent".
func (d DeliveryMode) String() string {
	switch d {
	case DeliveryOrdered:
		return "ordered"
	case DeliveryConcurrent:
		return "concurrent"
	}
	return fmt.Sprintf("DeliveryMode(%d)", int(d))
}

// SubscribeOption configures a subscription.
type SubscribeOption func(*SubscribeConfig) error

// WithMaxAttempts sets how many times a message is handed to the handler
// before it goes to the dead-letter channel (default 5). n must be at least 1.
func WithMaxAttempts(n int) SubscribeOption {
	return func(c *SubscribeConfig) error {
		if n < 1 {
			return fmt.Errorf("max attempts must be at least 1, got %d", n)
		}
		c.MaxAttempts = n
		return nil
	}
}

// WithBackoff sets the wait between attempts (default: exponential from
// 100ms to 10s, with jitter).
func WithBackoff(b Backoff) SubscribeOption {
	return func(c *SubscribeConfig) error {
		if b == nil {
			return fmt.Errorf("backoff must not be nil")
		}
		c.Backoff = b
		return nil
	}
}

// WithDeadLetterChannel names the channel that receives messages the
// handler gave up on (default: the subscriber id followed by
// DeadLetterSuffix).
func WithDeadLetterChannel(channel string) SubscribeOption {
	return func(c *SubscribeConfig) error {
		if err := message.ValidateChannel(channel); err != nil {
			return fmt.Errorf("dead-letter channel: %w", err)
		}
		c.DeadLetterChannel = channel
		return nil
	}
}

// WithHandlerTimeout bounds each call of the handler: its context is
// cancelled after d. d must be positive.
func WithHandlerTimeout(d time.Duration) SubscribeOption {
	return func(c *SubscribeConfig) error {
		if d <= 0 {
			return fmt.Errorf("handler timeout must be positive, got %v", d)
		}
		c.HandlerTimeout = d
		return nil
	}
}

// WithMaxUnavailable sets how long a message whose handler fails because a
// dependency is unavailable (an error marked with Unavailable) is retried,
// with backoff, before such failures count toward WithMaxAttempts like
// any other (default DefaultMaxUnavailable). Meanwhile the message's shard
// waits, as it would for the broker. d must be positive.
func WithMaxUnavailable(d time.Duration) SubscribeOption {
	return func(c *SubscribeConfig) error {
		if d <= 0 {
			return fmt.Errorf("max unavailable must be positive, got %v", d)
		}
		c.MaxUnavailable = d
		return nil
	}
}

// WithConcurrentDelivery switches the subscription to DeliveryConcurrent:
// each instance handles up to maxInFlight messages of its channels at once,
// in no particular order. Every instance of a subscriber id must use the
// same delivery mode on a channel; an adapter that can tell refuses a
// Subscribe that mixes them. maxInFlight must be at least 1.
func WithConcurrentDelivery(maxInFlight int) SubscribeOption {
	return func(c *SubscribeConfig) error {
		if maxInFlight < 1 {
			return fmt.Errorf("concurrent delivery: max in flight must be at least 1, got %d", maxInFlight)
		}
		c.Delivery = DeliveryConcurrent
		c.MaxInFlight = maxInFlight
		return nil
	}
}

// WithOrderedDelivery switches the subscription to DeliveryOrdered, the
// default; it undoes an earlier WithConcurrentDelivery.
func WithOrderedDelivery() SubscribeOption {
	return func(c *SubscribeConfig) error {
		c.Delivery = DeliveryOrdered
		c.MaxInFlight = 0
		return nil
	}
}

// WithMiddleware wraps the handler with mws, the first outermost.
func WithMiddleware(mws ...Middleware) SubscribeOption {
	return func(c *SubscribeConfig) error {
		c.Handler = Chain(c.Handler, mws...)
		return nil
	}
}

// WithLogger sets the logger for the subscription's events (default
// slog.Default()).
func WithLogger(l *slog.Logger) SubscribeOption {
	return func(c *SubscribeConfig) error {
		if l == nil {
			return fmt.Errorf("logger must not be nil")
		}
		c.Logger = l
		return nil
	}
}

// WithObserver reports the messages the subscription dead-letters or
// discards to o (default NopObserver); package broker/metrics has one that
// exports them to Prometheus.
func WithObserver(o Observer) SubscribeOption {
	return func(c *SubscribeConfig) error {
		if o == nil {
			return fmt.Errorf("observer must not be nil")
		}
		c.Observer = o
		return nil
	}
}

// WithEphemeral declares that the subscription is the only instance of
// its subscriber id and that its place in its channels need not outlive
// it, as for a Caller's reply channel, whose replies matter only to the
// process waiting for them. An adapter may then keep the subscription's
// position in memory instead of storing it in the broker, which makes
// delivery cheaper: the subscription receives the messages sent after
// Subscribe returns, in order per partition key, with the usual retries
// and dead-lettering while it lives, and leaves nothing behind when it
// closes. Messages sent while no instance is subscribed are not delivered
// to the next one.
//
// It is a hint: adapters without a cheaper way ignore it and subscribe
// durably, which meets the same promises. So use it only where a durable
// subscription would be correct too. See each adapter's documentation for
// what it does with the hint.
func WithEphemeral() SubscribeOption {
	return func(c *SubscribeConfig) error {
		c.Ephemeral = true
		return nil
	}
}
