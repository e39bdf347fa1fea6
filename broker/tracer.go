package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/courier-go/courier/message"
)

// Tracer follows each message a subscription delivers from its arrival to
// its outcome, for distributed tracing: package observe/tracing has one
// that starts an OpenTelemetry span as a child of (or linked to) the
// sender's, from the trace context in the message's headers. A
// subscription without a Tracer (the default) pays nothing for it.
//
// Its methods are called from the handlers' goroutines, concurrently, and
// must return quickly.
type Tracer interface {
	// StartDelivery is called once for each delivery of msg, before the
	// first call of the handler. The context it returns is the handler's
	// (the Processor adds the DeliveryInfo to it) and the dead-letter
	// send's; end is called once, with the outcome, when the Processor is
	// done with the delivery. msg must not be modified or kept.
	StartDelivery(ctx context.Context, info DeliveryInfo, msg *message.Message) (context.Context, func(DeliveryOutcome))
}

// DeliveryOutcome is how a delivery ended.
type DeliveryOutcome struct {
	// Attempts counts the calls of the handler for the message,
	// this delivery's and the broker's earlier ones.
	Attempts int
	// Err is the handler's last error; nil if it handled the message.
	Err error
	// Result is what became of the message: "handled",
	// "dead_lettered", "discarded" or "abandoned" (the subscription
	// stopped first; the message will be delivered again).
	Result string
}

// The results of a delivery (DeliveryOutcome.Result) and the labels of
// the consumer metrics.
const (
	ResultHandled      = "handled"
	ResultDeadLettered = "dead_lettered"
	ResultDiscarded    = "discarded"
	ResultAbandoned    = "abandoned"
)

// HandlerObserver is an Observer that is also told of each call of the
// handler, for metrics of handler time, failures and retries (package
// broker/metrics exports them). The Processor checks for it once, when it
// is made; an Observer without it pays nothing for the calls.
type HandlerObserver interface {
	Observer
	// Handled reports one call of the handler for the message
	// messageID: how long it took and its error, nil if it succeeded.
	// retry reports that the handler will be called again for the
	// message, after a backoff.
	Handled(ctx context.Context, info DeliveryInfo, messageID string, took time.Duration, err error, retry bool)
}

// WithTracer has t follow each delivery of the subscription (default:
// none).
func WithTracer(t Tracer) SubscribeOption {
	return func(c *SubscribeConfig) error {
		if t == nil {
			return fmt.Errorf("tracer must not be nil")
		}
		c.Tracer = t
		return nil
	}
}
