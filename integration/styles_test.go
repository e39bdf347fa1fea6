package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/events"
)

// The types two services exchange.
type (
	ReserveCredit struct {
		OrderID string `json:"orderId"`
		Amount  int    `json:"amount"`
	}
	CreditReserved struct {
		ReservationID string `json:"reservationId"`
	}
	InsufficientCredit struct {
		Available int `json:"available"`
	}
	NotifyCustomer struct {
		Text string `json:"text"`
	}
	RequestQuote struct {
		Distance int `json:"distance"`
	}
	Quote struct {
		Courier string `json:"courier"`
		Price   int    `json:"price"`
	}
	OrderCreated struct {
		Total int `json:"total"`
	}
	OrderCancelled struct{}
)

// ReplyType of InsufficientCredit is set explicitly, as a Java service
// would name it.
func (InsufficientCredit) ReplyType() string { return "net.example.accounting.InsufficientCredit" }

type brokerFactory func(t *testing.T) broker.Broker

func newMemory(t *testing.T) broker.Broker {
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func quiet() broker.SubscribeOption {
	return broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestInteractionStylesOverMemory(t *testing.T) { runStyles(t, newMemory) }

// runStyles runs every interaction style over brokers from newBroker.
func runStyles(t *testing.T, newBroker brokerFactory) {
	t.Run("RequestResponse", func(t *testing.T) { testRequestResponse(t, newBroker(t)) })
	t.Run("AsyncRequestResponse", func(t *testing.T) { testAsyncRequestResponse(t, newBroker(t)) })
	t.Run("OneWayNotification", func(t *testing.T) { testOneWay(t, newBroker(t)) })
	t.Run("PublishSubscribe", func(t *testing.T) { testPublishSubscribe(t, newBroker(t)) })
	t.Run("PublishAsyncResponses", func(t *testing.T) { testPublishAsyncResponses(t, newBroker(t)) })
}

func closeAll(t *testing.T, b broker.Broker, subs ...broker.Subscription) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, s := range subs {
			s.Close(ctx)
		}
		b.Close(ctx)
	})
}

// accounting returns the command dispatcher of an accounting service with
// 100 of credit.
func accounting(b broker.Broker) *commands.Dispatcher {
	d := commands.NewDispatcher(b, commands.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	var mu sync.Mutex
	available := 100
	commands.Handle(d, func(ctx context.Context, c commands.Command[ReserveCredit]) (commands.Reply, error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case c.Payload.Amount < 0:
			return commands.Reply{}, errors.New("negative amount")
		case c.Payload.Amount == 13:
			panic("unlucky amount")
		case c.Payload.Amount > available:
			return commands.Failure(InsufficientCredit{Available: available}), nil
		}
		available -= c.Payload.Amount
		return commands.Success(CreditReserved{ReservationID: "r-" + c.Payload.OrderID}), nil
	})
	return d
}

func testRequestResponse(t *testing.T, b broker.Broker) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := accounting(b).Subscribe(ctx, b, "accounting-service", "accounting-commands", quiet())
	if err != nil {
		t.Fatal(err)
	}
	caller, err := commands.NewCaller(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, b, sub, caller)

	got, err := commands.Call[CreditReserved](ctx, caller, "accounting-commands", ReserveCredit{OrderID: "o-1", Amount: 60})
	if err != nil || got.ReservationID != "r-o-1" {
		t.Fatalf("Call = %+v, %v", got, err)
	}
	_, err = commands.Call[CreditReserved](ctx, caller, "accounting-commands", ReserveCredit{OrderID: "o-2", Amount: 60})
	if f, ok := commands.As[InsufficientCredit](err); !ok || f.Available != 40 {
		t.Fatalf("over-budget Call = %v; want an InsufficientCredit failure with 40 available", err)
	}
	for _, amount := range []int{-1, 13} { // an error and a panic
		_, err = commands.Call[CreditReserved](ctx, caller, "accounting-commands", ReserveCredit{OrderID: "o-3", Amount: amount})
		if f, ok := commands.As[commands.HandlerFailure](err); !ok || f.Error == "" {
			t.Fatalf("Call with amount %d = %v; want a HandlerFailure reply", amount, err)
		}
	}
	// Nobody answers on this channel: the deadline ends the call.
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := commands.Call[CreditReserved](short, caller, "nobody-listens", ReserveCredit{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered Call = %v", err)
	}
	// Concurrent calls are correlated to their own replies.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			id := fmt.Sprint("c-", i)
			r, err := commands.Call[CreditReserved](ctx, caller, "accounting-commands", ReserveCredit{OrderID: id, Amount: 1})
			if err != nil || r.ReservationID != "r-"+id {
				errs <- fmt.Errorf("call %d: %+v %v", i, r, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testAsyncRequestResponse(t *testing.T, b broker.Broker) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acct, err := accounting(b).Subscribe(ctx, b, "accounting-service", "accounting-commands", quiet())
	if err != nil {
		t.Fatal(err)
	}
	// The order service handles replies whenever they come, correlated by
	// the command id it kept and by the echoed command headers.
	type outcome struct {
		inReplyTo, order, result string
	}
	results := make(chan outcome, 4)
	rd := commands.NewReplyDispatcher()
	commands.OnReply(rd, func(_ context.Context, r commands.ReplyMessage, v CreditReserved) error {
		results <- outcome{r.InReplyTo(), r.Header("commandreply_order_id"), "reserved " + v.ReservationID}
		return nil
	})
	commands.OnReply(rd, func(_ context.Context, r commands.ReplyMessage, v InsufficientCredit) error {
		results <- outcome{r.InReplyTo(), r.Header("commandreply_order_id"), fmt.Sprint("insufficient, ", v.Available, " left")}
		return nil
	})
	replies, err := b.Subscribe(ctx, "order-service", []string{"order-service.replies"}, rd, quiet())
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, b, acct, replies)

	p := commands.NewProducer(b)
	sent := map[string]string{}
	for _, o := range []struct {
		id     string
		amount int
	}{{"o-1", 70}, {"o-2", 70}} {
		id, err := p.Send(ctx, "accounting-commands", ReserveCredit{OrderID: o.id, Amount: o.amount},
			commands.ReplyTo("order-service.replies"), commands.WithHeader("order_id", o.id), commands.WithPartitionKey("customer-1"))
		if err != nil {
			t.Fatal(err)
		}
		sent[id] = o.id
	}
	want := map[string]string{"o-1": "reserved r-o-1", "o-2": "insufficient, 30 left"}
	for range 2 {
		select {
		case r := <-results:
			if sent[r.inReplyTo] != r.order || want[r.order] != r.result {
				t.Fatalf("reply %+v does not match what was sent (%v)", r, sent)
			}
		case <-ctx.Done():
			t.Fatal("replies never came")
		}
	}
}

func testOneWay(t *testing.T, b broker.Broker) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan string, 1)
	d := commands.NewDispatcher(b)
	commands.Handle(d, func(_ context.Context, c commands.Command[NotifyCustomer]) (commands.Reply, error) {
		if _, ok := c.ReplyTarget(); ok {
			t.Error("a one-way notification has a reply target")
		}
		got <- c.Payload.Text
		return commands.Success(nil), nil // ignored: nobody to reply to
	})
	sub, err := d.Subscribe(ctx, b, "notification-service", "notifications", quiet())
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, b, sub)
	if _, err := commands.NewProducer(b).Send(ctx, "notifications", NotifyCustomer{Text: "your order is on its way"}); err != nil {
		t.Fatal(err)
	}
	select {
	case text := <-got:
		if text != "your order is on its way" {
			t.Fatalf("got %q", text)
		}
	case <-ctx.Done():
		t.Fatal("notification never handled")
	}
}

func testPublishSubscribe(t *testing.T, b broker.Broker) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type seen struct {
		mu     sync.Mutex
		events []string
	}
	subscriber := func(name string, s *seen) broker.Subscription {
		d := events.NewDispatcher()
		events.On(d, "Order", func(_ context.Context, e events.Event[OrderCreated]) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.events = append(s.events, fmt.Sprintf("%s created %d", e.AggregateID, e.Payload.Total))
			return nil
		})
		events.On(d, "Order", func(_ context.Context, e events.Event[OrderCancelled]) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.events = append(s.events, e.AggregateID+" cancelled")
			return nil
		})
		sub, err := d.Subscribe(ctx, b, name, quiet())
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	var kitchen, accounting seen
	s1, s2 := subscriber("kitchen-service", &kitchen), subscriber("accounting-service", &accounting)
	closeAll(t, b, s1, s2)
	pub := events.NewPublisher(b)
	if err := pub.Publish(ctx, "Order", "o-1", OrderCreated{Total: 12}, OrderCancelled{}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "Order", "o-2", OrderCreated{Total: 30}); err != nil {
		t.Fatal(err)
	}
	want := []string{"o-1 cancelled", "o-1 created 12", "o-2 created 30"}
	for _, s := range []*seen{&kitchen, &accounting} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			s.mu.Lock()
			got := append([]string(nil), s.events...)
			s.mu.Unlock()
			if len(got) == len(want) {
				if slices.Index(got, "o-1 created 12") > slices.Index(got, "o-1 cancelled") {
					t.Fatalf("events of o-1 out of order: %v", got)
				}
				sort.Strings(got)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("got %v, want %v", got, want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("got %v, want %v", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func testPublishAsyncResponses(t *testing.T, b broker.Broker) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var subs []broker.Subscription
	for i, name := range []string{"fast-couriers", "cheap-couriers", "bike-couriers"} {
		d := commands.NewDispatcher(b)
		commands.Handle(d, func(_ context.Context, c commands.Command[RequestQuote]) (commands.Reply, error) {
			return commands.Success(Quote{Courier: name, Price: c.Payload.Distance * (i + 1)}), nil
		})
		sub, err := d.Subscribe(ctx, b, name, "quote-requests", quiet())
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	caller, err := commands.NewCaller(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, b, append(subs, caller)...)

	replies, err := caller.Gather(ctx, "quote-requests", RequestQuote{Distance: 5}, 3)
	if err != nil || len(replies) != 3 {
		t.Fatalf("Gather = %d replies, %v", len(replies), err)
	}
	var quotes []string
	for _, r := range replies {
		q, err := commands.DecodeReply[Quote](r)
		if err != nil {
			t.Fatal(err)
		}
		quotes = append(quotes, fmt.Sprintf("%s:%d", q.Courier, q.Price))
	}
	sort.Strings(quotes)
	if fmt.Sprint(quotes) != "[bike-couriers:15 cheap-couriers:10 fast-couriers:5]" {
		t.Fatalf("quotes = %v", quotes)
	}
	// Asking for more replies than there are responders ends at the
	// deadline with those that came.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	replies, err = caller.Gather(short, "quote-requests", RequestQuote{Distance: 1}, 5)
	if err != nil || len(replies) != 3 {
		t.Fatalf("Gather until the deadline = %d replies, %v", len(replies), err)
	}
}
