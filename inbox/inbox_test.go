package inbox_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/inbox"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testnet"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// account is the business data of the tests: a balance credited once per
// payment message.
func setUp(t *testing.T, db *testdb.DB) {
	t.Helper()
	if _, err := db.Exec("CREATE TABLE account (id VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO account (id, balance) VALUES ('acc-1', 0)"); err != nil {
		t.Fatal(err)
	}
}

func credit(db *testdb.DB) inbox.TxHandler {
	return func(ctx context.Context, tx *sql.Tx, m *message.Message) error {
		_, err := tx.ExecContext(ctx, db.Dialect.Rebind("UPDATE account SET balance = balance + ? WHERE id = 'acc-1'"), len(m.Payload))
		return err
	}
}

func balance(t *testing.T, db *testdb.DB) int {
	t.Helper()
	var b int
	if err := db.QueryRow("SELECT balance FROM account WHERE id = 'acc-1'").Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDuplicateDeliveryChangesDataOnce(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			setUp(t, db)
			var dups atomic.Int32
			ib := inbox.New(db.DB, d, inbox.WithConsumerID("accounting"),
				inbox.OnDuplicate(func(context.Context, *message.Message) { dups.Add(1) }))
			h := ib.Handler(credit(db))
			m := message.New([]byte("12345")) // credits 5
			ctx := context.Background()
			for range 3 {
				if err := h.HandleMessage(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			if got := balance(t, db); got != 5 {
				t.Fatalf("balance = %d after three deliveries of one message, want 5", got)
			}
			if dups.Load() != 2 {
				t.Fatalf("%d duplicates reported, want 2", dups.Load())
			}
			// Another consumer id handles the same message on its own.
			if err := inbox.New(db.DB, d, inbox.WithConsumerID("audit")).Handler(credit(db)).HandleMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
			if got := balance(t, db); got != 10 {
				t.Fatalf("balance = %d, want 10 after a second consumer", got)
			}
		})
	}
}

func TestConcurrentDuplicatesChangeDataOnce(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			setUp(t, db)
			h := inbox.New(db.DB, d, inbox.WithConsumerID("accounting")).Handler(credit(db))
			msgs := make([]*message.Message, 20)
			for i := range msgs {
				msgs[i] = message.New([]byte("x"))
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4*len(msgs))
			for range 4 { // four instances receive every message
				wg.Go(func() {
					for _, m := range msgs {
						if err := h.HandleMessage(context.Background(), m); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				// A deadlock victim or a busy database is retried by
				// the broker; the balance must still be right.
				t.Logf("retryable: %v", err)
			}
			for _, m := range msgs { // the broker's retry of any failed attempt
				if err := h.HandleMessage(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			if got := balance(t, db); got != len(msgs) {
				t.Fatalf("balance = %d, want %d", got, len(msgs))
			}
		})
	}
}

func TestHandlerErrorRollsBackTheRecord(t *testing.T) {
	db := testdb.SQLite(t)
	setUp(t, db)
	fail := true
	ib := inbox.New(db.DB, db.Dialect, inbox.WithConsumerID("accounting"))
	h := ib.Handler(func(ctx context.Context, tx *sql.Tx, m *message.Message) error {
		if err := credit(db)(ctx, tx, m); err != nil {
			return err
		}
		if fail {
			return errors.New("downstream check failed")
		}
		return nil
	})
	m := message.New([]byte("abc"))
	if err := h.HandleMessage(context.Background(), m); err == nil {
		t.Fatal("handler error swallowed")
	}
	if got := balance(t, db); got != 0 {
		t.Fatalf("balance = %d after a failed attempt, want 0", got)
	}
	fail = false
	if err := h.HandleMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := balance(t, db); got != 3 {
		t.Fatalf("balance = %d after the retry, want 3", got)
	}
}

func TestConsumerIDComesFromTheDelivery(t *testing.T) {
	db := testdb.SQLite(t)
	setUp(t, db)
	b, _ := memory.New()
	defer b.Close(context.Background())
	ib := inbox.New(db.DB, db.Dialect)
	done := make(chan struct{}, 2)
	inner := credit(db)
	sub, err := b.Subscribe(context.Background(), "accounting-service", []string{"payments"},
		ib.Handler(func(ctx context.Context, tx *sql.Tx, m *message.Message) error {
			defer func() { done <- struct{}{} }()
			return inner(ctx, tx, m)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	m := message.New([]byte("abcd"))
	b.Send(context.Background(), "payments", m)
	b.Send(context.Background(), "payments", &message.Message{ID: m.ID, Payload: m.Payload}) // the broker redelivers
	<-done
	time.Sleep(50 * time.Millisecond)
	if got := balance(t, db); got != 4 {
		t.Fatalf("balance = %d, want 4", got)
	}
	var consumer string
	db.QueryRow("SELECT consumer_id FROM received_messages").Scan(&consumer)
	if consumer != "accounting-service" {
		t.Fatalf("consumer id = %q", consumer)
	}
	if err := ib.Handle(context.Background(), message.New(nil), inner); !errors.Is(err, inbox.ErrNoConsumerID) || !broker.IsPermanent(err) {
		t.Fatalf("outside a delivery: %v", err)
	}
}

func TestPurgeRemovesOldRows(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			setUp(t, db)
			ib := inbox.New(db.DB, d, inbox.WithConsumerID("c"))
			h := ib.Handler(credit(db))
			old := message.New([]byte("x"))
			if err := h.HandleMessage(context.Background(), old); err != nil {
				t.Fatal(err)
			}
			db.Exec(d.Rebind("UPDATE received_messages SET creation_time = ?"), time.Now().Add(-48*time.Hour).UnixMilli())
			if err := h.HandleMessage(context.Background(), message.New([]byte("y"))); err != nil {
				t.Fatal(err)
			}
			n, err := ib.Purge(context.Background(), 24*time.Hour)
			if err != nil || n != 1 {
				t.Fatalf("Purge = %d, %v; want 1 row", n, err)
			}
		})
	}
}

// TestUnreachableDatabaseIsUnavailable: with the real drivers, an inbox
// whose database cannot be reached fails with an error marked
// broker.Unavailable, which the subscription retries without spending
// attempts; an error of the handler's own is not marked.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	closed := testnet.ClosedPort(t)
	for _, tc := range []struct {
		dialect *sqldb.Dialect
		driver  string
		dsn     string
	}{
		{sqldb.Postgres, "pgx", "postgres://courier:courier@" + closed + "/courier?sslmode=disable&connect_timeout=2"},
		{sqldb.MySQL, "mysql", "courier:courier@tcp(" + closed + ")/courier?timeout=2s"},
	} {
		t.Run(tc.dialect.Name(), func(t *testing.T) {
			db, err := sql.Open(tc.driver, tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ib := inbox.New(db, tc.dialect, inbox.WithConsumerID("svc"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = ib.Handle(ctx, message.New(nil), func(context.Context, *sql.Tx, *message.Message) error { return nil })
			if !broker.IsUnavailable(err) {
				t.Fatalf("Handle with the database down = %v, not marked unavailable", err)
			}
		})
	}
	db := testdb.Open(t, sqldb.SQLite)
	ib := inbox.New(db.DB, db.Dialect, inbox.WithConsumerID("svc"))
	refused := errors.New("insufficient credit")
	err := ib.Handle(context.Background(), message.New(nil), func(context.Context, *sql.Tx, *message.Message) error { return refused })
	if !errors.Is(err, refused) || broker.IsUnavailable(err) {
		t.Fatalf("a handler's own error = %v, marked unavailable: %v", err, broker.IsUnavailable(err))
	}
}
