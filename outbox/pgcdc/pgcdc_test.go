package pgcdc_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/sqldb"
)

// The relay processes of the kill -9 test keep the default lease TTL,
// which bounds the takeover.
func TestMain(m *testing.M) {
	relaytest.Main(m, func(c relaytest.Child) (relaytest.Relay, error) {
		name := os.Getenv("COURIER_TEST_NAME")
		src, err := pgcdc.NewSource(c.DSN, pgcdc.WithSlot(name), pgcdc.WithPublication(name), pgcdc.WithHeartbeat(100*time.Millisecond))
		if err != nil {
			return nil, err
		}
		return outbox.NewRelay(c.DB, c.Dialect, c.Sink, outbox.WithSource(src), outbox.WithName(name))
	})
}

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

// newRelay returns a relay of db's outbox that tails the log through the
// slot and publication name, with a short heartbeat and lease, logging
// nothing; later options win.
func newRelay(t *testing.T, db *testdb.DB, p broker.Producer, name string, srcOpts []pgcdc.Option, opts ...outbox.RelayOption) *outbox.Relay {
	t.Helper()
	src, err := pgcdc.NewSource(db.DSN, append([]pgcdc.Option{pgcdc.WithSlot(name), pgcdc.WithPublication(name),
		pgcdc.WithHeartbeat(100 * time.Millisecond)}, srcOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := outbox.NewRelay(db.DB, db.Dialect, p, append([]outbox.RelayOption{outbox.WithSource(src), outbox.WithName(name),
		outbox.WithLeaseTTL(time.Second), outbox.WithLogger(relaytest.Quiet())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run sets r up and runs it until the test ends.
func run(t *testing.T, r *outbox.Relay) {
	t.Helper()
	if err := r.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	relaytest.Run(t, r)
}

func TestTailingPublishesCommittedTransactionsInOrder(t *testing.T) {
	for _, deleteAfter := range []bool{false, true} {
		t.Run(fmt.Sprint("deleteAfterInsert=", deleteAfter), func(t *testing.T) {
			db := testdb.Postgres(t)
			name := names(t, db)
			b, _ := memory.New()
			defer b.Close(context.Background())
			got := relaytest.Collect(t, b, "orders")
			relay := newRelay(t, db, b, name, nil)
			run(t, relay)
			var wopts []outbox.WriterOption
			if deleteAfter {
				wopts = append(wopts, outbox.WithDeleteAfterInsert())
			}
			w := outbox.NewWriter(sqldb.Postgres, wopts...)
			txs := relaytest.WriteTransactions(t, db.DB, w, 30)
			txs.Check(t, got)
			if deleteAfter {
				relaytest.CheckEmpty(t, db.DB)
			}
			s := relay.Stats()
			if !s.Leader || s.Published != uint64(len(txs.Committed)) || s.Position == "0/0" || s.LastCommit.IsZero() {
				t.Fatalf("stats = %+v", s)
			}
		})
	}
}

func TestHeartbeatAdvancesAnIdleSlot(t *testing.T) {
	testIdleSlotAdvances(t, nil)
}

// TestKeepaliveAdvancesAnIdleSlot: without a heartbeat due, the server's
// keepalives move the slot past other tables' WAL while the outbox is
// idle, so that the slot holds no WAL it need not and a server shutting
// down does not wait for the relay to confirm its end of WAL.
func TestKeepaliveAdvancesAnIdleSlot(t *testing.T) {
	if took := testIdleSlotAdvances(t, []pgcdc.Option{pgcdc.WithHeartbeat(time.Hour)}); took > 5*time.Second {
		t.Fatalf("the slot took %v to move past the idle outbox's WAL: the keepalives did not move it", took)
	}
}

// testIdleSlotAdvances checks that the slot's confirmed position moves
// past writes to another table while the outbox stays idle, and returns
// how long that took.
func testIdleSlotAdvances(t *testing.T, srcOpts []pgcdc.Option) time.Duration {
	db := testdb.Postgres(t)
	name := names(t, db)
	b, _ := memory.New()
	defer b.Close(context.Background())
	relay := newRelay(t, db, b, name, srcOpts)
	run(t, relay)
	if _, err := db.Exec("CREATE TABLE other (n BIGINT)"); err != nil {
		t.Fatal(err)
	}
	slotLSN := func() string {
		var lsn sql.NullString
		db.QueryRow("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", name).Scan(&lsn)
		return lsn.String
	}
	relaytest.Eventually(t, "the slot to exist", func() bool { return slotLSN() != "" })
	start := slotLSN()
	// Other tables fill the WAL; the outbox stays idle.
	for i := range 200 {
		db.Exec("INSERT INTO other VALUES ($1)", i)
	}
	var walNow string
	db.QueryRow("SELECT pg_current_wal_lsn()::text").Scan(&walNow)
	written := time.Now()
	relaytest.Eventually(t, "the slot to move past the other table's writes", func() bool {
		return lsnOf(t, slotLSN()) >= lsnOf(t, walNow)
	})
	took := time.Since(written)
	t.Logf("slot moved from %s to %s in %v while the outbox was idle", start, slotLSN(), took.Round(time.Millisecond))
	return took
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
	dead := relaytest.Collect(t, b, outbox.DefaultDeadLetterChannel)
	relay := newRelay(t, db, b, name, nil)
	run(t, relay)
	relaytest.Eventually(t, "the relay to lead", func() bool { return relay.Stats().Leader })
	time.Sleep(200 * time.Millisecond) // let the stream start
	if _, err := db.Exec("INSERT INTO message (id, destination, headers, payload, published, creation_time) VALUES ('bad', 'orders', '{oops', 'x', 0, 0)"); err != nil {
		t.Fatal(err)
	}
	relaytest.Eventually(t, "the bad row in the dead-letter channel", func() bool { return dead.Count() == 1 })
	if r := dead.All()[0].Header(message.HeaderDeadLetterReason); !strings.Contains(r, "undecodable headers") {
		t.Fatalf("reason = %q", r)
	}

	empty := testdb.Postgres(t)
	empty.Exec("DROP TABLE message")
	r2 := newRelay(t, empty, b, names(t, empty), nil)
	if err := r2.Run(context.Background()); !errors.Is(err, sqldb.ErrSchemaMissing) {
		t.Fatalf("Run without the outbox table = %v", err)
	}
	if _, err := pgcdc.NewSource(db.DSN, pgcdc.WithSlot("Bad-Name")); err == nil {
		t.Fatal("an invalid slot name was accepted")
	}
	for _, opt := range []pgcdc.Option{pgcdc.WithPublication(""), pgcdc.WithHeartbeat(time.Microsecond)} {
		if _, err := pgcdc.NewSource(db.DSN, opt); err == nil {
			t.Error("an invalid option was accepted")
		}
	}
	src, err := pgcdc.NewSource(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.NewRelay(testdb.SQLite(t).DB, sqldb.SQLite, b, outbox.WithSource(src)); err == nil {
		t.Fatal("a relay on SQLite took a PostgreSQL source")
	}
	if _, err := outbox.NewRelay(db.DB, sqldb.Postgres, b, outbox.WithSource(src), outbox.WithBatchSize(5)); err == nil {
		t.Fatal("a table poller's option was accepted beside a log-tailing source")
	}
}

// The outage counts as publish errors.
func TestBrokerOutage(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	relaytest.BrokerOutage(t, db, func(p broker.Producer) func() uint64 {
		relay := newRelay(t, db, p, name, nil)
		run(t, relay)
		return func() uint64 { return relay.Stats().PublishErrors }
	})
}

func TestRelayProcessKilledMidStream(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	setup := newRelay(t, db, testsink.Producer{}, name, nil)
	if err := setup.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	relaytest.KillLeaderMidStream(t, db, "COURIER_TEST_NAME="+name)
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
	got := relaytest.Collect(t, b, "orders")
	const ttl = 400 * time.Millisecond
	relay := newRelay(t, db, b, name, []pgcdc.Option{pgcdc.WithHeartbeat(time.Minute)}, outbox.WithLeaseTTL(ttl))
	run(t, relay)
	relaytest.Eventually(t, "leadership", func() bool { return relay.Stats().Leader })
	w := outbox.NewWriter(sqldb.Postgres)
	committed := 0
	for end := time.Now().Add(5 * ttl); time.Now().Before(end); committed++ {
		relaytest.WriteOrders(t, db.DB, w, committed, 1, true)
		time.Sleep(5 * time.Millisecond)
	}
	relaytest.Eventually(t, "every committed message", func() bool { return got.Count() == committed })
	time.Sleep(ttl) // a late restart would redeliver now
	if n := len(got.All()); n != committed {
		t.Fatalf("%d deliveries of %d committed messages: the stream restarted", n, committed)
	}
	if s := relay.Stats(); !s.Leader || s.Published != uint64(committed) {
		t.Fatalf("stats = %+v, want leader with %d published", s, committed)
	}
}

// A slot of the relay's name that belongs to another database is refused
// at start, naming the slot, its database and the relay's, before the
// relay takes the lease: not retried with a warning while it leads.
func TestSlotOfAnotherDatabaseIsRefused(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres" // every cluster has it
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	other, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if _, err := other.Exec("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", name); err != nil {
		t.Fatalf("creating a slot in database postgres: %v", err)
	}
	t.Cleanup(func() { other.Exec("SELECT pg_drop_replication_slot($1)", name) })
	var ours string
	if err := db.QueryRow("SELECT current_database()").Scan(&ours); err != nil {
		t.Fatal(err)
	}

	b, _ := memory.New()
	defer b.Close(context.Background())
	relay := newRelay(t, db, b, name, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = relay.Run(ctx)
	if !errors.Is(err, pgcdc.ErrSlotMismatch) || ctx.Err() != nil {
		t.Fatalf("Run = %v (context: %v), want pgcdc.ErrSlotMismatch at once", err, ctx.Err())
	}
	for _, want := range []string{`"` + name + `"`, `database "postgres"`, `"` + ours + `"`} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %s", err, want)
		}
	}
	var leases int
	if err := db.QueryRow("SELECT COUNT(*) FROM courier_lease WHERE owner <> ''").Scan(&leases); err != nil {
		t.Fatal(err)
	}
	if leases != 0 || relay.Stats().Leader {
		t.Fatal("the relay took the lease with a slot it cannot use")
	}
	t.Log(err)
}
