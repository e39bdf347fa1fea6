package inbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/courier-go/courier/inbox"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// A payment message delivered twice credits the account once.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "courier-inbox")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "accounting.db")+"?_txlock=immediate")
	defer db.Close()
	sqldb.Migrate(ctx, db, sqldb.SQLite)
	db.ExecContext(ctx, "CREATE TABLE account (id TEXT PRIMARY KEY, balance INTEGER)")
	db.ExecContext(ctx, "INSERT INTO account VALUES ('acc-1', 0)")

	h := inbox.New(db, sqldb.SQLite, inbox.WithConsumerID("accounting-service")).Handler(
		func(ctx context.Context, tx *sql.Tx, m *message.Message) error {
			_, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + 10 WHERE id = 'acc-1'")
			return err
		})
	payment := message.New([]byte(`{"amount":10}`))
	h.HandleMessage(ctx, payment)
	h.HandleMessage(ctx, payment) // redelivered

	var balance int
	db.QueryRowContext(ctx, "SELECT balance FROM account WHERE id = 'acc-1'").Scan(&balance)
	fmt.Println("balance:", balance)
	// Output: balance: 10
}
