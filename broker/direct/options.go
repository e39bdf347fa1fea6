package direct

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/message"
)

// Defaults of a Broker's options.
const (
	// DefaultShards is the number of shards a channel's partition keys
	// are spread over unless WithShards says otherwise.
	DefaultShards = 64
	// DefaultQueueLength is how many accepted messages an instance holds
	// before a sender waits (WithQueueLength).
	DefaultQueueLength = 4096
	// maxShards bounds WithShards and the shard of a frame.
	maxShards = 1 << 16
)

// Option configures a Broker.
type Option func(*Broker) error

// WithListenAddress sets the host:port the broker's receiver listens on
// once it has a subscription (default "127.0.0.1:0", a free loopback
// port). Listen on a routable address for senders on other machines.
func WithListenAddress(addr string) Option {
	return func(b *Broker) error {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("direct broker: listen address: %w", err)
		}
		b.listen = addr
		return nil
	}
}

// WithAdvertiseAddress sets the host:port registered for the receiver,
// which senders dial (default: the listener's address). Use it when the
// receiver listens on a wildcard address or behind address translation.
func WithAdvertiseAddress(addr string) Option {
	return func(b *Broker) error {
		if err := discovery.ValidateAddress(addr); err != nil {
			return fmt.Errorf("direct broker: advertise address: %w", err)
		}
		b.advertise = addr
		return nil
	}
}

// WithShards sets how many shards the receivers of this broker spread a
// channel's partition keys over (default DefaultShards). The number is
// registered with each subscription instance and senders use it, so the
// instances of one subscriber id must agree on it.
func WithShards(n int) Option {
	return func(b *Broker) error {
		if n < 1 || n > maxShards {
			return fmt.Errorf("direct broker: shards must be in 1..%d, got %d", maxShards, n)
		}
		b.shards = n
		return nil
	}
}

// WithQueueLength bounds how many accepted messages each subscription
// instance holds, not yet handled (default DefaultQueueLength). A sender
// whose message finds the queue full waits, within its context, for room:
// the receivers' pace limits the senders'.
func WithQueueLength(n int) Option {
	return func(b *Broker) error {
		if n < 1 {
			return fmt.Errorf("direct broker: queue length must be at least 1, got %d", n)
		}
		b.queueLength = n
		return nil
	}
}

// WithRegisterOptions sets the options of each subscription instance's
// registration, such as discovery.WithTTL: a receiver that crashes stays
// registered, and senders try it and fail over, until its lease expires.
func WithRegisterOptions(opts ...discovery.RegisterOption) Option {
	return func(b *Broker) error {
		if _, err := discovery.RegisterSettings(opts...); err != nil {
			return fmt.Errorf("direct broker: %w", err)
		}
		b.regOpts = opts
		return nil
	}
}

// WithTLS makes the receiver serve TLS with server and senders dial
// receivers with client; either may be nil to keep that side in plain
// text. Both ends of a pair of brokers must agree.
func WithTLS(server, client *tls.Config) Option {
	return func(b *Broker) error {
		b.serverTLS, b.clientTLS = server, client
		return nil
	}
}

// WithLimits sets the message size limits Send enforces; receivers take
// messages up to these limits and a margin for malformed ones.
func WithLimits(l message.Limits) Option {
	return func(b *Broker) error {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("direct broker: %w", err)
		}
		b.limits = l
		return nil
	}
}

// WithRequireSubscribers makes Send to a channel that no instance of any
// subscriber id is registered for fail with an error wrapping
// ErrNoSubscribers, instead of delivering the message to nobody.
func WithRequireSubscribers() Option {
	return func(b *Broker) error {
		b.requireSubscribers = true
		return nil
	}
}

// WithRetryWait bounds the wait between a Send's attempts to find a live
// instance of a subscriber id whose instances refused or could not be
// reached (default 200ms; the first waits are shorter).
func WithRetryWait(d time.Duration) Option {
	return func(b *Broker) error {
		if d <= 0 {
			return fmt.Errorf("direct broker: retry wait must be positive, got %v", d)
		}
		b.retryWait = d
		return nil
	}
}

// WithLogger sets the broker's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(b *Broker) error {
		if l == nil {
			return fmt.Errorf("direct broker: nil logger")
		}
		b.log = l
		return nil
	}
}
