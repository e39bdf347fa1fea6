package events_test

import (
	"context"
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
)

type TicketCreated struct {
	Items []string `json:"items"`
}

type TicketAccepted struct{}

// EventType names TicketAccepted as a Java service would.
func (TicketAccepted) EventType() string { return "net.example.kitchen.TicketAccepted" }

// capture is a broker.Producer that keeps what it is sent.
type capture struct{ sent map[string][]*message.Message }

func (c *capture) Send(_ context.Context, channel string, msgs ...*message.Message) error {
	if c.sent == nil {
		c.sent = map[string][]*message.Message{}
	}
	c.sent[channel] = append(c.sent[channel], msgs...)
	return nil
}

func TestPublishedHeaders(t *testing.T) {
	var c capture
	if err := events.NewPublisher(&c).Publish(context.Background(), "Ticket", "t-1", TicketCreated{Items: []string{"x"}}, TicketAccepted{}); err != nil {
		t.Fatal(err)
	}
	msgs := c.sent["Ticket"]
	if len(msgs) != 2 {
		t.Fatalf("sent %v", c.sent)
	}
	for i, wantType := range []string{"events_test.TicketCreated", "net.example.kitchen.TicketAccepted"} {
		m := msgs[i]
		for k, v := range map[string]string{
			message.HeaderEventType:          wantType,
			message.HeaderEventAggregateType: "Ticket",
			message.HeaderEventAggregateID:   "t-1",
			message.HeaderPartitionID:        "t-1",
			message.HeaderContentType:        "application/json",
		} {
			if m.Header(k) != v {
				t.Errorf("event %d header %s = %q, want %q", i, k, m.Header(k), v)
			}
		}
	}
	if err := events.NewPublisher(&c).Publish(context.Background(), "Ticket", "", TicketAccepted{}); err == nil {
		t.Fatal("empty aggregate id accepted")
	}
}

func TestDispatcherSkipsCountsAndRejects(t *testing.T) {
	ctx := context.Background()
	var c capture
	pub := events.NewPublisher(&c)
	created, _ := pub.Message("Ticket", "t-1", TicketCreated{Items: []string{"pizza"}})
	accepted, _ := pub.Message("Ticket", "t-1", TicketAccepted{})

	d := events.NewDispatcher()
	var got []string
	events.On(d, "Ticket", func(_ context.Context, e events.Event[TicketCreated]) error {
		got = append(got, e.AggregateID+":"+e.Payload.Items[0]+":"+e.Type)
		return nil
	})
	if err := d.HandleMessage(ctx, created); err != nil || len(got) != 1 || got[0] != "t-1:pizza:events_test.TicketCreated" {
		t.Fatalf("HandleMessage = %v, got %v", err, got)
	}
	if err := d.HandleMessage(ctx, accepted); err != nil {
		t.Fatalf("unknown event type not skipped: %v", err)
	}
	malformed := created.Clone()
	malformed.Payload = []byte("{")
	if err := d.HandleMessage(ctx, malformed); !broker.IsPermanent(err) {
		t.Fatalf("malformed event: %v, want a permanent error (dead letter)", err)
	}
	if s := d.Stats(); s.Handled != 1 || s.Unknown != 1 || s.Malformed != 1 {
		t.Fatalf("stats = %+v", s)
	}
	strict := events.NewDispatcher(events.RejectUnknown())
	events.On(strict, "Ticket", func(context.Context, events.Event[TicketCreated]) error { return nil })
	if err := strict.HandleMessage(ctx, accepted); !broker.IsPermanent(err) {
		t.Fatalf("strict dispatcher: %v", err)
	}
	if types := strict.AggregateTypes(); len(types) != 1 || types[0] != "Ticket" {
		t.Fatalf("AggregateTypes = %v", types)
	}
	if _, err := events.NewDispatcher().Subscribe(ctx, nil, "x"); err == nil {
		t.Fatal("a dispatcher without handlers subscribed")
	}
	handlerErr := errors.New("boom")
	failing := events.NewDispatcher()
	events.On(failing, "Ticket", func(context.Context, events.Event[TicketCreated]) error { return handlerErr })
	if err := failing.HandleMessage(ctx, created); !errors.Is(err, handlerErr) || broker.IsPermanent(err) {
		t.Fatalf("handler error: %v, want it returned for a retry", err)
	}
}

func TestPublishThroughTheOutbox(t *testing.T) {
	db := testdb.SQLite(t)
	ctx := context.Background()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(outbox.NewWriter(db.Dialect).Producer(tx))
	if err := pub.Publish(ctx, "Ticket", "t-7", TicketCreated{}, TicketAccepted{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	db.QueryRow("SELECT COUNT(*) FROM message WHERE destination = 'Ticket'").Scan(&n)
	if n != 2 {
		t.Fatalf("%d outbox rows, want 2", n)
	}
}

type StartCooking struct {
	TicketID string `json:"ticketId"`
}

// An event handler's changes and the messages it writes through the
// outbox commit with the inbox's record of the event, or roll back with it.
func TestHandleTxCommitsWithTheInbox(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			ctx := context.Background()
			db := testdb.Open(t, d)
			if _, err := db.Exec("CREATE TABLE ticket_replica (id VARCHAR(64) PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			w := outbox.NewWriter(d)
			var fail error
			disp := events.NewDispatcher()
			events.On(disp, "Ticket", func(ctx context.Context, e events.Event[TicketCreated]) error {
				if _, err := e.Tx.ExecContext(ctx, d.Rebind("INSERT INTO ticket_replica (id) VALUES (?)"), e.AggregateID); err != nil {
					return err
				}
				m, err := commands.NewProducer(nil).Message(StartCooking{TicketID: e.AggregateID})
				if err != nil {
					return err
				}
				if err := w.Producer(e.Tx).Send(ctx, "kitchen-commands", m); err != nil {
					return err
				}
				return fail
			})
			h := inbox.New(db.DB, d, inbox.WithConsumerID("kitchen-service")).Handler(disp.HandleTx)
			created, _ := events.NewPublisher(nil).Message("Ticket", "t-1", TicketCreated{Items: []string{"curry"}})
			o := couriertest.NewOutbox(t, db.DB)
			count := func() (replicas, commands int) {
				t.Helper()
				if err := db.QueryRow("SELECT COUNT(*) FROM ticket_replica").Scan(&replicas); err != nil {
					t.Fatal(err)
				}
				return replicas, len(couriertest.SentTo(o, "kitchen-commands"))
			}

			fail = errors.New("oven offline")
			if err := h.HandleMessage(ctx, created); !errors.Is(err, fail) {
				t.Fatalf("HandleMessage = %v, want the handler's error", err)
			}
			if r, c := count(); r != 0 || c != 0 {
				t.Fatalf("after a failed attempt: %d replicas, %d commands in the outbox; want none", r, c)
			}
			fail = nil
			for range 3 { // the retry, then two redeliveries
				if err := h.HandleMessage(ctx, created); err != nil {
					t.Fatal(err)
				}
			}
			if r, c := count(); r != 1 || c != 1 {
				t.Fatalf("after the retry and redeliveries: %d replicas, %d commands in the outbox; want one each", r, c)
			}
			if cmd, _ := couriertest.CommandSent[StartCooking](t, o, "kitchen-commands"); cmd.TicketID != "t-1" {
				t.Fatalf("command = %+v", cmd)
			}
			if err := disp.HandleTx(ctx, nil, created); err == nil {
				t.Fatal("HandleTx without a transaction accepted")
			}
		})
	}
}
