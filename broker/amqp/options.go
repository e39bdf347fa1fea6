package amqp

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/courier-go/courier/message"
)

// Defaults of the options.
const (
	// DefaultShards is the number of shard queues of a subscriber id on a
	// channel: the most handlers that run at once for it.
	DefaultShards = 8
	// MaxShards bounds WithShards.
	MaxShards = 1 << routeBits
	// DefaultPrefetch is how many unacknowledged messages RabbitMQ hands
	// to the owner of a shard at once. At 1, a shard waits a round trip to
	// the server between messages; in the benchmark a prefetch of 16 raised
	// the end-to-end rate by about 40%.
	DefaultPrefetch = 16
	// DefaultPublishChannels is how many confirm-mode AMQP channels a
	// Broker keeps open for Sends.
	DefaultPublishChannels = 64
	// DefaultRebalanceInterval is how often an instance checks whether it
	// owns more than its share of shards.
	DefaultRebalanceInterval = 500 * time.Millisecond
	// DefaultReconnectMin and DefaultReconnectMax bound the wait between
	// attempts to re-establish a lost connection.
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second
)

// QueueType is the RabbitMQ queue type of the shard queues.
type QueueType string

// The queue types that support single active consumers.
const (
	// QuorumQueue is a replicated, durable queue (the default).
	QuorumQueue QueueType = "quorum"
	// ClassicQueue is a durable queue on one node; messages are persistent.
	ClassicQueue QueueType = "classic"
)

// Option configures a Broker.
type Option func(*config) error

type config struct {
	shards            int
	limits            message.Limits
	logger            *slog.Logger
	queueType         QueueType
	queueExpiry       time.Duration
	prefetch          int
	publishChannels   int
	rebalanceInterval time.Duration
	reconnectMin      time.Duration
	reconnectMax      time.Duration
	connectionName    string
	// eventuate is set by WithEventuateFormat, with its partition count.
	eventuate           bool
	eventuatePartitions int
}

func defaultConfig() config {
	return config{
		shards:            DefaultShards,
		logger:            slog.Default(),
		queueType:         QuorumQueue,
		prefetch:          DefaultPrefetch,
		publishChannels:   DefaultPublishChannels,
		rebalanceInterval: DefaultRebalanceInterval,
		reconnectMin:      DefaultReconnectMin,
		reconnectMax:      DefaultReconnectMax,
		connectionName:    "courier",
	}
}

// WithShards sets the number of shard queues each subscriber id declares
// per channel: a power of two, at most MaxShards (default DefaultShards).
// It concerns consumers only; producers need not agree on it. Every
// instance of a subscriber id must use the same number; see the package
// documentation before changing it for an existing subscriber id.
func WithShards(n int) Option {
	return func(c *config) error {
		if n < 1 || n > MaxShards || n&(n-1) != 0 {
			return fmt.Errorf("shards must be a power of two from 1 to %d, got %d", MaxShards, n)
		}
		c.shards = n
		return nil
	}
}

// WithLimits sets the message size limits Send enforces.
func WithLimits(l message.Limits) Option {
	return func(c *config) error {
		if err := l.Validate(); err != nil {
			return err
		}
		c.limits = l
		return nil
	}
}

// WithLogger sets the logger for connection events (default
// slog.Default()). Subscriptions log to the logger of their
// broker.SubscribeConfig.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

// WithQueueType sets the type of the shard queues (default QuorumQueue).
func WithQueueType(t QueueType) Option {
	return func(c *config) error {
		if t != QuorumQueue && t != ClassicQueue {
			return fmt.Errorf("queue type must be %q or %q, got %q", QuorumQueue, ClassicQueue, t)
		}
		c.queueType = t
		return nil
	}
}

// WithQueueExpiry lets RabbitMQ delete each shard queue of a subscriber id,
// with the messages in it, once it has had no consumer for d (the x-expires
// queue argument). Without it (the default) the queues live until deleted
// by hand. Channel exchanges are never deleted.
func WithQueueExpiry(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("queue expiry must be at least a second, got %v", d)
		}
		c.queueExpiry = d
		return nil
	}
}

// WithPrefetch sets how many unacknowledged messages RabbitMQ sends ahead
// to the owner of a shard (default DefaultPrefetch, 16). Messages are still
// handled one at a time and in order; a larger prefetch saves round trips
// for small, fast handlers and makes a handover return more messages to the
// queue, a smaller one suits slow handlers whose messages would otherwise
// wait in one instance while another is idle. With 1, each message costs a
// round trip to the server before the next is delivered.
func WithPrefetch(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 65535 {
			return fmt.Errorf("prefetch must be between 1 and 65535, got %d", n)
		}
		c.prefetch = n
		return nil
	}
}

// WithPublishChannels sets how many confirm-mode AMQP channels the Broker
// keeps open between Sends (default DefaultPublishChannels). A Send holds
// one channel until its messages are confirmed, so this is the number of
// concurrent Sends served without opening a channel; a Send beyond it
// opens one and closes it afterwards, which costs two round trips to the
// server. Set it to the number of goroutines that send at once.
func WithPublishChannels(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 2047 {
			return fmt.Errorf("publish channels must be between 1 and 2047, got %d", n)
		}
		c.publishChannels = n
		return nil
	}
}

// WithRebalanceInterval sets how often each instance checks whether it owns
// more than its share of a channel's shards and hands the surplus over
// (default DefaultRebalanceInterval).
func WithRebalanceInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("rebalance interval must be at least 10ms, got %v", d)
		}
		c.rebalanceInterval = d
		return nil
	}
}

// WithReconnectBackoff sets the wait between attempts to re-establish a lost
// connection: min after the first failure, doubling up to max, with jitter.
func WithReconnectBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if min <= 0 || max < min {
			return fmt.Errorf("reconnect backoff must satisfy 0 < min <= max, got %v and %v", min, max)
		}
		c.reconnectMin, c.reconnectMax = min, max
		return nil
	}
}

// WithConnectionName sets the name the connections show in RabbitMQ's
// management tools (default "courier"); " publisher" and " consumer" are
// appended.
func WithConnectionName(name string) Option {
	return func(c *config) error {
		c.connectionName = name
		return nil
	}
}
