package events_test

import (
	"context"
	"fmt"
	"reflect"

	"github.com/courier-go/courier/apispec"
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

// A service's AsyncAPI document lists the events its dispatcher handles,
// from the registrations themselves.
func ExampleDispatcher_HandledTypes() {
	d := events.NewDispatcher()
	events.On(d, "Order", func(context.Context, events.Event[OrderCreated]) error { return nil })
	events.On(d, "Order", func(context.Context, events.Event[OrderCancelled]) error { return nil })
	d.HandledTypes(func(channel, typeName string, payload reflect.Type) {
		fmt.Println(channel, typeName, payload)
	})

	s := apispec.New("kitchen-service", "1.0.0")
	s.Receives(apispec.Event, "", d)
	_, err := s.AsyncAPI()
	fmt.Println("AsyncAPI document:", err == nil)
	// Output:
	// Order events_test.OrderCancelled events_test.OrderCancelled
	// Order events_test.OrderCreated events_test.OrderCreated
	// AsyncAPI document: true
}
