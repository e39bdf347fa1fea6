package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgnotify"
	"github.com/courier-go/courier/sqldb"
)

func newBroker(t testing.TB) *memory.Broker {
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

// wakeup installs, on PostgreSQL, the LISTEN/NOTIFY trigger (opt-in) and
// returns the option that makes the relay listen for it.
func wakeup(t *testing.T, db *testdb.DB) []outbox.RelayOption {
	t.Helper()
	if db.Dialect != sqldb.Postgres {
		return nil
	}
	if err := pgnotify.Install(context.Background(), db.DB); err != nil {
		t.Fatal(err)
	}
	return []outbox.RelayOption{outbox.WithWakeup(pgnotify.New(db.DB))}
}

// runRelay runs, until the test ends, a relay of db's outbox that
// publishes with p and logs nothing.
func runRelay(t testing.TB, db *sql.DB, d *sqldb.Dialect, p broker.Producer, opts ...outbox.RelayOption) (*outbox.Relay, context.CancelFunc) {
	t.Helper()
	r, err := outbox.NewRelay(db, d, p, append(opts, outbox.WithLogger(relaytest.Quiet()))...)
	if err != nil {
		t.Fatal(err)
	}
	return r, relaytest.Run(t, r)
}

func unpublished(t testing.TB, db *testdb.DB) int {
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM message WHERE published = 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRelayPublishesCommittedMessagesInOrder(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			b := newBroker(t)
			got := relaytest.Collect(t, b, "orders")
			w := outbox.NewWriter(d)
			relay, err := outbox.NewRelay(db.DB, d, b, append(wakeup(t, db), outbox.WithLogger(relaytest.Quiet()), outbox.WithBatchSize(7))...)
			if err != nil {
				t.Fatal(err)
			}
			relaytest.Run(t, relay)
			txs := relaytest.WriteTransactions(t, db.DB, w, 20)
			txs.Check(t, got)
			for _, m := range got.All() {
				if m.Destination() != "orders" || m.Header(message.HeaderDate) == "" {
					t.Fatalf("unexpected message %s with headers %v", m.ID, m.Headers)
				}
			}
			relaytest.Eventually(t, "the outbox to empty", func() bool { return unpublished(t, db) == 0 })
			relaytest.CheckEmpty(t, db.DB) // the relay deletes published rows by default
			if s := relay.Stats(); !s.Leader || s.Published != uint64(len(txs.Committed)) {
				t.Fatalf("stats = %+v", s)
			}
		})
	}
}

func TestKeepPublishedMarksRows(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			b := newBroker(t)
			got := relaytest.Collect(t, b, "orders")
			relay, err := outbox.NewRelay(db.DB, db.Dialect, b, outbox.WithKeepPublished(), outbox.WithLogger(relaytest.Quiet()))
			if err != nil {
				t.Fatal(err)
			}
			relaytest.Run(t, relay)
			relaytest.WriteOrders(t, db.DB, outbox.NewWriter(db.Dialect), 0, 3, true)
			relaytest.Eventually(t, "3 messages", func() bool { return got.Count() == 3 })
			relaytest.Eventually(t, "rows marked", func() bool { return unpublished(t, db) == 0 })
			var kept int
			db.QueryRow("SELECT COUNT(*) FROM message WHERE published = 1").Scan(&kept)
			if kept != 3 {
				t.Fatalf("%d rows marked published, want 3", kept)
			}
			if s := relay.Stats(); s.Published != 3 || s.Errors != 0 {
				t.Fatalf("stats = %+v, want 3 published and no error", s)
			}
		})
	}
}

func TestBadRowsGoToTheDeadLetterChannel(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			b := newBroker(t)
			good := relaytest.Collect(t, b, "orders")
			dead := relaytest.Collect(t, b, outbox.DefaultDeadLetterChannel)
			insert := d.Rebind("INSERT INTO message (id, destination, headers, payload, published, creation_time) VALUES (?, ?, ?, ?, 0, 0)")
			for _, r := range [][]string{
				{"bad-json", "orders", "{not json"},
				{"bad-destination", "orders and more", `{"PARTITION_ID":"k"}`},
			} {
				if _, err := db.Exec(insert, r[0], r[1], r[2], []byte("payload")); err != nil {
					t.Fatal(err)
				}
			}
			relaytest.WriteOrders(t, db.DB, outbox.NewWriter(d), 0, 2, true)
			relay, err := outbox.NewRelay(db.DB, d, b, outbox.WithLogger(relaytest.Quiet()))
			if err != nil {
				t.Fatal(err)
			}
			relaytest.Run(t, relay)
			relaytest.Eventually(t, "the good messages and two dead letters", func() bool { return good.Count() == 2 && dead.Count() == 2 })
			reasons := map[string]string{}
			for _, m := range dead.All() {
				reasons[m.ID] = m.Header(message.HeaderDeadLetterReason)
				if m.Header(message.HeaderDeadLetterChannel) == "" || string(m.Payload) != "payload" {
					t.Errorf("dead letter %s lost its context: %v %q", m.ID, m.Headers, m.Payload)
				}
			}
			if reasons["bad-json"] == "" || reasons["bad-destination"] == "" {
				t.Fatalf("reasons = %v", reasons)
			}
			t.Logf("reasons: %v", reasons)
			relaytest.Eventually(t, "the outbox to empty", func() bool { return unpublished(t, db) == 0 })
			if s := relay.Stats(); s.DeadLettered != 2 {
				t.Fatalf("stats = %+v", s)
			}
		})
	}
}

func TestMissingSchemaSaysHowToCreateIt(t *testing.T) {
	db, err := sql.Open("sqlite", testdb.SQLiteDSN(filepath.Join(t.TempDir(), "empty.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	relay, err := outbox.NewRelay(db, sqldb.SQLite, newBroker(t), outbox.WithLogger(relaytest.Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	err = relay.Run(context.Background())
	if !errors.Is(err, sqldb.ErrSchemaMissing) {
		t.Fatalf("Run on an empty database = %v, want sqldb.ErrSchemaMissing", err)
	}
	t.Log(err)
}

func TestRelayConfigurationIsValidated(t *testing.T) {
	db := testdb.SQLite(t)
	b := newBroker(t)
	for name, opt := range map[string]outbox.RelayOption{
		"batch":    outbox.WithBatchSize(0),
		"poll":     outbox.WithPollInterval(0),
		"lease":    outbox.WithLeaseTTL(time.Millisecond),
		"name":     outbox.WithName(""),
		"dlq":      outbox.WithDeadLetterChannel("bad name"),
		"limits":   outbox.WithLimits(message.Limits{MaxPayloadBytes: -1}),
		"owner":    outbox.WithOwner(""),
		"logger":   outbox.WithLogger(nil),
		"negative": outbox.WithBatchSize(-5),
	} {
		if _, err := outbox.NewRelay(db.DB, db.Dialect, b, opt); err == nil {
			t.Errorf("%s: invalid option accepted", name)
		}
	}
	if _, err := outbox.NewRelay(nil, db.Dialect, b); err == nil {
		t.Error("nil database accepted")
	}
}

func TestWriterRefusesInvalidMessagesAndWritesNothing(t *testing.T) {
	db := testdb.SQLite(t)
	w := outbox.NewWriter(db.Dialect, outbox.WithWriterLimits(message.Limits{MaxPayloadBytes: 10}))
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	err = w.Send(context.Background(), tx, "orders", message.New([]byte("ok")), message.New(make([]byte, 11)))
	if !errors.Is(err, message.ErrPayloadTooLarge) {
		t.Fatalf("Send = %v", err)
	}
	if err := w.Producer(tx).Send(context.Background(), "bad channel", message.New(nil)); !errors.Is(err, message.ErrInvalidChannel) {
		t.Fatalf("Send to a bad channel = %v", err)
	}
	var n int
	tx.QueryRow("SELECT COUNT(*) FROM message").Scan(&n)
	if n != 0 {
		t.Fatalf("%d rows written by failed sends", n)
	}
}

// exclusiveProducer fails the test if two relays are inside Send at once.
type exclusiveProducer struct {
	t      *testing.T
	inner  broker.Producer
	mu     *sync.Mutex
	active *string
	me     string
}

func (p exclusiveProducer) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	p.mu.Lock()
	if *p.active != "" && *p.active != p.me {
		p.t.Errorf("relays %s and %s published at the same time", *p.active, p.me)
	}
	*p.active = p.me
	p.mu.Unlock()
	time.Sleep(time.Millisecond) // widen the window an overlap would need
	err := p.inner.Send(ctx, channel, msgs...)
	p.mu.Lock()
	*p.active = ""
	p.mu.Unlock()
	return err
}

func TestOnlyOneRelayPublishesAtATime(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			b := newBroker(t)
			got := relaytest.Collect(t, b, "orders")
			var mu sync.Mutex
			active := ""
			var cancels []context.CancelFunc
			var relays []*outbox.Relay
			for i := range 3 {
				p := exclusiveProducer{t: t, inner: b, mu: &mu, active: &active, me: fmt.Sprint("relay-", i)}
				r, err := outbox.NewRelay(db.DB, d, p, outbox.WithLeaseTTL(400*time.Millisecond), outbox.WithBatchSize(20),
					outbox.WithPollInterval(5*time.Millisecond), outbox.WithOwner(p.me), outbox.WithLogger(relaytest.Quiet()))
				if err != nil {
					t.Fatal(err)
				}
				relays = append(relays, r)
				cancels = append(cancels, relaytest.Run(t, r))
			}
			w := outbox.NewWriter(d)
			const rounds = 60
			total := 0
			for seq := range rounds {
				total += len(relaytest.WriteOrders(t, db.DB, w, seq, 10, true))
				if seq == rounds/2 {
					// Stop the leader; another must take over.
					for i, r := range relays {
						if r.Stats().Leader {
							cancels[i]()
							t.Logf("stopped leader relay-%d", i)
							break
						}
					}
				}
				leaders := 0
				for _, r := range relays {
					if r.Stats().Leader {
						leaders++
					}
				}
				if leaders > 1 {
					t.Fatalf("%d relays consider themselves leader", leaders)
				}
				time.Sleep(5 * time.Millisecond)
			}
			relaytest.Eventually(t, "every message", func() bool { return got.Count() == total })
			relaytest.CheckOrder(t, got.All())
		})
	}
}

// failingProducer refuses every Send while down is set.
type failingProducer struct {
	broker.Producer
	down atomic.Bool
}

var errBrokerDown = errors.New("broker unavailable")

func (p *failingProducer) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	if p.down.Load() {
		return errBrokerDown
	}
	return p.Producer.Send(ctx, channel, msgs...)
}

// While the broker refuses, the relay's Stats say that publishing fails,
// since when and why, and count the failed Sends; the first confirmed Send
// clears the failure.
func TestBrokerOutageShowsInStats(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			b := newBroker(t)
			got := relaytest.Collect(t, b, "orders")
			p := &failingProducer{Producer: b}
			relay, _ := runRelay(t, db.DB, d, p, outbox.WithPollInterval(5*time.Millisecond))
			w := outbox.NewWriter(d)
			relaytest.WriteOrders(t, db.DB, w, 0, 3, true)
			relaytest.Eventually(t, "the first messages", func() bool { return got.Count() == 3 })
			if s := relay.Stats(); s.PublishErrors != 0 || !s.PublishFailingSince.IsZero() {
				t.Fatalf("stats = %+v before the outage", s)
			}

			p.down.Store(true)
			downAt := time.Now()
			relaytest.WriteOrders(t, db.DB, w, 1, 3, true)
			relaytest.Eventually(t, "the failure in the stats", func() bool { return relay.Stats().PublishErrors >= 2 })
			s := relay.Stats()
			if s.PublishFailingSince.Before(downAt) || !errors.Is(s.LastPublishError, errBrokerDown) || s.Errors < s.PublishErrors {
				t.Fatalf("stats = %+v during the outage", s)
			}
			if got.Count() != 3 {
				t.Fatalf("%d messages published while the broker was down", got.Count())
			}

			p.down.Store(false)
			relaytest.Eventually(t, "every message", func() bool { return got.Count() == 6 })
			after := relay.Stats()
			if !after.PublishFailingSince.IsZero() || after.LastPublishError != nil || after.PublishErrors < s.PublishErrors {
				t.Fatalf("stats = %+v after the outage", after)
			}
		})
	}
}

// deadLetterBroker is a broker with a way of its own for dead letters, as
// the RabbitMQ adapter has (broker.DeadLetterProducer); it counts the
// messages sent that way.
type deadLetterBroker struct {
	*memory.Broker
	deadLetters atomic.Int64
}

func (b *deadLetterBroker) DeadLetterProducer() broker.Producer {
	return broker.ProducerFunc(func(ctx context.Context, channel string, msgs ...*message.Message) error {
		b.deadLetters.Add(int64(len(msgs)))
		return b.Broker.Send(ctx, channel, msgs...)
	})
}

// TestRelayDeadLettersThroughTheBrokersWay: the rows the relay dead-letters
// go through the broker's DeadLetterProducer, where it has one, and the
// others through Send.
func TestRelayDeadLettersThroughTheBrokersWay(t *testing.T) {
	d := testdb.Dialects[0]
	db := testdb.Open(t, d)
	b := &deadLetterBroker{Broker: newBroker(t)}
	good := relaytest.Collect(t, b, "orders")
	dead := relaytest.Collect(t, b, outbox.DefaultDeadLetterChannel)
	insert := d.Rebind("INSERT INTO message (id, destination, headers, payload, published, creation_time) VALUES (?, ?, ?, ?, 0, 0)")
	if _, err := db.Exec(insert, "bad-json", "orders", "{not json", []byte("payload")); err != nil {
		t.Fatal(err)
	}
	relaytest.WriteOrders(t, db.DB, outbox.NewWriter(d), 0, 2, true)
	runRelay(t, db.DB, d, b)
	relaytest.Eventually(t, "the good messages and the dead letter", func() bool { return good.Count() == 2 && dead.Count() == 1 })
	if n := b.deadLetters.Load(); n != 1 {
		t.Fatalf("%d messages went through the broker's dead-letter producer, want 1", n)
	}
}
