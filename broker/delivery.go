package broker

import "context"

// DeliveryInfo describes the delivery a handler is running for.
type DeliveryInfo struct {
	SubscriberID string
	Channel      string
	// Shard is the adapter's shard (partition) number, or -1 if unknown.
	Shard int
	// Attempt counts the calls of the handler for this message, from 1.
	Attempt int
}

type deliveryKey struct{}

// deliveryContext carries DeliveryInfo without an allocation of its own.
type deliveryContext struct {
	context.Context
	info DeliveryInfo
}

func (c *deliveryContext) Value(key any) any {
	if key == (deliveryKey{}) {
		return &c.info
	}
	return c.Context.Value(key)
}

// Delivery returns the DeliveryInfo of the handler call that ctx belongs to.
func Delivery(ctx context.Context) (DeliveryInfo, bool) {
	if d, ok := ctx.Value(deliveryKey{}).(*DeliveryInfo); ok {
		return *d, true
	}
	return DeliveryInfo{}, false
}

// ContextWithDelivery returns a context derived from parent that carries
// info, for Delivery to return, and a pointer to the context's copy of
// info, through which an adapter updates it between attempts (Attempt).
// Only adapters call it (through package broker/adapter's Processor).
func ContextWithDelivery(parent context.Context, info DeliveryInfo) (context.Context, *DeliveryInfo) {
	dc := &deliveryContext{Context: parent, info: info}
	return dc, &dc.info
}
