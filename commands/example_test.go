package commands_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"

	_ "modernc.org/sqlite"

	"github.com/courier-go/courier/apispec"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/inbox"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

type ReserveCredit struct {
	OrderID string
	Amount  int
}

type CreditReserved struct{ ReservationID string }

type InsufficientCredit struct{ Available int }

// accountingService handles ReserveCredit commands on "accounting".
func accountingService(ctx context.Context, b *memory.Broker) func() {
	d := commands.NewDispatcher(b)
	commands.Handle(d, func(_ context.Context, c commands.Command[ReserveCredit]) (commands.Reply, error) {
		if c.Payload.Amount > 100 {
			return commands.Failure(InsufficientCredit{Available: 100}), nil
		}
		return commands.Success(CreditReserved{ReservationID: "r-" + c.Payload.OrderID}), nil
	})
	sub, _ := d.Subscribe(ctx, b, "accounting-service", "accounting")
	return func() { sub.Close(ctx) }
}

// Request/response over messaging: Call blocks until the correlated reply
// arrives or the context ends.
func ExampleCall() {
	ctx := context.Background()
	b, _ := memory.New()
	defer b.Close(ctx)
	defer accountingService(ctx, b)()

	caller, _ := commands.NewCaller(ctx, b, "order-service.replies.1")
	defer caller.Close(ctx)

	r, err := commands.Call[CreditReserved](ctx, caller, "accounting", ReserveCredit{OrderID: "o-1", Amount: 30})
	fmt.Println(r.ReservationID, err)

	_, err = commands.Call[CreditReserved](ctx, caller, "accounting", ReserveCredit{OrderID: "o-2", Amount: 300})
	if f, ok := commands.As[InsufficientCredit](err); ok {
		fmt.Println("refused, available:", f.Available)
	}
	// Output:
	// r-o-1 <nil>
	// refused, available: 100
}

// Asynchronous request/response: the sender goes on at once and handles the
// reply whenever it comes, matched by the command's message id.
func ExampleProducer_Send() {
	ctx := context.Background()
	b, _ := memory.New()
	defer b.Close(ctx)
	defer accountingService(ctx, b)()

	done := make(chan string)
	rd := commands.NewReplyDispatcher()
	commands.OnReply(rd, func(_ context.Context, r commands.ReplyMessage, v CreditReserved) error {
		done <- fmt.Sprintf("order %s: %s", r.Header("commandreply_order_id"), v.ReservationID)
		return nil
	})
	sub, _ := b.Subscribe(ctx, "order-service", []string{"order-service.replies"}, rd)
	defer sub.Close(ctx)

	p := commands.NewProducer(b)
	p.Send(ctx, "accounting", ReserveCredit{OrderID: "o-7", Amount: 10},
		commands.ReplyTo("order-service.replies"), commands.WithHeader("order_id", "o-7"))
	fmt.Println(<-done)
	// Output: order o-7: r-o-7
}

type NotifyCustomer struct{ Text string }

// One-way notification: a command without a reply channel.
func ExampleProducer_Send_oneWayNotification() {
	ctx := context.Background()
	b, _ := memory.New()
	defer b.Close(ctx)

	got := make(chan string)
	d := commands.NewDispatcher(b)
	commands.Handle(d, func(_ context.Context, c commands.Command[NotifyCustomer]) (commands.Reply, error) {
		got <- c.Payload.Text
		return commands.Success(nil), nil // nobody waits for it: not sent
	})
	sub, _ := d.Subscribe(ctx, b, "notification-service", "notifications")
	defer sub.Close(ctx)

	commands.NewProducer(b).Send(ctx, "notifications", NotifyCustomer{Text: "Your order is on its way"})
	fmt.Println(<-got)
	// Output: Your order is on its way
}

type RequestQuote struct{ Distance int }

type Quote struct {
	Courier string
	Price   int
}

// Publish/asynchronous responses: one request on a publish-subscribe
// channel, a reply from each responder, gathered until a count or a
// deadline.
func ExampleCaller_Gather() {
	ctx := context.Background()
	b, _ := memory.New()
	defer b.Close(ctx)
	for i, name := range []string{"bikes", "vans", "drones"} {
		d := commands.NewDispatcher(b)
		commands.Handle(d, func(_ context.Context, c commands.Command[RequestQuote]) (commands.Reply, error) {
			return commands.Success(Quote{Courier: name, Price: c.Payload.Distance * (i + 2)}), nil
		})
		sub, _ := d.Subscribe(ctx, b, name, "quote-requests") // one subscriber id each: every one gets the request
		defer sub.Close(ctx)
	}
	caller, _ := commands.NewCaller(ctx, b, "")
	defer caller.Close(ctx)

	replies, _ := caller.Gather(ctx, "quote-requests", RequestQuote{Distance: 3}, 3)
	var quotes []string
	for _, r := range replies {
		q, _ := commands.DecodeReply[Quote](r)
		quotes = append(quotes, fmt.Sprintf("%s=%d", q.Courier, q.Price))
	}
	sort.Strings(quotes)
	fmt.Println(quotes)
	// Output: [bikes=6 drones=12 vans=9]
}

// One transaction per message: the inbox opens a transaction for each
// command, the handler changes its data and publishes an event in it, and
// the dispatcher writes the reply in it through the outbox, so that all of
// it, and the inbox's record of the command, commit together or not at
// all. A redelivered command changes and sends nothing again. A relay
// (outbox.Relay) publishes the committed messages.
func ExampleDispatcher_HandleTx() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "courier-seam")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "accounting.db")+"?_txlock=immediate")
	defer db.Close()
	sqldb.Migrate(ctx, db, sqldb.SQLite)
	db.ExecContext(ctx, "CREATE TABLE account (id TEXT PRIMARY KEY, reserved INTEGER)")
	db.ExecContext(ctx, "INSERT INTO account VALUES ('c-1', 0)")

	w := outbox.NewWriter(sqldb.SQLite)
	d := commands.NewDispatcher(nil, commands.WithOutbox(w.Producer)) // replies go through the outbox
	commands.Handle(d, func(ctx context.Context, c commands.Command[ReserveCredit]) (commands.Reply, error) {
		if _, err := c.Tx.ExecContext(ctx, "UPDATE account SET reserved = reserved + ? WHERE id = 'c-1'", c.Payload.Amount); err != nil {
			return commands.Reply{}, commands.Retryable(err)
		}
		reserved := CreditReserved{ReservationID: "r-" + c.Payload.OrderID}
		if err := events.NewPublisher(w.Producer(c.Tx)).Publish(ctx, "Account", "c-1", reserved); err != nil {
			return commands.Reply{}, commands.Retryable(err)
		}
		return commands.Success(reserved), nil
	})
	h := inbox.New(db, sqldb.SQLite, inbox.WithConsumerID("accounting-service")).Handler(d.HandleTx)
	// A service subscribes h: b.Subscribe(ctx, "accounting-service", []string{"accounting"}, h).
	// Here the command is delivered by hand, twice.
	cmd, _ := commands.NewProducer(nil).Message(ReserveCredit{OrderID: "o-1", Amount: 30}, commands.ReplyTo("order-service.replies"))
	h.HandleMessage(ctx, cmd)
	h.HandleMessage(ctx, cmd) // redelivered

	var reserved int
	db.QueryRowContext(ctx, "SELECT reserved FROM account WHERE id = 'c-1'").Scan(&reserved)
	fmt.Println("reserved:", reserved)
	rows, _ := db.QueryContext(ctx, "SELECT destination FROM message ORDER BY seq")
	defer rows.Close()
	for rows.Next() {
		var channel string
		rows.Scan(&channel)
		fmt.Println("outbox:", channel)
	}
	// Output:
	// reserved: 30
	// outbox: Account
	// outbox: order-service.replies
}

// A command dispatcher describes the commands it handles in the service's
// AsyncAPI document; the replies are declared with the channel it is
// subscribed to.
func ExampleDispatcher_HandledTypes() {
	d := commands.NewDispatcher(nil)
	commands.Handle(d, func(_ context.Context, c commands.Command[ReserveCredit]) (commands.Reply, error) {
		return commands.Success(CreditReserved{}), nil
	})
	d.HandledTypes(func(channel, typeName string, payload reflect.Type) {
		fmt.Printf("%q %s %s\n", channel, typeName, payload)
	})

	s := apispec.New("accounting-service", "1.0.0")
	s.Receives(apispec.Command, "accounting", d, apispec.Replies[CreditReserved](), apispec.Fails[InsufficientCredit]())
	_, err := s.AsyncAPI()
	fmt.Println("AsyncAPI document:", err == nil)
	// Output:
	// "" commands_test.ReserveCredit commands_test.ReserveCredit
	// AsyncAPI document: true
}
