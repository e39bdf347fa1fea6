package natsjs

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/courier-go/courier/message"
)

// Defaults of a Broker's options.
const (
	// DefaultShards is the number of shards of a channel created by a
	// Broker without WithShards.
	DefaultShards = 16
	// DefaultMaxAge is how long a channel's stream keeps messages unless
	// WithMaxAge says otherwise.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultAckWait is how long JetStream waits for the acknowledgement
	// of a delivered message before it delivers it again. It is short
	// because it is also how long a shard stalls when a delivery or an
	// acknowledgement is lost in flight (a connection that dies, a server
	// that restarts before it stored the acknowledgement): with one
	// message of a shard in flight at a time, JetStream sends the next
	// only after it. Handlers may run longer: the subscription reports
	// progress every third of it.
	DefaultAckWait = 5 * time.Second
	// DefaultMembershipTTL is how long an instance that stopped
	// heartbeating keeps its shards.
	DefaultMembershipTTL = 10 * time.Second
	// DefaultPublishTimeout bounds the wait for JetStream's
	// acknowledgement of each published message.
	DefaultPublishTimeout = 30 * time.Second
)

// MembershipBucket is the JetStream key-value bucket in which the instances
// of subscriber ids register.
const MembershipBucket = "courier-members"

// config is a Broker's resolved options.
type config struct {
	shards         int
	replicas       int
	maxAge         time.Duration
	ackWait        time.Duration
	membershipTTL  time.Duration
	publishTimeout time.Duration
	limits         message.Limits
	natsOpts       []nats.Option
	logger         *slog.Logger
	consumerExpiry time.Duration
}

func newConfig(opts []Option) (config, error) {
	c := config{
		shards:         DefaultShards,
		replicas:       1,
		maxAge:         DefaultMaxAge,
		ackWait:        DefaultAckWait,
		membershipTTL:  DefaultMembershipTTL,
		publishTimeout: DefaultPublishTimeout,
		logger:         slog.Default(),
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&c); err != nil {
			return config{}, fmt.Errorf("natsjs: %w", err)
		}
	}
	return c, nil
}

// Option configures a Broker.
type Option func(*config) error

// WithShards sets the number of shards of the channels this Broker creates
// (default 16): the most handlers that run at once for one subscriber id on
// one channel. A channel keeps the number it was created with.
func WithShards(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1024 {
			return fmt.Errorf("shards must be between 1 and 1024, got %d", n)
		}
		c.shards = n
		return nil
	}
}

// WithReplicas sets the number of replicas of the streams, consumers and
// membership bucket this Broker creates (default 1). It needs a JetStream
// cluster of at least n servers.
func WithReplicas(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("replicas must be between 1 and 5, got %d", n)
		}
		c.replicas = n
		return nil
	}
}

// WithMaxAge sets how long the channels this Broker creates keep messages
// (default 7 days); 0 keeps them until the stream's other limits remove
// them. A subscriber id that falls further behind loses messages.
func WithMaxAge(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("max age must not be negative, got %v", d)
		}
		c.maxAge = d
		return nil
	}
}

// WithAckWait sets how long JetStream waits for a delivered message to be
// acknowledged before it delivers it again (default 5s). Handlers may run
// longer: the subscription reports progress every third of it. It bounds
// how long the message in flight at an instance that died waits before
// another instance gets it, and how long a shard stalls after a delivery
// or an acknowledgement was lost in flight.
func WithAckWait(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("ack wait must be at least 1s, got %v", d)
		}
		c.ackWait = d
		return nil
	}
}

// WithMembershipTTL sets how long an instance that stops heartbeating
// (because its process died) keeps its shards (default 10s). Instances
// heartbeat every third of it. It takes effect when this Broker creates the
// membership bucket; afterwards every Broker follows the bucket's setting.
func WithMembershipTTL(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("membership TTL must be at least 1s, got %v", d)
		}
		c.membershipTTL = d
		return nil
	}
}

// WithConsumerExpiry makes JetStream delete the durable consumers of a
// subscriber id (its position in a channel) once no instance of it has
// pulled for d, as RabbitMQ's queue expiry does (default: never). A
// subscriber id that comes back after that starts afresh, with the
// messages sent after it subscribed, so d must be longer than any outage
// the subscriber id should survive. Without it, retire a subscriber id with
// RemoveSubscriber. It applies to the consumers a subscription creates or
// updates.
func WithConsumerExpiry(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("consumer expiry must be at least 1s, got %v", d)
		}
		c.consumerExpiry = d
		return nil
	}
}

// WithLogger sets the logger for the Broker's own events, such as a
// channel's stream being upgraded (default slog.Default()). Subscriptions
// log through broker.WithLogger.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

// WithPublishTimeout bounds the wait for JetStream to acknowledge each
// published message (default 30s), on top of the Send context.
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("publish timeout must be positive, got %v", d)
		}
		c.publishTimeout = d
		return nil
	}
}

// WithLimits sets the message size limits Send enforces (default
// message.DefaultMaxPayloadBytes and message.DefaultMaxHeaderBytes). The
// server's max_payload must hold a message with its headers.
func WithLimits(l message.Limits) Option {
	return func(c *config) error {
		if err := l.Validate(); err != nil {
			return err
		}
		c.limits = l
		return nil
	}
}

// WithNATSOptions adds options to the connection that Open or
// Embedded.Broker makes, such as credentials (nats.UserCredentials,
// nats.UserInfo, nats.Token) or TLS. They come after the defaults, so they
// can override them. New, which is given a connection, ignores them.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(c *config) error {
		c.natsOpts = append(c.natsOpts, opts...)
		return nil
	}
}
