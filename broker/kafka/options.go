package kafka

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/message"
)

// Defaults of a Broker's options.
const (
	// DefaultPartitions is the number of partitions of a topic created by
	// a Broker without WithPartitions.
	DefaultPartitions = 16
	// DefaultReplicationFactor asks the cluster for its own
	// default.replication.factor when creating a topic.
	DefaultReplicationFactor = -1
	// DefaultCommitInterval is how often a subscription commits the
	// offsets of the messages it has handled.
	DefaultCommitInterval = time.Second
	// DefaultSessionTimeout is how long the group coordinator waits for a
	// heartbeat of an instance before it gives the instance's partitions
	// to the others (Kafka's session.timeout.ms).
	DefaultSessionTimeout = 45 * time.Second
	// DefaultHeartbeatInterval is how often an instance heartbeats to the
	// group coordinator, and so how soon it learns of a rebalance.
	DefaultHeartbeatInterval = 3 * time.Second
)

// recordOverhead is room for what a Kafka record adds to a message: the ID,
// DESTINATION and DATE headers, the key, varint lengths and the batch
// header.
const recordOverhead = 4 << 10

// config is a Broker's resolved options.
type config struct {
	partitions        int32
	replicationFactor int16
	topicConfigs      map[string]*string
	createTopics      bool
	limits            message.Limits
	commitInterval    time.Duration
	sessionTimeout    time.Duration
	heartbeatInterval time.Duration
	kgoOpts           []kgo.Opt
	eventuate         bool // WithEventuateFormat
}

func newConfig(opts []Option) (config, error) {
	c := config{
		partitions:        DefaultPartitions,
		replicationFactor: DefaultReplicationFactor,
		topicConfigs:      map[string]*string{},
		createTopics:      true,
		commitInterval:    DefaultCommitInterval,
		sessionTimeout:    DefaultSessionTimeout,
		heartbeatInterval: DefaultHeartbeatInterval,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&c); err != nil {
			return config{}, fmt.Errorf("kafka: %w", err)
		}
	}
	if c.heartbeatInterval*3 > c.sessionTimeout {
		return config{}, fmt.Errorf("kafka: heartbeat interval %v must be at most a third of the session timeout %v", c.heartbeatInterval, c.sessionTimeout)
	}
	if _, ok := c.topicConfigs["max.message.bytes"]; !ok {
		v := fmt.Sprint(c.maxRecordBytes())
		c.topicConfigs["max.message.bytes"] = &v
	}
	return c, nil
}

// maxRecordBytes is the largest record batch a message within the limits
// can make: its payload, its headers (up to four times their size to allow
// for the lengths of many short headers and the key, which repeats
// PARTITION_ID) and a fixed overhead.
func (c config) maxRecordBytes() int32 {
	payload, headers := c.limits.MaxPayloadBytes, c.limits.MaxHeaderBytes
	if payload == 0 {
		payload = message.DefaultMaxPayloadBytes
	}
	if headers == 0 {
		headers = message.DefaultMaxHeaderBytes
	}
	return int32(payload + 4*headers + recordOverhead)
}

// Option configures a Broker.
type Option func(*config) error

// WithPartitions sets the number of partitions of the topics this Broker
// creates (default 16): the most handlers that run at once for one
// subscriber id on one channel, and the most instances of a subscriber id
// that get a share. A topic keeps the number it was created with; see the
// package documentation for why it should not be changed later.
func WithPartitions(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 10000 {
			return fmt.Errorf("partitions must be between 1 and 10000, got %d", n)
		}
		c.partitions = int32(n)
		return nil
	}
}

// WithReplicationFactor sets the replication factor of the topics this
// Broker creates (default: the cluster's default.replication.factor).
// Production clusters want 3, with min.insync.replicas 2 (see
// WithTopicConfig).
func WithReplicationFactor(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 32767 {
			return fmt.Errorf("replication factor must be between 1 and 32767, got %d", n)
		}
		c.replicationFactor = int16(n)
		return nil
	}
}

// WithTopicConfig sets a configuration entry of the topics this Broker
// creates, such as "min.insync.replicas", "retention.ms" or
// "max.message.bytes" (by default the largest record that a message within
// the limits makes). Existing topics are left as they are.
func WithTopicConfig(key, value string) Option {
	return func(c *config) error {
		if key == "" {
			return fmt.Errorf("topic config: empty key")
		}
		c.topicConfigs[key] = &value
		return nil
	}
}

// WithoutTopicCreation stops the Broker from creating topics: every
// channel's topic must exist, made by the cluster's administrators. Use it
// where the Broker's credentials may not create topics.
func WithoutTopicCreation() Option {
	return func(c *config) error {
		c.createTopics = false
		return nil
	}
}

// WithLimits sets the message size limits Send enforces (default
// message.DefaultMaxPayloadBytes and message.DefaultMaxHeaderBytes). The
// producer's largest batch and the max.message.bytes of the topics the
// Broker creates follow them.
func WithLimits(l message.Limits) Option {
	return func(c *config) error {
		if err := l.Validate(); err != nil {
			return err
		}
		if l.MaxPayloadBytes+4*l.MaxHeaderBytes > 256<<20 {
			return fmt.Errorf("limits of %d payload and %d header bytes exceed what the broker carries (256 MiB)", l.MaxPayloadBytes, l.MaxHeaderBytes)
		}
		c.limits = l
		return nil
	}
}

// WithCommitInterval sets how often a subscription commits the offsets of
// the messages it has handled (default 1s). Offsets are also committed
// whenever partitions are revoked and when the subscription closes; the
// interval bounds what is redelivered after an instance dies.
func WithCommitInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("commit interval must be at least 10ms, got %v", d)
		}
		c.commitInterval = d
		return nil
	}
}

// WithSessionTimeout sets how long the group coordinator waits for the
// heartbeat of an instance before it moves the instance's partitions to
// the others (default 45s). It must lie within the cluster's
// group.min.session.timeout.ms and group.max.session.timeout.ms.
func WithSessionTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("session timeout must be at least 1s, got %v", d)
		}
		c.sessionTimeout = d
		return nil
	}
}

// WithHeartbeatInterval sets how often instances heartbeat to the group
// coordinator (default 3s): how soon the running instances learn that one
// joined. It must be at most a third of the session timeout.
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("heartbeat interval must be at least 10ms, got %v", d)
		}
		c.heartbeatInterval = d
		return nil
	}
}

// WithClientOptions adds franz-go options to every client the Broker makes
// (its producer and each subscription's consumer), such as SASL
// (kgo.SASL), TLS (kgo.DialTLSConfig) or a logger (kgo.WithLogger). They
// come after the defaults; options that would change the delivery
// guarantees (acks, idempotence, the group protocol, commits) must not be
// given.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(c *config) error {
		for i, o := range opts {
			if o == nil {
				return fmt.Errorf("client option %d is nil", i)
			}
		}
		c.kgoOpts = append(c.kgoOpts, opts...)
		return nil
	}
}
