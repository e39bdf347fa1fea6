// Package relaytest holds what the tests of the outbox relays (the polling
// relay and the log-tailing ones) share: writing ordered messages to an
// outbox, running a relay for a test, collecting and checking what the
// broker received, and running relays as child processes, one of which a
// testsink.Sink kills while it publishes.
package relaytest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// Quiet returns a logger that discards what it is given.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Eventually fails the test if cond is not true within 30 seconds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Relay is what the tests run: an outbox relay.
type Relay interface {
	Run(ctx context.Context) error
}

// Run runs r until the test ends, or until the function it returns is
// called, and fails the test if r's Run returns an error.
func Run(t testing.TB, r Relay) context.CancelFunc {
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

// WriteOrders writes, in one transaction, one message to the channel
// "orders" for each of the partition keys k0..k(keys-1), with the header
// "seq" set to seq and a payload that is not valid UTF-8, and commits or
// rolls back. It returns the messages' IDs.
func WriteOrders(t testing.TB, db *sql.DB, w *outbox.Writer, seq, keys int, commit bool) []string {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for k := range keys {
		m := message.NewBuilder([]byte(fmt.Sprintf("payload \x00\xff %d/%d", k, seq))).WithPartitionKey(fmt.Sprint("k", k)).
			WithHeader("seq", strconv.Itoa(seq)).Build()
		if err := w.Send(context.Background(), tx, "orders", m); err != nil {
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

// Transactions says what WriteTransactions wrote.
type Transactions struct {
	Committed  map[string]bool // the IDs of the committed messages
	RolledBack []string
}

// WriteTransactions writes n transactions of five messages with
// WriteOrders, seq 0 to n-1, and rolls back every fourth (seq 1, 5, 9...).
func WriteTransactions(t testing.TB, db *sql.DB, w *outbox.Writer, n int) Transactions {
	t.Helper()
	txs := Transactions{Committed: map[string]bool{}}
	for seq := range n {
		commit := seq%4 != 1
		for _, id := range WriteOrders(t, db, w, seq, 5, commit) {
			if commit {
				txs.Committed[id] = true
			} else {
				txs.RolledBack = append(txs.RolledBack, id)
			}
		}
	}
	return txs
}

// Check waits until got has every committed message, then fails the test
// if a rolled-back message or an unknown one arrived, if a payload is not
// the one WriteOrders wrote, or if a key's messages arrived out of order.
func (txs Transactions) Check(t testing.TB, got *Collector) {
	t.Helper()
	Eventually(t, "every committed message", func() bool { return got.Count() == len(txs.Committed) })
	for _, id := range txs.RolledBack {
		if got.Has(id) {
			t.Fatalf("rolled-back message %s published", id)
		}
	}
	for _, m := range got.All() {
		if !txs.Committed[m.ID] || !bytes.HasPrefix(m.Payload, []byte("payload \x00\xff ")) {
			t.Fatalf("unexpected message %s %q", m.ID, m.Payload)
		}
	}
	CheckOrder(t, got.All())
}

// CheckEmpty fails the test if the outbox table of db has rows.
func CheckEmpty(t testing.TB, db *sql.DB) {
	t.Helper()
	var rows int
	if err := db.QueryRow("SELECT COUNT(*) FROM message").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("%d rows in the outbox", rows)
	}
}

// writeOrderRetrying writes and commits message seq of key k0 (as
// WriteOrders does), retrying for about ten seconds while the transaction
// fails before its commit: the database server may be restarting.
func writeOrderRetrying(t testing.TB, db *sql.DB, w *outbox.Writer, seq int) {
	t.Helper()
	m := message.NewBuilder([]byte(strconv.Itoa(seq))).WithPartitionKey("k0").WithHeader("seq", strconv.Itoa(seq)).Build()
	for attempt := 0; ; attempt++ {
		tx, err := db.Begin()
		if err == nil {
			err = w.Send(context.Background(), tx, "orders", m)
			if err == nil {
				err = tx.Commit()
			} else {
				tx.Rollback()
			}
		}
		if err == nil {
			return
		}
		if attempt > 100 {
			t.Fatalf("writing message %d: %v", seq, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CheckOrder fails the test if, for some partition key, the first
// deliveries of its messages are not in the order of their "seq" header.
func CheckOrder(t testing.TB, msgs []*message.Message) {
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

// Collector records the messages a subscription receives.
type Collector struct {
	mu   sync.Mutex
	msgs []*message.Message
	ids  map[string]int
}

// Collect subscribes to channels of b until the test ends and records
// what arrives.
func Collect(t testing.TB, b broker.Broker, channels ...string) *Collector {
	t.Helper()
	c := &Collector{ids: map[string]int{}}
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

// Count is the number of distinct messages received.
func (c *Collector) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

// Has reports whether the message with id arrived.
func (c *Collector) Has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[id] > 0
}

// All returns every message received, duplicates included, in order.
func (c *Collector) All() []*message.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*message.Message(nil), c.msgs...)
}

// CheckPublishes runs a relay of the outbox that relayDB reaches, reading
// rows from src, to an in-memory broker until the test ends; commits n
// transactions of messages through writerDB; and checks that the relay
// publishes what committed, in order. The relay's options come after a
// short lease and a quiet logger.
func CheckPublishes(t testing.TB, relayDB, writerDB *sql.DB, d *sqldb.Dialect, src outbox.Source, n int, opts ...outbox.RelayOption) {
	t.Helper()
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	got := Collect(t, b, "orders")
	relay, err := outbox.NewRelay(relayDB, d, b, append([]outbox.RelayOption{outbox.WithSource(src), outbox.WithLeaseTTL(time.Second),
		outbox.WithLogger(Quiet())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := relay.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	Run(t, relay)
	WriteTransactions(t, writerDB, outbox.NewWriter(d), n).Check(t, got)
}
