package events_test

import (
	"context"
	"fmt"

	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/events"
)

type OrderCreated struct{ Total int }

type OrderCancelled struct{ Reason string }

// Publish/subscribe: domain events of the Order aggregate, consumed in
// order per order by a dispatcher with typed handlers.
func Example() {
	ctx := context.Background()
	b, _ := memory.New()
	defer b.Close(ctx)

	done := make(chan struct{})
	d := events.NewDispatcher()
	events.On(d, "Order", func(_ context.Context, e events.Event[OrderCreated]) error {
		fmt.Println(e.AggregateID, "created, total", e.Payload.Total)
		return nil
	})
	events.On(d, "Order", func(_ context.Context, e events.Event[OrderCancelled]) error {
		fmt.Println(e.AggregateID, "cancelled:", e.Payload.Reason)
		close(done)
		return nil
	})
	sub, _ := d.Subscribe(ctx, b, "kitchen-service")
	defer sub.Close(ctx)

	pub := events.NewPublisher(b)
	pub.Publish(ctx, "Order", "o-1", OrderCreated{Total: 25}, OrderCancelled{Reason: "customer changed their mind"})
	<-done
	// Output:
	// o-1 created, total 25
	// o-1 cancelled: customer changed their mind
}
