package kafka_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/message"
)

// A Broker in Eventuate Tram's format writes the records a Java service on
// Eventuate reads: the JSON envelope as the value and the partition key as
// the key.
func ExampleWithEventuateFormat() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := kafka.Open(ctx, cluster.ListenAddrs(), kafka.WithEventuateFormat())
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(ctx)
	m := message.NewBuilder([]byte(`{"orderId":4}`)).
		WithID("0000018c39a0b5e2-0242ac1200050000").
		WithPartitionKey("4").
		WithHeader(message.HeaderDate, "Tue, 5 Dec 2023 10:15:30 GMT").
		WithHeader(message.HeaderEventType, "com.example.OrderCreated").
		Build()
	if err := b.Send(ctx, "com.example.Order", m); err != nil {
		log.Fatal(err)
	}

	// What Eventuate's consumer reads.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("com.example.Order"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	r := cl.PollFetches(ctx).Records()[0]
	fmt.Printf("key %s\n%s\n", r.Key, r.Value)
	// Output:
	// key 4
	// {"payload":"{\"orderId\":4}","headers":{"PARTITION_ID":"4","DATE":"Tue, 5 Dec 2023 10:15:30 GMT","event-type":"com.example.OrderCreated","DESTINATION":"com.example.Order","ID":"0000018c39a0b5e2-0242ac1200050000"}}
}
