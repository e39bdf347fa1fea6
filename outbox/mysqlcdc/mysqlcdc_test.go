package mysqlcdc_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/mysqlcdc"
	"github.com/courier-go/courier/sqldb"
)

// The relay processes of the kill -9 test keep the default lease TTL,
// which bounds the takeover.
func TestMain(m *testing.M) {
	relaytest.Main(m, func(c relaytest.Child) (relaytest.Relay, error) {
		src, err := mysqlcdc.NewSource(c.DSN, mysqlcdc.WithHeartbeat(200*time.Millisecond), mysqlcdc.WithStoreInterval(50*time.Millisecond))
		if err != nil {
			return nil, err
		}
		return outbox.NewRelay(c.DB, c.Dialect, c.Sink, outbox.WithSource(src))
	})
}

// newRelay returns a relay of db's outbox that tails the binary log with a
// short heartbeat, store interval and lease, logging nothing, and its
// source; later options win.
func newRelay(t *testing.T, db *testdb.DB, p broker.Producer, opts ...outbox.RelayOption) (*outbox.Relay, *mysqlcdc.Source) {
	t.Helper()
	return newRelayOf(t, db, p, nil, opts...)
}

// newRelayOf is newRelay with options of the source too.
func newRelayOf(t *testing.T, db *testdb.DB, p broker.Producer, srcOpts []mysqlcdc.Option, opts ...outbox.RelayOption) (*outbox.Relay, *mysqlcdc.Source) {
	t.Helper()
	src, err := mysqlcdc.NewSource(db.DSN, append([]mysqlcdc.Option{mysqlcdc.WithHeartbeat(200 * time.Millisecond), mysqlcdc.WithStoreInterval(50 * time.Millisecond)}, srcOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := outbox.NewRelay(db.DB, db.Dialect, p, append([]outbox.RelayOption{outbox.WithSource(src),
		outbox.WithLeaseTTL(time.Second), outbox.WithLogger(relaytest.Quiet())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r, src
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
			db := testdb.MySQL(t)
			b, _ := memory.New()
			defer b.Close(context.Background())
			got := relaytest.Collect(t, b, "orders")
			relay, src := newRelay(t, db, b)
			run(t, relay)
			var wopts []outbox.WriterOption
			if deleteAfter {
				wopts = append(wopts, outbox.WithDeleteAfterInsert())
			}
			w := outbox.NewWriter(sqldb.MySQL, wopts...)
			txs := relaytest.WriteTransactions(t, db.DB, w, 40)
			// Other tables' transactions and DDL in the same log.
			if _, err := db.Exec("CREATE TABLE other (n BIGINT)"); err != nil {
				t.Fatal(err)
			}
			db.Exec("INSERT INTO other VALUES (1)")
			txs.Check(t, got)
			if deleteAfter {
				relaytest.CheckEmpty(t, db.DB)
			}
			relaytest.Eventually(t, "the position to be stored", func() bool {
				var pos int64
				db.QueryRow("SELECT position FROM courier_binlog_position").Scan(&pos)
				return pos > 4 && src.Stored().Offset > 4
			})
			s := relay.Stats()
			if !s.Leader || s.Published != uint64(len(txs.Committed)) || src.Stored().GTID == "" || s.Position == "" || s.LastCommit.IsZero() {
				t.Fatalf("stats = %+v, stored %v", s, src.Stored())
			}
			if lag, err := relay.Lag(context.Background()); err != nil || lag.Bytes < 0 {
				t.Fatalf("lag = %+v, %v", lag, err)
			}
		})
	}
}

// TestResumesFromTheStoredPosition stops a relay, writes while none runs,
// and checks that the next one publishes exactly what was missed.
func TestResumesFromTheStoredPosition(t *testing.T) {
	db := testdb.MySQL(t)
	b, _ := memory.New()
	defer b.Close(context.Background())
	got := relaytest.Collect(t, b, "orders")
	w := outbox.NewWriter(sqldb.MySQL)
	first, _ := newRelay(t, db, b)
	if err := first.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	for seq := range 10 {
		relaytest.WriteOrders(t, db.DB, w, seq, 2, true)
	}
	relaytest.Eventually(t, "the first messages", func() bool { return got.Count() == 20 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for seq := 10; seq < 20; seq++ {
		relaytest.WriteOrders(t, db.DB, w, seq, 2, true)
	}
	second, _ := newRelay(t, db, b)
	run(t, second)
	relaytest.Eventually(t, "the messages written while no relay ran", func() bool { return got.Count() == 40 })
	time.Sleep(300 * time.Millisecond)
	if n := len(got.All()); n != 40 {
		t.Fatalf("%d deliveries of 40 messages: the stored position was not used", n)
	}
	relaytest.CheckOrder(t, got.All())
}

func TestBadRowsAndRefusedSetups(t *testing.T) {
	db := testdb.MySQL(t)
	b, _ := memory.New()
	defer b.Close(context.Background())
	dead := relaytest.Collect(t, b, outbox.DefaultDeadLetterChannel)
	relay, _ := newRelay(t, db, b)
	run(t, relay)
	relaytest.Eventually(t, "the relay to lead", func() bool { return relay.Stats().Leader })
	if _, err := db.Exec("INSERT INTO message (id, destination, headers, payload, published, creation_time) VALUES ('bad', 'orders', '{oops', 'x', 0, 0)"); err != nil {
		t.Fatal(err)
	}
	relaytest.Eventually(t, "the bad row in the dead-letter channel", func() bool { return dead.Count() == 1 })
	if r := dead.All()[0].Header(message.HeaderDeadLetterReason); !strings.Contains(r, "undecodable headers") {
		t.Fatalf("reason = %q", r)
	}

	t.Run("missing schema", func(t *testing.T) {
		empty := testdb.MySQL(t)
		empty.Exec("DROP TABLE message")
		r, _ := newRelay(t, empty, b)
		if err := r.Run(context.Background()); !errors.Is(err, sqldb.ErrSchemaMissing) {
			t.Fatalf("Run without the outbox table = %v", err)
		}
	})
	t.Run("column layout", func(t *testing.T) {
		odd := testdb.MySQL(t)
		if _, err := odd.Exec("ALTER TABLE message MODIFY headers BIGINT NOT NULL"); err != nil {
			t.Fatal(err)
		}
		r, _ := newRelay(t, odd, b)
		if err := r.Run(context.Background()); !errors.Is(err, mysqlcdc.ErrColumnLayout) || !strings.Contains(err.Error(), "headers") {
			t.Fatalf("Run with a BIGINT headers column = %v", err)
		}
	})
	t.Run("statement format", func(t *testing.T) {
		// The session's binlog_format stands in for a server configured so.
		dsn := db.DSN + "&binlog_format=%27STATEMENT%27"
		if !strings.Contains(db.DSN, "?") {
			dsn = db.DSN + "?binlog_format=%27STATEMENT%27"
		}
		stmt, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		src, err := mysqlcdc.NewSource(dsn)
		if err != nil {
			t.Fatal(err)
		}
		r, err := outbox.NewRelay(stmt, sqldb.MySQL, b, outbox.WithSource(src), outbox.WithLogger(relaytest.Quiet()))
		if err != nil {
			t.Fatal(err)
		}
		err = r.Run(context.Background())
		if !errors.Is(err, mysqlcdc.ErrBinlogOff) || !strings.Contains(err.Error(), "binlog_format = ROW") {
			t.Fatalf("Run with binlog_format=STATEMENT = %v", err)
		}
	})
	t.Run("options", func(t *testing.T) {
		for _, opt := range []mysqlcdc.Option{mysqlcdc.WithHeartbeat(time.Microsecond), mysqlcdc.WithServerID(0),
			mysqlcdc.WithStoreInterval(0)} {
			if _, err := mysqlcdc.NewSource(db.DSN, opt); err == nil {
				t.Error("an invalid option was accepted")
			}
		}
		for _, opt := range []outbox.RelayOption{outbox.WithName(""), outbox.WithLeaseTTL(time.Millisecond),
			outbox.WithDeadLetterChannel(""), outbox.WithLogger(nil), outbox.WithPollInterval(time.Second)} {
			src, err := mysqlcdc.NewSource(db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := outbox.NewRelay(db.DB, db.Dialect, b, outbox.WithSource(src), opt); err == nil {
				t.Error("an invalid relay option was accepted")
			}
		}
		if _, err := mysqlcdc.NewSource("courier:courier@tcp(127.0.0.1:3306)/"); err == nil {
			t.Error("a DSN without a database was accepted")
		}
		src, _ := mysqlcdc.NewSource(db.DSN)
		if _, err := outbox.NewRelay(testdb.SQLite(t).DB, sqldb.SQLite, b, outbox.WithSource(src)); err == nil {
			t.Error("a relay on SQLite took a MySQL source")
		}
	})
}

// The outage counts as publish errors.
func TestBrokerOutage(t *testing.T) {
	db := testdb.MySQL(t)
	relaytest.BrokerOutage(t, db, func(p broker.Producer) func() uint64 {
		relay, _ := newRelay(t, db, p)
		run(t, relay)
		return func() uint64 { return relay.Stats().PublishErrors }
	})
}

func TestRelayProcessKilledMidStream(t *testing.T) {
	db := testdb.MySQL(t)
	setup, _ := newRelay(t, db, testsink.Producer{})
	if err := setup.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	relaytest.KillLeaderMidStream(t, db)
}

// TestStopsWhenAnotherTakesTheLease hands the lease to another owner
// while the relay streams: the relay must stop leading and publishing,
// and take over again, publishing what it missed, once the lease is free.
func TestStopsWhenAnotherTakesTheLease(t *testing.T) {
	db := testdb.MySQL(t)
	b, _ := memory.New()
	defer b.Close(context.Background())
	got := relaytest.Collect(t, b, "orders")
	relay, _ := newRelay(t, db, b)
	run(t, relay)
	w := outbox.NewWriter(sqldb.MySQL)
	relaytest.WriteOrders(t, db.DB, w, 0, 2, true)
	relaytest.Eventually(t, "the first messages", func() bool { return got.Count() == 2 })
	if _, err := db.Exec("UPDATE courier_lease SET owner = 'other', token = token + 1, expires_at = ? WHERE name = 'outbox:outbox'",
		time.Now().Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	relaytest.Eventually(t, "the relay to stop leading", func() bool { return !relay.Stats().Leader })
	relaytest.WriteOrders(t, db.DB, w, 1, 2, true)
	time.Sleep(time.Second) // the lease TTL
	if n := got.Count(); n != 2 {
		t.Fatalf("%d messages published without the lease", n)
	}
	if _, err := db.Exec("UPDATE courier_lease SET owner = '', expires_at = 0 WHERE name = 'outbox:outbox'"); err != nil {
		t.Fatal(err)
	}
	relaytest.Eventually(t, "the messages written while another held the lease", func() bool { return got.Count() == 4 })
	relaytest.CheckOrder(t, got.All())
	if !relay.Stats().Leader {
		t.Fatal("the relay does not lead after taking the lease again")
	}
}
