package eventuate

import (
	"context"
	"fmt"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// malformedKey is the context key of the error of a delivery that is not
// an envelope.
type malformedKey struct{}

// WithMalformed returns ctx for handling a delivery whose body is not an
// envelope (err says why): a Handler refuses the message delivered with
// it, which the Processor then dead-letters at once.
func WithMalformed(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, malformedKey{}, err)
}

// Handler wraps h for a subscription in Eventuate's format: a message
// delivered with a context from WithMalformed fails with a permanent
// error, which dead-letters it without retries, and h never sees it;
// every other message goes to h.
func Handler(h broker.Handler) broker.Handler { return handler{h} }

type handler struct{ h broker.Handler }

func (e handler) HandleMessage(ctx context.Context, m *message.Message) error {
	if err, ok := ctx.Value(malformedKey{}).(error); ok {
		return broker.Permanent(fmt.Errorf("not an Eventuate envelope: %w", err))
	}
	return e.h.HandleMessage(ctx, m)
}
