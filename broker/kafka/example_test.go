package kafka_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/message"
)

// An in-process cluster stands in for a real one here; give Open the
// addresses of some of a real cluster's brokers instead.
func Example() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := kafka.Open(ctx, cluster.ListenAddrs(), kafka.WithPartitions(4))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(ctx)

	done := make(chan struct{})
	_, err = b.Subscribe(ctx, "kitchen-service", []string{"order-events"},
		broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
			fmt.Printf("%s %s: %s\n", m.Destination(), m.PartitionKey(), m.Payload)
			if m.Header("seq") == "3" {
				close(done)
			}
			return nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		m := message.NewBuilder(fmt.Appendf(nil, "event %d", i)).
			WithPartitionKey("order-7"). // one key: one partition, in order
			WithHeader("seq", fmt.Sprint(i)).
			Build()
		if err := b.Send(ctx, "order-events", m); err != nil {
			log.Fatal(err)
		}
	}
	<-done
	// Output:
	// order-events order-7: event 1
	// order-events order-7: event 2
	// order-events order-7: event 3
}

// The settings for a production cluster: three replicas of every
// partition, of which two must have a message before Send returns.
func ExampleOpen() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := kafka.Open(ctx, cluster.ListenAddrs(),
		kafka.WithPartitions(32),
		kafka.WithReplicationFactor(3),
		kafka.WithTopicConfig("min.insync.replicas", "2"),
		kafka.WithTopicConfig("retention.ms", fmt.Sprint((7*24*time.Hour).Milliseconds())),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(ctx)
	err = b.Send(ctx, "payments", message.NewBuilder([]byte(`{"amount":12}`)).WithPartitionKey("account-1").Build())
	fmt.Println("sent:", err == nil)
	// Output:
	// sent: true
}

// A wrong address fails at Open, within its context.
func ExampleOpen_unreachable() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := kafka.Open(ctx, []string{"127.0.0.1:1"})
	fmt.Println(err != nil)
	// Output:
	// true
}
