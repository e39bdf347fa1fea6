package activemq

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/courier-go/courier/message"
)

// Defaults of the options.
const (
	// DefaultShards is the number of message groups a channel's messages
	// are spread over by partition key: the most handlers that run at once
	// for a subscriber id in ordered delivery.
	DefaultShards = 32
	// MaxShards bounds WithShards: ActiveMQ remembers the owners of 1024
	// message groups per queue by default, and forgetting one would let a
	// group's messages reach two consumers at once.
	MaxShards = 512
	// DefaultPrefetch is how many unacknowledged messages ActiveMQ hands
	// to an instance in ordered delivery (activemq.prefetchSize); in
	// concurrent delivery it is the instance's limit of messages in flight.
	DefaultPrefetch = 64
	// DefaultRebalanceInterval is how often the instances of a subscriber
	// id announce themselves and check whether they own more than their
	// share of message groups.
	DefaultRebalanceInterval = 500 * time.Millisecond
	// DefaultHeartBeat is the STOMP heart-beat interval: a server silent
	// for three of them is taken for gone and the connection made again.
	DefaultHeartBeat = 5 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the wait between
	// attempts to re-establish a lost connection.
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second
)

// Option configures a Broker.
type Option func(*config) error

type config struct {
	shards            int
	prefetch          int
	limits            message.Limits
	logger            *slog.Logger
	rebalanceInterval time.Duration
	heartBeat         time.Duration
	reconnectMin      time.Duration
	reconnectMax      time.Duration
}

func defaultConfig() config {
	return config{
		shards:            DefaultShards,
		prefetch:          DefaultPrefetch,
		logger:            slog.Default(),
		rebalanceInterval: DefaultRebalanceInterval,
		heartBeat:         DefaultHeartBeat,
		reconnectMin:      DefaultReconnectMin,
		reconnectMax:      DefaultReconnectMax,
	}
}

// WithShards sets the number of message groups (JMSXGroupID) Send spreads
// a channel's messages over by partition key, from 1 to MaxShards
// (default DefaultShards). Every producer of a channel must use the same
// number: a key whose group changes may be handled by two instances at
// once while messages of its old group are still queued.
func WithShards(n int) Option {
	return func(c *config) error {
		if n < 1 || n > MaxShards {
			return fmt.Errorf("shards must be from 1 to %d, got %d", MaxShards, n)
		}
		c.shards = n
		return nil
	}
}

// WithPrefetch sets how many unacknowledged messages ActiveMQ hands to an
// instance in ordered delivery (default DefaultPrefetch). In concurrent
// delivery the subscription's broker.WithConcurrentDelivery limit is used.
func WithPrefetch(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("prefetch must be at least 1, got %d", n)
		}
		c.prefetch = n
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

// WithRebalanceInterval sets how often instances announce themselves to
// the other instances of their subscriber id and hand over message groups
// beyond their share (default DefaultRebalanceInterval).
func WithRebalanceInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("rebalance interval must be positive, got %v", d)
		}
		c.rebalanceInterval = d
		return nil
	}
}

// WithHeartBeat sets the STOMP heart-beat interval (default
// DefaultHeartBeat).
func WithHeartBeat(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("heart-beat must be positive, got %v", d)
		}
		c.heartBeat = d
		return nil
	}
}

// WithReconnectBackoff bounds the wait between attempts to re-establish a
// lost connection (default DefaultReconnectMin to DefaultReconnectMax).
func WithReconnectBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if min <= 0 || max < min {
			return fmt.Errorf("reconnect backoff must have 0 < min <= max, got %v and %v", min, max)
		}
		c.reconnectMin, c.reconnectMax = min, max
		return nil
	}
}
