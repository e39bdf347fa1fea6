package couriertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/couriertest"
	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/message"
)

type OrderCreated struct{ Total int }

type ApproveOrder struct{ OrderID string }

type OrderApproved struct{ OrderID string }

// A service under test: it publishes an event and answers commands.
func TestHarnessRecordsEventsCommandsAndReplies(t *testing.T) {
	ctx := context.Background()
	b := couriertest.NewBroker(t)

	d := commands.NewDispatcher(b)
	commands.Handle(d, func(_ context.Context, c commands.Command[ApproveOrder]) (commands.Reply, error) {
		return commands.Success(OrderApproved(c.Payload)), nil
	})
	sub, err := d.Subscribe(ctx, b, "order-service", "order-commands")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)

	if err := events.NewPublisher(b).Publish(ctx, "Order", "o-1", OrderCreated{Total: 9}); err != nil {
		t.Fatal(err)
	}
	if got := couriertest.EventPublished[OrderCreated](t, b, "Order", "o-1"); got.Total != 9 {
		t.Fatalf("event = %+v", got)
	}

	id, err := commands.NewProducer(b).Send(ctx, "order-commands", ApproveOrder{OrderID: "o-1"}, commands.ReplyTo("saga.replies"))
	if err != nil {
		t.Fatal(err)
	}
	cmd, m := couriertest.CommandSent[ApproveOrder](t, b, "order-commands")
	if cmd.OrderID != "o-1" || m.ID != id {
		t.Fatalf("command = %+v %s", cmd, m.ID)
	}
	if r := couriertest.ReplySent[OrderApproved](t, b, id, message.ReplyOutcomeSuccess); r.OrderID != "o-1" {
		t.Fatalf("reply = %+v", r)
	}
	couriertest.NothingSentTo(t, b, "Ticket")
}

func TestRecorderWithoutBroker(t *testing.T) {
	var r couriertest.Recorder
	if err := events.NewPublisher(&r).Publish(context.Background(), "Order", "o-2", OrderCreated{Total: 1}); err != nil {
		t.Fatal(err)
	}
	if len(r.Sent()) != 1 || r.Sent()[0].Message.ID == "" {
		t.Fatalf("sent = %+v", r.Sent())
	}
	if err := r.Send(context.Background(), "bad channel", message.New(nil)); err == nil {
		t.Fatal("an invalid send was recorded")
	}
	r.Reset()
	if len(r.Sent()) != 0 {
		t.Fatal("Reset kept messages")
	}
}

// fakeT captures a failed assertion instead of failing the real test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestMissingEventFailsWithWhatWasSent(t *testing.T) {
	var r couriertest.Recorder
	events.NewPublisher(&r).Publish(context.Background(), "Order", "o-3", OrderCreated{})
	old := couriertest.Wait
	couriertest.Wait = 0
	defer func() { couriertest.Wait = old }()
	f := &fakeT{TB: t}
	func() {
		defer func() { recover() }()
		couriertest.EventPublished[OrderCreated](f, &r, "Order", "o-404")
	}()
	if f.failed == "" {
		t.Fatal("a missing event did not fail the assertion")
	}
}

func TestReceivedWaits(t *testing.T) {
	b := couriertest.NewBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got couriertest.Received
	sub, err := b.Subscribe(ctx, "kitchen", []string{"orders"}, &got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	// One partition key: the broker keeps the order of a key's messages
	// only.
	first := message.NewBuilder([]byte("a")).WithPartitionKey("o-1").Build()
	second := message.NewBuilder([]byte("b")).WithPartitionKey("o-1").Build()
	if err := b.Send(ctx, "orders", first, second); err != nil {
		t.Fatal(err)
	}
	msgs := got.Wait(t, 2, 5*time.Second)
	if len(msgs) != 2 || msgs[0].ID != first.ID || msgs[1].ID != second.ID {
		t.Fatalf("received %v", msgs)
	}
}
