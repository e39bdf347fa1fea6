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
