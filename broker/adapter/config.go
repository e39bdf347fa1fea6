package adapter

import (
	"fmt"
	"log/slog"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// NewSubscribeConfig validates the arguments of a Subscribe call and
// returns the resolved configuration. Every error wraps
// broker.ErrInvalidSubscription.
func NewSubscribeConfig(subscriberID string, channels []string, h broker.Handler, opts ...broker.SubscribeOption) (broker.SubscribeConfig, error) {
	fail := func(format string, args ...any) (broker.SubscribeConfig, error) {
		return broker.SubscribeConfig{}, fmt.Errorf("%w: subscriber %q: %s", broker.ErrInvalidSubscription, subscriberID, fmt.Sprintf(format, args...))
	}
	if err := message.ValidateChannel(subscriberID); err != nil {
		return fail("subscriber id: %v", err)
	}
	if len(channels) == 0 {
		return fail("no channels")
	}
	if h == nil {
		return fail("nil handler")
	}
	seen := make(map[string]bool, len(channels))
	cfg := broker.SubscribeConfig{
		SubscriberID:      subscriberID,
		Handler:           h,
		MaxAttempts:       broker.DefaultMaxAttempts,
		Backoff:           broker.ExponentialBackoff(broker.DefaultBackoffStart, broker.DefaultBackoffMax),
		DeadLetterChannel: subscriberID + broker.DeadLetterSuffix,
		MaxUnavailable:    broker.DefaultMaxUnavailable,
	}
	for _, ch := range channels {
		if err := message.ValidateChannel(ch); err != nil {
			return fail("channel: %v", err)
		}
		if !seen[ch] {
			seen[ch] = true
			cfg.Channels = append(cfg.Channels, ch)
		}
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return fail("%v", err)
		}
	}
	if err := message.ValidateChannel(cfg.DeadLetterChannel); err != nil {
		return fail("dead-letter channel (set one with WithDeadLetterChannel): %v", err)
	}
	if seen[cfg.DeadLetterChannel] {
		return fail("dead-letter channel %q is also consumed", cfg.DeadLetterChannel)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = broker.NopObserver{}
	}
	return cfg, nil
}

// PrepareSend validates a Send call before anything is sent: the channel
// name, and each message against limits. It assigns an ID to each message
// that has none. Adapters call it first in Send.
func PrepareSend(channel string, msgs []*message.Message, limits message.Limits) error {
	if err := message.ValidateChannel(channel); err != nil {
		return fmt.Errorf("send to %q: %w", channel, err)
	}
	for i, m := range msgs {
		if m == nil {
			return fmt.Errorf("send to %q: message %d is nil: %w", channel, i, message.ErrMissingID)
		}
		if m.ID == "" {
			m.ID = message.NewID()
		}
		if err := limits.Check(m); err != nil {
			return fmt.Errorf("send to %q: %w", channel, err)
		}
	}
	return nil
}
