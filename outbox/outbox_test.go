package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgnotify"
	"github.com/courier-go/courier/sqldb"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// collector subscribes to channels and records what arrives.
type collector struct {
	mu   sync.Mutex
	msgs []*message.Message
	ids  map[string]int
}

func collect(t *testing.T, b broker.Broker, channels ...string) *collector {
	t.Helper()
	c := &collector{ids: map[string]int{}}
	sub, err := b.Subscribe(context.Background(), "collector", channels, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.msgs = append(c.msgs, m)
		c.ids[m.ID]++
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close(context.Background()) })
	return c
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

func (c *collector) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[id] > 0
}

func (c *collector) all() []*message.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*message.Message(nil), c.msgs...)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newBroker(t *testing.T) *memory.Broker {
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

// runRelay runs r until the test ends.
func runRelay(t *testing.T, r *outbox.Relay) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
	return cancel
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

// writeOrders writes, in one transaction, one message per key for keys
// k0..k(keys-1) with the given sequence number, and commits or rolls back.
func writeOrders(t *testing.T, db *testdb.DB, w *outbox.Writer, seq, keys int, commit bool) []string {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for k := range keys {
		m := message.NewBuilder([]byte(fmt.Sprintf("k%d/%d", k, seq))).
			WithPartitionKey(fmt.Sprint("k", k)).WithHeader("seq", strconv.Itoa(seq)).Build()
		if err := w.Send(ctx, tx, "orders", m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if commit {
		err = tx.Commit()
	} else {
		err = tx.Rollback()
	}
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// checkOrder fails if, for some key, the first deliveries of its messages
// are not in sequence order.
func checkOrder(t *testing.T, msgs []*message.Message) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int{}
	for _, m := range msgs {
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		seq, _ := strconv.Atoi(m.Header("seq"))
		if prev, ok := last[m.PartitionKey()]; ok && seq <= prev {
			t.Fatalf("key %s: seq %d delivered after %d", m.PartitionKey(), seq, prev)
		}
		last[m.PartitionKey()] = seq
	}
}

func unpublished(t *testing.T, db *testdb.DB) int {
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
			got := collect(t, b, "orders")
			w := outbox.NewWriter(d)
			relay, err := outbox.NewRelay(db.DB, d, b, append(wakeup(t, db), outbox.WithRelayLogger(quiet()), outbox.WithBatchSize(7))...)
			if err != nil {
				t.Fatal(err)
			}
			runRelay(t, relay)
			committed := map[string]bool{}
			var rolledBack []string
			for seq := range 20 {
				if seq%5 == 4 {
					rolledBack = append(rolledBack, writeOrders(t, db, w, seq, 5, false)...)
					continue
				}
				for _, id := range writeOrders(t, db, w, seq, 5, true) {
					committed[id] = true
				}
			}
			eventually(t, "every committed message", func() bool { return got.count() == len(committed) })
			for _, id := range rolledBack {
				if got.has(id) {
					t.Fatalf("rolled-back message %s was published", id)
				}
			}
			checkOrder(t, got.all())
			for _, m := range got.all() {
				if !committed[m.ID] || m.Destination() != "orders" || m.Header(message.HeaderDate) == "" {
					t.Fatalf("unexpected message %s with headers %v", m.ID, m.Headers)
				}
			}
			eventually(t, "the outbox to empty", func() bool { return unpublished(t, db) == 0 })
			var rows int
			db.QueryRow("SELECT COUNT(*) FROM message").Scan(&rows)
			if rows != 0 {
				t.Fatalf("%d published rows left in the outbox; the relay deletes them by default", rows)
			}
			if s := relay.Stats(); !s.Leader || s.Published != uint64(len(committed)) {
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
			got := collect(t, b, "orders")
			relay, err := outbox.NewRelay(db.DB, db.Dialect, b, outbox.WithKeepPublished(), outbox.WithRelayLogger(quiet()))
			if err != nil {
				t.Fatal(err)
			}
			runRelay(t, relay)
			writeOrders(t, db, outbox.NewWriter(db.Dialect), 0, 3, true)
			eventually(t, "3 messages", func() bool { return got.count() == 3 })
			eventually(t, "rows marked", func() bool { return unpublished(t, db) == 0 })
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
			good := collect(t, b, "orders")
			dead := collect(t, b, outbox.DefaultDeadLetterChannel)
			insert := d.Rebind("INSERT INTO message (id, destination, headers, payload, published, creation_time) VALUES (?, ?, ?, ?, 0, 0)")
			for _, r := range [][]string{
				{"bad-json", "orders", "{not json"},
				{"bad-destination", "orders and more", `{"PARTITION_ID":"k"}`},
			} {
				if _, err := db.Exec(insert, r[0], r[1], r[2], []byte("payload")); err != nil {
					t.Fatal(err)
				}
			}
			writeOrders(t, db, outbox.NewWriter(d), 0, 2, true)
			relay, err := outbox.NewRelay(db.DB, d, b, outbox.WithRelayLogger(quiet()))
			if err != nil {
				t.Fatal(err)
			}
			runRelay(t, relay)
			eventually(t, "the good messages and two dead letters", func() bool { return good.count() == 2 && dead.count() == 2 })
			reasons := map[string]string{}
			for _, m := range dead.all() {
				reasons[m.ID] = m.Header(message.HeaderDeadLetterReason)
				if m.Header(message.HeaderDeadLetterChannel) == "" || string(m.Payload) != "payload" {
					t.Errorf("dead letter %s lost its context: %v %q", m.ID, m.Headers, m.Payload)
				}
			}
			if reasons["bad-json"] == "" || reasons["bad-destination"] == "" {
				t.Fatalf("reasons = %v", reasons)
			}
			t.Logf("reasons: %v", reasons)
			eventually(t, "the outbox to empty", func() bool { return unpublished(t, db) == 0 })
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
	relay, err := outbox.NewRelay(db, sqldb.SQLite, newBroker(t), outbox.WithRelayLogger(quiet()))
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
		"logger":   outbox.WithRelayLogger(nil),
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
			got := collect(t, b, "orders")
			var mu sync.Mutex
			active := ""
			var cancels []context.CancelFunc
			var relays []*outbox.Relay
			for i := range 3 {
				p := exclusiveProducer{t: t, inner: b, mu: &mu, active: &active, me: fmt.Sprint("relay-", i)}
				r, err := outbox.NewRelay(db.DB, d, p, outbox.WithLeaseTTL(400*time.Millisecond), outbox.WithBatchSize(20),
					outbox.WithPollInterval(5*time.Millisecond), outbox.WithOwner(p.me), outbox.WithRelayLogger(quiet()))
				if err != nil {
					t.Fatal(err)
				}
				relays = append(relays, r)
				cancels = append(cancels, runRelay(t, r))
			}
			w := outbox.NewWriter(d)
			const rounds = 60
			total := 0
			for seq := range rounds {
				total += len(writeOrders(t, db, w, seq, 10, true))
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
			eventually(t, "every message", func() bool { return got.count() == total })
			checkOrder(t, got.all())
		})
	}
}
