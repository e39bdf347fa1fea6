package natsjs_test

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/message"
)

// A service runs the embedded server and sends and consumes through it;
// messages with one partition key arrive in order.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "courier-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	srv, err := embedded.Start(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(ctx)
	b, err := srv.Broker(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close(ctx)

	var wg sync.WaitGroup
	wg.Add(2)
	var mu sync.Mutex
	var got []string
	sub, err := b.Subscribe(ctx, "kitchen-service", []string{"order-events"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		mu.Lock()
		got = append(got, string(m.Payload))
		mu.Unlock()
		wg.Done()
		return nil
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close(ctx)

	err = b.Send(ctx, "order-events",
		message.NewBuilder([]byte("OrderCreated")).WithPartitionKey("order-1").Build(),
		message.NewBuilder([]byte("OrderApproved")).WithPartitionKey("order-1").Build())
	if err != nil {
		fmt.Println(err)
		return
	}
	wg.Wait()
	fmt.Println(got)
	// Output: [OrderCreated OrderApproved]
}

// Messages outlive the server: those sent while a subscriber id had no
// instance running are delivered when it subscribes again, even after the
// embedded server restarted on the same directory.
func Example_durable() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "courier-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// run starts the server on dir and calls f with a broker on it.
	run := func(f func(b *natsjs.Broker) error) error {
		srv, err := embedded.Start(ctx, dir)
		if err != nil {
			return err
		}
		defer srv.Shutdown(ctx)
		b, err := srv.Broker(ctx)
		if err != nil {
			return err
		}
		defer b.Close(ctx)
		return f(b)
	}
	ignore := broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })

	err = run(func(b *natsjs.Broker) error {
		// The first Subscribe creates the subscriber id's consumers.
		sub, err := b.Subscribe(ctx, "billing", []string{"payments"}, ignore)
		if err != nil {
			return err
		}
		if err := sub.Close(ctx); err != nil {
			return err
		}
		return b.Send(ctx, "payments", message.New([]byte("payment-1")), message.New([]byte("payment-2")))
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	err = run(func(b *natsjs.Broker) error {
		got := make(chan string, 2)
		sub, err := b.Subscribe(ctx, "billing", []string{"payments"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
			got <- string(m.Payload)
			return nil
		}))
		if err != nil {
			return err
		}
		defer sub.Close(ctx)
		a, b2 := <-got, <-got
		if a > b2 { // the two messages may be on different shards
			a, b2 = b2, a
		}
		fmt.Println(a, b2)
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output: payment-1 payment-2
}

// A process that alone reads a channel whose messages matter only while it
// runs, such as replies to its own requests, subscribes with
// broker.WithEphemeral: its consumer lives in the server's memory, needs no
// acknowledgements and is gone when the subscription closes.
func Example_ephemeral() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "courier-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	srv, err := embedded.Start(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(ctx)
	b, err := srv.Broker(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close(ctx)

	got := make(chan string, 1)
	const replies = "ordering-service.replies.instance-1"
	sub, err := b.Subscribe(ctx, replies, []string{replies}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		got <- string(m.Payload)
		return nil
	}), broker.WithEphemeral())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close(ctx)

	if err := b.Send(ctx, replies, message.New([]byte("credit reserved"))); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output: credit reserved
}

// A channel that has served its purpose is removed with its messages; a
// later Send would create it again.
func ExampleBroker_RemoveChannel() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "courier-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	srv, err := embedded.Start(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(ctx)
	b, err := srv.Broker(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close(ctx)

	if err := b.Send(ctx, "import.batch-42", message.New([]byte("row 1"))); err != nil {
		fmt.Println(err)
		return
	}
	var remover broker.ChannelRemover = b
	fmt.Println(remover.RemoveChannel(ctx, "import.batch-42"))
	fmt.Println(remover.RemoveChannel(ctx, "import.batch-42")) // already gone: not an error
	// Output:
	// <nil>
	// <nil>
}
