package direct

import (
	"context"

	"github.com/courier-go/courier/message"
)

// PublishRaw delivers a message with the headers and payload as given,
// checked against nothing, routed by key as Send routes it: what a sender
// that does not use Courier, speaking the wire protocol, can deliver.
func PublishRaw(ctx context.Context, b *Broker, channel, key string, headers message.Headers, payload []byte) error {
	h := headers.Clone()
	if h == nil {
		h = message.Headers{}
	}
	if key != "" {
		h[message.HeaderPartitionID] = key
	}
	h[message.HeaderDestination] = channel
	return b.deliver(ctx, channel, false, []*message.Message{{ID: message.NewID(), Headers: h, Payload: payload}})
}
