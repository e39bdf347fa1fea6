package direct_test

import (
	"context"
	"fmt"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/direct"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/message"
)

// Two services without a broker between them: the kitchen's instance
// registers in the registry, and the order service's broker finds it
// there and delivers to it over a gRPC stream. With etcd as the registry
// the two run in separate processes the same way.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := memory.New()
	defer reg.Close()

	kitchen, err := direct.New(reg, direct.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kitchen.Close(ctx)
	got := make(chan string, 3)
	if _, err := kitchen.Subscribe(ctx, "kitchen-service", []string{"order-events"}, broker.HandlerFunc(
		func(_ context.Context, m *message.Message) error {
			got <- string(m.Payload)
			return nil
		})); err != nil {
		fmt.Println(err)
		return
	}

	orders, err := direct.New(reg, direct.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer orders.Close(ctx)
	for _, step := range []string{"created", "approved", "shipped"} {
		m := message.NewBuilder([]byte(step)).WithPartitionKey("order-1").Build()
		// Returns once the kitchen's instance has queued the message.
		if err := orders.Send(ctx, "order-events", m); err != nil {
			fmt.Println(err)
			return
		}
	}
	for range 3 {
		fmt.Println(<-got)
	}
	// Output:
	// created
	// approved
	// shipped
}
