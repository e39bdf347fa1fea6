package memory_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
)

// Two subscriber ids on one channel each receive every message
// (publish-subscribe); messages with one partition key arrive in order.
func Example() {
	ctx := context.Background()
	b, _ := memory.New()
	defer b.Close(ctx)

	var wg sync.WaitGroup
	wg.Add(4)
	var mu sync.Mutex
	got := map[string][]string{}
	record := func(subscriber string) broker.HandlerFunc {
		return func(_ context.Context, m *message.Message) error {
			mu.Lock()
			got[subscriber] = append(got[subscriber], string(m.Payload))
			mu.Unlock()
			wg.Done()
			return nil
		}
	}
	kitchen, _ := b.Subscribe(ctx, "kitchen-service", []string{"order-events"}, record("kitchen"))
	defer kitchen.Close(ctx)
	accounting, _ := b.Subscribe(ctx, "accounting-service", []string{"order-events"}, record("accounting"))
	defer accounting.Close(ctx)

	_ = b.Send(ctx, "order-events",
		message.NewBuilder([]byte("OrderCreated")).WithPartitionKey("order-1").Build(),
		message.NewBuilder([]byte("OrderApproved")).WithPartitionKey("order-1").Build())
	wg.Wait()
	fmt.Println("kitchen:", got["kitchen"])
	fmt.Println("accounting:", got["accounting"])
	// Output:
	// kitchen: [OrderCreated OrderApproved]
	// accounting: [OrderCreated OrderApproved]
}

// A message its handler cannot process goes to the subscriber's dead-letter
// channel, with headers saying why, and the consumer carries on.
func Example_deadLetter() {
	ctx := context.Background()
	b, _ := memory.New()
	defer b.Close(ctx)

	dead := make(chan *message.Message, 1)
	dlq, _ := b.Subscribe(ctx, "ops", []string{"billing.dead-letter"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		dead <- m
		return nil
	}))
	defer dlq.Close(ctx)

	sub, _ := b.Subscribe(ctx, "billing", []string{"payments"}, broker.HandlerFunc(func(context.Context, *message.Message) error {
		return errors.New("card declined")
	}), broker.WithMaxAttempts(3), broker.WithBackoff(broker.ConstantBackoff(time.Millisecond)))
	defer sub.Close(ctx)

	_ = b.Send(ctx, "payments", message.New([]byte(`{"amount":42}`)))
	m := <-dead
	fmt.Println(string(m.Payload))
	fmt.Println(m.Header(message.HeaderDeadLetterReason), "after", m.Header(message.HeaderDeadLetterAttempts), "attempts on", m.Header(message.HeaderDeadLetterChannel))
	// Output:
	// {"amount":42}
	// card declined after 3 attempts on payments
}

// A subscriber id whose handler does not depend on order asks for
// concurrent delivery: here up to 4 messages of one partition key are
// handled at once, which ordered delivery would hand over one at a time.
func Example_concurrentDelivery() {
	ctx := context.Background()
	b, _ := memory.New()
	defer b.Close(ctx)

	var mu sync.Mutex
	inFlight, most := 0, 0
	var wg sync.WaitGroup
	wg.Add(8)
	release := make(chan struct{})
	var reached sync.Once
	sub, _ := b.Subscribe(ctx, "mailer", []string{"order-events"},
		broker.HandlerFunc(func(context.Context, *message.Message) error {
			defer wg.Done()
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			if inFlight == 4 { // the limit is reached: let them all finish
				reached.Do(func() { close(release) })
			}
			mu.Unlock()
			<-release
			mu.Lock()
			inFlight--
			mu.Unlock()
			return nil
		}),
		broker.WithConcurrentDelivery(4))
	defer sub.Close(ctx)

	for i := range 8 {
		_ = b.Send(ctx, "order-events",
			message.NewBuilder([]byte(fmt.Sprint("email ", i))).WithPartitionKey("customer-1").Build())
	}
	wg.Wait()
	fmt.Println("most handlers in flight at once:", most)
	// Output:
	// most handlers in flight at once: 4
}
