package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/deadletter"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
)

// A handler gives up on a message; List shows it, Replay sends it back to
// its channel with a new ID once the handler can take it.
func Example() {
	ctx := context.Background()
	b, _ := memory.New()
	defer b.Close(ctx)

	got := make(chan *message.Message, 1)
	ready := false
	sub, _ := b.Subscribe(ctx, "billing", []string{"orders"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		if !ready {
			return broker.Permanent(errors.New("unknown currency"))
		}
		got <- m
		return nil
	}))
	defer sub.Close(ctx)

	_ = b.Send(ctx, "orders", &message.Message{ID: "order-1", Payload: []byte(`{"total":12}`)})
	var letters []deadletter.Letter
	for len(letters) == 0 {
		time.Sleep(10 * time.Millisecond)
		letters, _ = deadletter.List(ctx, b, deadletter.Channel("billing"), deadletter.Filter{})
	}
	l := letters[0]
	fmt.Printf("%s from %s after %d attempt: %s\n", l.ID, l.Channel, l.Attempts, l.Reason)

	ready = true // the handler is fixed
	res, _ := deadletter.Replay(ctx, b, deadletter.Channel("billing"), deadletter.Filter{IDs: []string{"order-1"}})
	m := <-got
	fmt.Println("replayed:", len(res.Replayed), "removed:", res.Removed)
	fmt.Println("new id:", m.ID != "order-1", "replay_of:", m.Headers.Get(message.HeaderReplayOf), "payload:", string(m.Payload))
	// Output:
	// order-1 from orders after 1 attempt: unknown currency
	// replayed: 1 removed: 1
	// new id: true replay_of: order-1 payload: {"total":12}
}
