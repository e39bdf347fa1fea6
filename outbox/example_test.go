package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// An order and its OrderCreated event are written in one transaction; the
// relay publishes the event once the transaction has committed.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "courier-outbox")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "orders.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	defer db.Close()
	if err := sqldb.Migrate(ctx, db, sqldb.SQLite); err != nil {
		fmt.Println(err)
		return
	}
	db.ExecContext(ctx, "CREATE TABLE orders (id TEXT PRIMARY KEY, state TEXT)")

	b, _ := memory.New()
	defer b.Close(context.Background())
	received := make(chan *message.Message, 1)
	sub, _ := b.Subscribe(ctx, "kitchen-service", []string{"order-events"}, broker.HandlerFunc(
		func(_ context.Context, m *message.Message) error { received <- m; return nil }))
	defer sub.Close(context.Background())

	relay, _ := outbox.NewRelay(db, sqldb.SQLite, b)
	done := make(chan error)
	go func() { done <- relay.Run(ctx) }()

	// The business transaction.
	w := outbox.NewWriter(sqldb.SQLite)
	tx, _ := db.BeginTx(ctx, nil)
	tx.ExecContext(ctx, "INSERT INTO orders (id, state) VALUES ('o-1', 'PENDING')")
	w.Send(ctx, tx, "order-events", message.NewBuilder([]byte(`{"orderId":"o-1"}`)).
		WithPartitionKey("o-1").WithHeader(message.HeaderEventType, "OrderCreated").Build())
	tx.Commit()

	m := <-received
	fmt.Println(m.Header(message.HeaderEventType), string(m.Payload))
	cancel()
	fmt.Println("relay stopped:", <-done)
	// Output:
	// OrderCreated {"orderId":"o-1"}
	// relay stopped: <nil>
}
