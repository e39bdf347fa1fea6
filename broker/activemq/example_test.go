package activemq_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/activemq"
	"github.com/courier-go/courier/message"
)

// A subscriber id receives what is sent to its channel; messages of one
// partition key arrive in order. It needs an ActiveMQ server with STOMP,
// such as the one scripts/services/activemq.sh starts.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := os.Getenv("COURIER_ACTIVEMQ_URL")
	if url == "" {
		url = "activemq://127.0.0.1:61613"
	}
	b, err := activemq.Open(ctx, url)
	if err != nil {
		fmt.Println("no ActiveMQ server:", err != nil)
		return
	}
	defer b.Close(ctx)

	suffix := fmt.Sprint(time.Now().UnixNano())
	channel := "example-orders-" + suffix
	got := make(chan string, 3)
	sub, err := b.Subscribe(ctx, "example-kitchen-"+suffix, []string{channel}, broker.HandlerFunc(
		func(_ context.Context, m *message.Message) error {
			got <- string(m.Payload)
			return nil
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close(ctx)

	for _, step := range []string{"created", "approved", "shipped"} {
		m := message.NewBuilder([]byte(step)).WithPartitionKey("order-1").Build()
		if err := b.Send(ctx, channel, m); err != nil {
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
