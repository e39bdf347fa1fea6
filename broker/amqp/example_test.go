package amqp_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/message"
)

// A service subscribes to a channel and another sends to it. Messages with
// the same partition key are handled in order, by one instance at a time,
// however many instances of "kitchen-service" run. (It needs a RabbitMQ
// server, so it is not run as a test.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := amqp.Open(ctx, "amqp://guest:guest@127.0.0.1:5672/", amqp.WithShards(16))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(context.Background())

	sub, err := b.Subscribe(ctx, "kitchen-service", []string{"order-events"},
		broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
			fmt.Printf("%s %s\n", m.PartitionKey(), m.Payload)
			return nil
		}),
		broker.WithMaxAttempts(3))
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close(context.Background())

	err = b.Send(ctx, "order-events",
		message.NewBuilder([]byte("OrderCreated")).WithPartitionKey("order-1").Build(),
		message.NewBuilder([]byte("OrderApproved")).WithPartitionKey("order-1").Build())
	if err != nil {
		log.Fatal(err)
	}
}

// A producer that is not written with Courier publishes to a channel's
// exchange with the routing key Send would use, so that its messages join
// their key's shard queue, in order with the key's other messages.
func ExampleRoutingKey() {
	fmt.Println(amqp.RoutingKey("order-1"))
	fmt.Println(amqp.RoutingKey("order-1") == amqp.RoutingKey("order-1"))
	// Output:
	// 0.1.0.0.1.0.0.1.0.0
	// true
}
