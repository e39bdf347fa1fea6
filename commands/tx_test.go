package commands_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/couriertest"
	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/inbox"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

const orderReplies = "order-service.replies"

// accounting is a service on a database whose ReserveCredit handler, in
// the inbox's transaction, reserves credit on an account, publishes
// CreditReserved through the outbox and replies. fail, when set, decides
// how the handler ends after doing all that.
type accounting struct {
	db     *testdb.DB
	outbox *couriertest.Outbox
	h      broker.Handler
	fail   func(ctx context.Context, tx *sql.Tx) error
}

// newAccounting starts the service; withOutbox false leaves out
// WithOutbox, so that the dispatcher has nowhere to reply.
func newAccounting(t *testing.T, d *sqldb.Dialect, withOutbox bool) *accounting {
	t.Helper()
	db := testdb.Open(t, d)
	if _, err := db.Exec("CREATE TABLE account (id VARCHAR(64) PRIMARY KEY, reserved BIGINT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO account (id, reserved) VALUES ('acc-1', 0)"); err != nil {
		t.Fatal(err)
	}
	a := &accounting{db: db, outbox: couriertest.NewOutbox(t, db.DB)}
	w := outbox.NewWriter(d)
	opts := []commands.Option{quiet}
	if withOutbox {
		opts = append(opts, commands.WithOutbox(w.Producer))
	}
	disp := commands.NewDispatcher(nil, opts...)
	commands.Handle(disp, func(ctx context.Context, c commands.Command[ReserveCredit]) (commands.Reply, error) {
		if _, err := c.Tx.ExecContext(ctx, d.Rebind("UPDATE account SET reserved = reserved + ? WHERE id = 'acc-1'"), c.Payload.Amount); err != nil {
			return commands.Reply{}, commands.Retryable(err)
		}
		reserved := CreditReserved{ReservationID: "r-" + c.Payload.OrderID}
		if err := events.NewPublisher(w.Producer(c.Tx)).Publish(ctx, "Account", "acc-1", reserved); err != nil {
			return commands.Reply{}, commands.Retryable(err)
		}
		if a.fail != nil {
			if err := a.fail(ctx, c.Tx); err != nil {
				return commands.Reply{}, err
			}
		}
		return commands.Success(reserved), nil
	})
	a.h = inbox.New(db.DB, d, inbox.WithConsumerID("accounting-service")).Handler(disp.HandleTx)
	return a
}

// check asserts what the service's database holds: the credit reserved,
// and how many CreditReserved events and replies (of which outcome) are
// in the outbox.
func (a *accounting) check(t *testing.T, reserved, events, replies int, outcome string) {
	t.Helper()
	var n int
	if err := a.db.QueryRow("SELECT reserved FROM account WHERE id = 'acc-1'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != reserved {
		t.Errorf("reserved = %d, want %d", n, reserved)
	}
	if got := len(couriertest.SentTo(a.outbox, "Account")); got != events {
		t.Errorf("%d events in the outbox, want %d", got, events)
	}
	sent := couriertest.SentTo(a.outbox, orderReplies)
	if len(sent) != replies {
		t.Fatalf("%d replies in the outbox, want %d", len(sent), replies)
	}
	for _, s := range sent {
		if got := s.Message.Header(message.HeaderReplyOutcome); got != outcome {
			t.Errorf("reply outcome %s, want %s", got, outcome)
		}
	}
}

func reserveCredit(t *testing.T, opts ...commands.SendOption) *message.Message {
	t.Helper()
	m, err := commands.NewProducer(nil).Message(ReserveCredit{OrderID: "o-1", Amount: 30}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The handler's change, its event, the inbox record and the reply commit
// together, once however often the command is delivered.
func TestHandleTxCommitsTheReplyAndEventsWithTheHandler(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			a := newAccounting(t, d, true)
			cmd := reserveCredit(t, commands.ReplyTo(orderReplies))
			for range 3 { // delivered, then redelivered twice
				if err := a.h.HandleMessage(context.Background(), cmd); err != nil {
					t.Fatal(err)
				}
			}
			a.check(t, 30, 1, 1, message.ReplyOutcomeSuccess)
			if r := couriertest.ReplySent[CreditReserved](t, a.outbox, cmd.ID, message.ReplyOutcomeSuccess); r.ReservationID != "r-o-1" {
				t.Fatalf("reply = %+v", r)
			}
		})
	}
}

// A handler that fails with a transient error rolls everything back: no
// change, no event, no reply, no inbox record, so the redelivery runs it
// again.
func TestHandleTxRollsBackTheReplyAndEventsWithTheHandler(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			a := newAccounting(t, d, true)
			busy := errors.New("fraud check unavailable")
			a.fail = func(context.Context, *sql.Tx) error { return commands.Retryable(busy) }
			cmd := reserveCredit(t, commands.ReplyTo(orderReplies))
			if err := a.h.HandleMessage(context.Background(), cmd); !errors.Is(err, busy) || broker.IsPermanent(err) {
				t.Fatalf("HandleMessage = %v, want the transient error", err)
			}
			a.check(t, 0, 0, 0, "")
			a.fail = nil
			if err := a.h.HandleMessage(context.Background(), cmd); err != nil {
				t.Fatal(err)
			}
			a.check(t, 30, 1, 1, message.ReplyOutcomeSuccess)
		})
	}
}

// A handler that fails for good, even after a statement the database
// refused (which aborts a PostgreSQL transaction), or panics, gets a
// failure reply without its changes and events: they are undone to the
// savepoint set before it ran, and the failure reply commits with the
// inbox record, once.
func TestHandleTxFailureReplyCommitsWithoutTheHandlersChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(ctx context.Context, tx *sql.Tx) error
	}{
		{"refused statement", func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO account (id, reserved) VALUES ('acc-1', 0)") // a duplicate key
			if err == nil {
				return errors.New("a duplicate key was accepted")
			}
			return err
		}},
		{"panic", func(context.Context, *sql.Tx) error { panic("bug") }},
	} {
		for _, d := range testdb.Dialects {
			t.Run(tc.name+"/"+d.Name(), func(t *testing.T) {
				a := newAccounting(t, d, true)
				a.fail = tc.fail
				cmd := reserveCredit(t, commands.ReplyTo(orderReplies))
				for range 2 {
					if err := a.h.HandleMessage(context.Background(), cmd); err != nil {
						t.Fatal(err)
					}
				}
				a.check(t, 0, 0, 1, message.ReplyOutcomeFailure)
				couriertest.ReplySent[commands.HandlerFailure](t, a.outbox, cmd.ID, message.ReplyOutcomeFailure)
			})
		}
	}
}

// A one-way command whose handler fails is dead-lettered with nothing
// written; a dispatcher without WithOutbox refuses to reply outside the
// transaction, writing nothing either.
func TestHandleTxWritesNothingWhenItCannotReply(t *testing.T) {
	t.Run("one-way", func(t *testing.T) {
		a := newAccounting(t, sqldb.SQLite, true)
		a.fail = func(context.Context, *sql.Tx) error { return errors.New("cannot") }
		if err := a.h.HandleMessage(context.Background(), reserveCredit(t)); !broker.IsPermanent(err) {
			t.Fatalf("HandleMessage = %v, want a permanent error", err)
		}
		a.check(t, 0, 0, 0, "")
	})
	t.Run("no outbox", func(t *testing.T) {
		a := newAccounting(t, sqldb.SQLite, false)
		err := a.h.HandleMessage(context.Background(), reserveCredit(t, commands.ReplyTo(orderReplies)))
		if !errors.Is(err, commands.ErrNoProducer) || !broker.IsPermanent(err) {
			t.Fatalf("HandleMessage = %v, want a permanent ErrNoProducer", err)
		}
		a.check(t, 0, 0, 0, "")
	})
	t.Run("no producer", func(t *testing.T) {
		d := commands.NewDispatcher(nil, quiet)
		commands.Handle(d, func(context.Context, commands.Command[ReserveCredit]) (commands.Reply, error) {
			return commands.Success(nil), nil
		})
		if err := d.HandleMessage(context.Background(), reserveCredit(t, commands.ReplyTo(orderReplies))); !errors.Is(err, commands.ErrNoProducer) {
			t.Fatalf("HandleMessage = %v, want ErrNoProducer", err)
		}
		if err := d.HandleTx(context.Background(), nil, reserveCredit(t)); err == nil {
			t.Fatal("HandleTx without a transaction accepted")
		}
	})
}

// A reply handler's changes and the commands it sends next commit with the
// inbox's record of the reply, or roll back with it: the step of a saga.
func TestReplyDispatcherHandleTxCommitsWithTheInbox(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			ctx := context.Background()
			db := testdb.Open(t, d)
			if _, err := db.Exec("CREATE TABLE orders (id VARCHAR(64) PRIMARY KEY, state VARCHAR(32) NOT NULL)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("INSERT INTO orders (id, state) VALUES ('o-1', 'PENDING')"); err != nil {
				t.Fatal(err)
			}
			w := outbox.NewWriter(d)
			var fail error
			rd := commands.NewReplyDispatcher()
			commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v CreditReserved) error {
				if _, err := r.Tx.ExecContext(ctx, d.Rebind("UPDATE orders SET state = 'APPROVED' WHERE id = ?"), r.Header("commandreply_order_id")); err != nil {
					return err
				}
				if _, err := commands.NewProducer(w.Producer(r.Tx)).Send(ctx, "kitchen-commands", Ping{N: 1}); err != nil {
					return err
				}
				return fail
			})
			h := inbox.New(db.DB, d, inbox.WithConsumerID("order-service")).Handler(rd.HandleTx)
			cmd := reserveCredit(t, commands.ReplyTo(orderReplies), commands.WithHeader("order_id", "o-1"))
			target, _ := commands.Command[ReserveCredit]{Message: cmd}.ReplyTarget()
			var sent couriertest.Recorder
			if err := commands.SendReply(ctx, &sent, target, commands.Success(CreditReserved{ReservationID: "r-o-1"})); err != nil {
				t.Fatal(err)
			}
			reply := sent.Sent()[0].Message
			o := couriertest.NewOutbox(t, db.DB)
			check := func(state string, sentCommands int) {
				t.Helper()
				var got string
				if err := db.QueryRow("SELECT state FROM orders WHERE id = 'o-1'").Scan(&got); err != nil {
					t.Fatal(err)
				}
				if n := len(couriertest.SentTo(o, "kitchen-commands")); got != state || n != sentCommands {
					t.Fatalf("order %s with %d commands in the outbox, want %s with %d", got, n, state, sentCommands)
				}
			}

			fail = errors.New("disk full")
			if err := h.HandleMessage(ctx, reply); !errors.Is(err, fail) {
				t.Fatalf("HandleMessage = %v, want the handler's error", err)
			}
			check("PENDING", 0)
			fail = nil
			for range 2 {
				if err := h.HandleMessage(ctx, reply); err != nil {
					t.Fatal(err)
				}
			}
			check("APPROVED", 1)
			if err := rd.HandleTx(ctx, nil, reply); err == nil {
				t.Fatal("HandleTx without a transaction accepted")
			}
		})
	}
}
