package pgcdc_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/sqldb"
)

const childEnv = "COURIER_PGCDC_TEST_RELAY"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// names returns a slot and publication name of the test's own, and drops
// them when the test ends (a forgotten slot would hold WAL forever).
func names(t *testing.T, db *testdb.DB) string {
	t.Helper()
	var schema string
	if err := db.QueryRow("SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	name := "courier_" + strings.ToLower(schema)
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", db.DSN)
		if err != nil {
			return
		}
		defer admin.Close()
		for range 100 {
			_, err := admin.Exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", name)
			if err == nil || !strings.Contains(err.Error(), "active") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		admin.Exec("DROP PUBLICATION IF EXISTS " + name)
	})
	return name
}

func options(name string, extra ...pgcdc.Option) []pgcdc.Option {
	return append([]pgcdc.Option{pgcdc.WithSlot(name), pgcdc.WithPublication(name), pgcdc.WithName(name),
		pgcdc.WithHeartbeat(100 * time.Millisecond), pgcdc.WithLeaseTTL(time.Second), pgcdc.WithLogger(quiet())}, extra...)
}

func run(t *testing.T, r *pgcdc.Relay) {
	if err := r.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
}

type received struct {
	mu   sync.Mutex
	msgs []*message.Message
	ids  map[string]bool
}

func (r *received) handler(_ context.Context, m *message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	r.ids[m.ID] = true
	return nil
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// write commits (or rolls back) one transaction with a message per key.
func write(t *testing.T, db *testdb.DB, w *outbox.Writer, seq, keys int, commit bool) []string {
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

// orderMessage is message seq of key k0.
func orderMessage(seq int) *message.Message {
	return message.NewBuilder([]byte(strconv.Itoa(seq))).WithPartitionKey("k0").WithHeader("seq", strconv.Itoa(seq)).Build()
}

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

func TestTailingPublishesCommittedTransactionsInOrder(t *testing.T) {
	for _, deleteAfter := range []bool{false, true} {
		t.Run(fmt.Sprint("deleteAfterInsert=", deleteAfter), func(t *testing.T) {
			db := testdb.Postgres(t)
			name := names(t, db)
			b, _ := memory.New()
			defer b.Close(context.Background())
			got := &received{ids: map[string]bool{}}
			sub, err := b.Subscribe(context.Background(), "test", []string{"orders"}, broker.HandlerFunc(got.handler))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close(context.Background())
			relay, err := pgcdc.New(db.DB, db.DSN, b, options(name)...)
			if err != nil {
				t.Fatal(err)
			}
			run(t, relay)
			var wopts []outbox.WriterOption
			if deleteAfter {
				wopts = append(wopts, outbox.WithDeleteAfterInsert())
			}
			w := outbox.NewWriter(sqldb.Postgres, wopts...)
			committed := map[string]bool{}
			var rolledBack []string
			for seq := range 30 {
				ids := write(t, db, w, seq, 5, seq%4 != 1)
				for _, id := range ids {
					if seq%4 != 1 {
						committed[id] = true
					} else {
						rolledBack = append(rolledBack, id)
					}
				}
			}
			eventually(t, "every committed message", func() bool { return got.count() == len(committed) })
			got.mu.Lock()
			for _, id := range rolledBack {
				if got.ids[id] {
					t.Fatalf("rolled-back message %s published", id)
				}
			}
			for _, m := range got.msgs {
				if !committed[m.ID] || !bytes.HasPrefix(m.Payload, []byte("payload \x00\xff ")) {
					t.Fatalf("unexpected message %s %q", m.ID, m.Payload)
				}
			}
			checkOrder(t, got.msgs)
			got.mu.Unlock()
			if deleteAfter {
				var rows int
				db.QueryRow("SELECT COUNT(*) FROM message").Scan(&rows)
				if rows != 0 {
					t.Fatalf("%d rows in the outbox with delete-after-insert", rows)
				}
			}
			s := relay.Stats()
			if !s.Leader || s.Published != uint64(len(committed)) || s.ConfirmedLSN == "0/0" {
				t.Fatalf("stats = %+v", s)
			}
		})
	}
}

func TestHeartbeatAdvancesAnIdleSlot(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	b, _ := memory.New()
	defer b.Close(context.Background())
	relay, err := pgcdc.New(db.DB, db.DSN, b, options(name)...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, relay)
	if _, err := db.Exec("CREATE TABLE other (n BIGINT)"); err != nil {
		t.Fatal(err)
	}
	slotLSN := func() string {
		var lsn sql.NullString
		db.QueryRow("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", name).Scan(&lsn)
		return lsn.String
	}
	eventually(t, "the slot to exist", func() bool { return slotLSN() != "" })
	start := slotLSN()
	// Other tables fill the WAL; the outbox stays idle.
	for i := range 200 {
		db.Exec("INSERT INTO other VALUES ($1)", i)
	}
	var walNow string
	db.QueryRow("SELECT pg_current_wal_lsn()::text").Scan(&walNow)
	eventually(t, "the slot to move past the other table's writes", func() bool {
		return lsnOf(t, slotLSN()) >= lsnOf(t, walNow)
	})
	t.Logf("slot moved from %s to %s while the outbox was idle", start, slotLSN())
}

func lsnOf(t *testing.T, s string) uint64 {
	var hi, lo uint64
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0
	}
	return hi<<32 | lo
}

func TestBadRowsAndMissingSchema(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	b, _ := memory.New()
	defer b.Close(context.Background())
	dead := &received{ids: map[string]bool{}}
	sub, _ := b.Subscribe(context.Background(), "ops", []string{outbox.DefaultDeadLetterChannel}, broker.HandlerFunc(dead.handler))
	defer sub.Close(context.Background())
	relay, err := pgcdc.New(db.DB, db.DSN, b, options(name)...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, relay)
	eventually(t, "the relay to lead", func() bool { return relay.Stats().Leader })
	time.Sleep(200 * time.Millisecond) // let the stream start
	if _, err := db.Exec("INSERT INTO message (id, destination, headers, payload, published, creation_time) VALUES ('bad', 'orders', '{oops', 'x', 0, 0)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bad row in the dead-letter channel", func() bool { return dead.count() == 1 })
	if r := dead.msgs[0].Header(message.HeaderDeadLetterReason); !strings.Contains(r, "undecodable headers") {
		t.Fatalf("reason = %q", r)
	}

	empty := testdb.Postgres(t)
	empty.Exec("DROP TABLE message")
	r2, _ := pgcdc.New(empty.DB, empty.DSN, b, options(names(t, empty))...)
	if err := r2.Run(context.Background()); !errors.Is(err, sqldb.ErrSchemaMissing) {
		t.Fatalf("Run without the outbox table = %v", err)
	}
	if _, err := pgcdc.New(db.DB, db.DSN, b, pgcdc.WithSlot("Bad-Name")); err == nil {
		t.Fatal("an invalid slot name was accepted")
	}
}

func TestBrokerOutage(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	var down atomic.Bool
	s := testsink.New(0)
	s.Refuse = down.Load
	srv := httptest.NewServer(s)
	defer srv.Close()
	relay, err := pgcdc.New(db.DB, db.DSN, testsink.Producer{URL: srv.URL}, options(name)...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, relay)
	w := outbox.NewWriter(sqldb.Postgres)
	total := 0
	for seq := range 10 {
		total += len(write(t, db, w, seq, 5, true))
	}
	eventually(t, "the first messages", func() bool { return s.Unique() == total })
	down.Store(true)
	for seq := 10; seq < 40; seq++ {
		total += len(write(t, db, w, seq, 5, true))
	}
	time.Sleep(3 * time.Second) // the broker stays down for a while
	if s.Unique() != 50 {
		t.Fatalf("%d messages confirmed by a broker that was down", s.Unique())
	}
	down.Store(false)
	eventually(t, "every message after the outage", func() bool { return s.Unique() == total })
	checkOrder(t, s.Messages())
	if relay.Stats().Errors == 0 {
		t.Fatal("the outage was not counted as errors")
	}
}

func runChild() int {
	db, err := sql.Open("pgx", os.Getenv("COURIER_TEST_DSN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	name := os.Getenv("COURIER_TEST_NAME")
	relay, err := pgcdc.New(db, os.Getenv("COURIER_TEST_DSN"), testsink.Producer{URL: os.Getenv("COURIER_TEST_SINK")},
		pgcdc.WithSlot(name), pgcdc.WithPublication(name), pgcdc.WithName(name),
		pgcdc.WithHeartbeat(100*time.Millisecond), pgcdc.WithLeaseTTL(time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := relay.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestRelayProcessKilledMidStream(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	s := testsink.New(3 * time.Millisecond)
	srv := httptest.NewServer(s)
	defer srv.Close()
	setup, err := pgcdc.New(db.DB, db.DSN, testsink.Producer{URL: srv.URL}, options(name)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	children := map[int]*exec.Cmd{}
	outputs := map[int]*bytes.Buffer{}
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=1", "COURIER_TEST_DSN="+db.DSN, "COURIER_TEST_NAME="+name, "COURIER_TEST_SINK="+srv.URL)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		children[cmd.Process.Pid], outputs[cmd.Process.Pid] = cmd, &out
	}
	type killing struct {
		pid int
		at  time.Time
	}
	killed := make(chan killing, 1)
	s.KillAt(100, func(pid int) {
		children[pid].Process.Signal(syscall.SIGKILL)
		children[pid].Wait()
		killed <- killing{pid, time.Now()}
	})
	w := outbox.NewWriter(sqldb.Postgres, outbox.WithDeleteAfterInsert())
	committed := map[string]bool{}
	var k killing
	for seq := 0; seq < 100; seq++ {
		for _, id := range write(t, db, w, seq, 5, true) {
			committed[id] = true
		}
		time.Sleep(2 * time.Millisecond)
		select {
		case k = <-killed:
		default:
		}
	}
	if k.pid == 0 {
		select {
		case k = <-killed:
		case <-time.After(30 * time.Second):
			t.Fatal("no relay published 100 messages")
		}
	}
	eventually(t, "every committed message after the takeover", func() bool { return s.Unique() == len(committed) })
	checkOrder(t, s.Messages())
	if n := s.Overlaps(); n > 0 {
		t.Fatalf("two relays published at once %d times", n)
	}
	var takeover time.Duration
	for _, b := range s.Batches() {
		if b.Pid != k.pid && b.At.After(k.at) {
			takeover = b.At.Sub(k.at)
			break
		}
	}
	if takeover == 0 || takeover > 5*time.Second {
		t.Fatalf("takeover took %v (lease TTL 1s)", takeover)
	}
	for pid, cmd := range children {
		if pid != k.pid {
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("survivor exited with %v\n%s", err, outputs[pid])
			}
		}
	}
	t.Logf("leader killed at %d messages; survivor published %v later; %d messages, %d duplicates",
		100, takeover.Round(time.Millisecond), len(committed), len(s.Messages())-s.Unique())
}

// TestLeaseOutlivesTheHeartbeat streams for several lease lifetimes with
// a heartbeat interval longer than the lease: the relay must renew the
// lease on its own cadence and keep one stream, so no row is published
// twice (a lapsed lease ends the stream, which restarts from the position
// last confirmed to the server and publishes the rows since again).
func TestLeaseOutlivesTheHeartbeat(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	b, _ := memory.New()
	defer b.Close(context.Background())
	var mu sync.Mutex
	deliveries := map[string]int{}
	sub, err := b.Subscribe(context.Background(), "test", []string{"orders"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		deliveries[m.ID]++
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	const ttl = 400 * time.Millisecond
	relay, err := pgcdc.New(db.DB, db.DSN, b, options(name, pgcdc.WithHeartbeat(time.Minute), pgcdc.WithLeaseTTL(ttl))...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, relay)
	eventually(t, "leadership", func() bool { return relay.Stats().Leader })
	w := outbox.NewWriter(sqldb.Postgres)
	committed := 0
	for end := time.Now().Add(5 * ttl); time.Now().Before(end); committed++ {
		write(t, db, w, committed, 1, true)
		time.Sleep(5 * time.Millisecond)
	}
	eventually(t, "every committed message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries) == committed
	})
	time.Sleep(ttl) // a late restart would redeliver now
	mu.Lock()
	defer mu.Unlock()
	for id, n := range deliveries {
		if n > 1 {
			t.Fatalf("message %s delivered %d times (of %d committed): the stream restarted", id, n, committed)
		}
	}
	if s := relay.Stats(); !s.Leader || s.Published != uint64(committed) {
		t.Fatalf("stats = %+v, want leader with %d published", s, committed)
	}
}
