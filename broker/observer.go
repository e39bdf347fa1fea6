package broker

import "context"

// Observer is told what a subscription's Processor does with the messages
// it gives up on, so that they can be counted (package broker/metrics
// exports them to Prometheus). Its methods are called from the handlers'
// goroutines, concurrently, and must return quickly.
type Observer interface {
	// DeadLettered reports a message sent to the dead-letter channel:
	// as it was (envelope "original"), or in a bounded envelope because
	// the broker refused it as it was ("bounded" or "minimal"; see
	// Processor).
	DeadLettered(ctx context.Context, info DeliveryInfo, messageID, envelope string)
	// Discarded reports a message acknowledged without being handled or
	// dead-lettered, because the broker refused even its minimal
	// dead-letter envelope; err is the broker's last refusal. It is
	// logged at ERROR level as well.
	Discarded(ctx context.Context, info DeliveryInfo, messageID string, err error)
}

// NopObserver ignores every event.
type NopObserver struct{}

// DeadLettered does nothing.
func (NopObserver) DeadLettered(context.Context, DeliveryInfo, string, string) {}

// Discarded does nothing.
func (NopObserver) Discarded(context.Context, DeliveryInfo, string, error) {}

// The envelopes a dead letter is sent in, from the fullest to the
// smallest: the value of the dead_letter_envelope header and of
// Observer.DeadLettered's envelope argument.
const (
	// EnvelopeOriginal is the message as it was consumed, headers and
	// payload, with the dead-letter headers added. It carries no
	// dead_letter_envelope header.
	EnvelopeOriginal = "original"
	// EnvelopeBounded keeps the original headers that every broker
	// carries (see Processor) within a budget, and at most
	// BoundedPayloadBytes of the payload.
	EnvelopeBounded = "bounded"
	// EnvelopeMinimal keeps only the message's ID, its partition key if
	// it is well formed, and the dead-letter headers; no payload.
	EnvelopeMinimal = "minimal"
)

// BoundedPayloadBytes is the most payload a bounded dead-letter envelope
// keeps: under every supported broker's default message size.
const BoundedPayloadBytes = 256 << 10
