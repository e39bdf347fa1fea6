package mysqlcdc_test

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

	_ "github.com/go-sql-driver/mysql"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/mysqlcdc"
	"github.com/courier-go/courier/sqldb"
)

const childEnv = "COURIER_MYSQLCDC_TEST_RELAY"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func options(extra ...mysqlcdc.Option) []mysqlcdc.Option {
	return append([]mysqlcdc.Option{mysqlcdc.WithHeartbeat(200 * time.Millisecond), mysqlcdc.WithLeaseTTL(time.Second),
		mysqlcdc.WithStoreInterval(50 * time.Millisecond), mysqlcdc.WithLogger(quiet())}, extra...)
}

func run(t *testing.T, r *mysqlcdc.Relay) {
	t.Helper()
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
func write(t *testing.T, db *sql.DB, w *outbox.Writer, seq, keys int, commit bool) []string {
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
			db := testdb.MySQL(t)
			b, _ := memory.New()
			defer b.Close(context.Background())
			got := &received{ids: map[string]bool{}}
			sub, err := b.Subscribe(context.Background(), "test", []string{"orders"}, broker.HandlerFunc(got.handler))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close(context.Background())
			relay, err := mysqlcdc.New(db.DB, db.DSN, b, options()...)
			if err != nil {
				t.Fatal(err)
			}
			run(t, relay)
			var wopts []outbox.WriterOption
			if deleteAfter {
				wopts = append(wopts, outbox.WithDeleteAfterInsert())
			}
			w := outbox.NewWriter(sqldb.MySQL, wopts...)
			committed := map[string]bool{}
			var rolledBack []string
			for seq := range 40 {
				ids := write(t, db.DB, w, seq, 5, seq%4 != 1)
				for _, id := range ids {
					if seq%4 != 1 {
						committed[id] = true
					} else {
						rolledBack = append(rolledBack, id)
					}
				}
			}
			// Other tables' transactions and DDL in the same log.
			if _, err := db.Exec("CREATE TABLE other (n BIGINT)"); err != nil {
				t.Fatal(err)
			}
			db.Exec("INSERT INTO other VALUES (1)")
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
			eventually(t, "the position to be stored", func() bool {
				var pos int64
				db.QueryRow("SELECT position FROM courier_binlog_position").Scan(&pos)
				return pos > 4 && relay.Stats().Stored.Offset > 4
			})
			s := relay.Stats()
			if !s.Leader || s.Published != uint64(len(committed)) || s.Stored.GTID == "" || s.LastCommit.IsZero() {
				t.Fatalf("stats = %+v", s)
			}
			if lag, err := relay.Lag(context.Background()); err != nil || lag < 0 {
				t.Fatalf("lag = %d, %v", lag, err)
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
	got := &received{ids: map[string]bool{}}
	sub, _ := b.Subscribe(context.Background(), "test", []string{"orders"}, broker.HandlerFunc(got.handler))
	defer sub.Close(context.Background())
	w := outbox.NewWriter(sqldb.MySQL)
	first, _ := mysqlcdc.New(db.DB, db.DSN, b, options()...)
	if err := first.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	for seq := range 10 {
		write(t, db.DB, w, seq, 2, true)
	}
	eventually(t, "the first messages", func() bool { return got.count() == 20 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for seq := 10; seq < 20; seq++ {
		write(t, db.DB, w, seq, 2, true)
	}
	second, _ := mysqlcdc.New(db.DB, db.DSN, b, options()...)
	run(t, second)
	eventually(t, "the messages written while no relay ran", func() bool { return got.count() == 40 })
	time.Sleep(300 * time.Millisecond)
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.msgs) != 40 {
		t.Fatalf("%d deliveries of 40 messages: the stored position was not used", len(got.msgs))
	}
	checkOrder(t, got.msgs)
}

func TestBadRowsAndRefusedSetups(t *testing.T) {
	db := testdb.MySQL(t)
	b, _ := memory.New()
	defer b.Close(context.Background())
	dead := &received{ids: map[string]bool{}}
	sub, _ := b.Subscribe(context.Background(), "ops", []string{outbox.DefaultDeadLetterChannel}, broker.HandlerFunc(dead.handler))
	defer sub.Close(context.Background())
	relay, err := mysqlcdc.New(db.DB, db.DSN, b, options()...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, relay)
	eventually(t, "the relay to lead", func() bool { return relay.Stats().Leader })
	if _, err := db.Exec("INSERT INTO message (id, destination, headers, payload, published, creation_time) VALUES ('bad', 'orders', '{oops', 'x', 0, 0)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bad row in the dead-letter channel", func() bool { return dead.count() == 1 })
	if r := dead.msgs[0].Header(message.HeaderDeadLetterReason); !strings.Contains(r, "undecodable headers") {
		t.Fatalf("reason = %q", r)
	}

	t.Run("missing schema", func(t *testing.T) {
		empty := testdb.MySQL(t)
		empty.Exec("DROP TABLE message")
		r, _ := mysqlcdc.New(empty.DB, empty.DSN, b, options()...)
		if err := r.Run(context.Background()); !errors.Is(err, sqldb.ErrSchemaMissing) {
			t.Fatalf("Run without the outbox table = %v", err)
		}
	})
	t.Run("column layout", func(t *testing.T) {
		odd := testdb.MySQL(t)
		if _, err := odd.Exec("ALTER TABLE message MODIFY headers BIGINT NOT NULL"); err != nil {
			t.Fatal(err)
		}
		r, _ := mysqlcdc.New(odd.DB, odd.DSN, b, options()...)
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
		r, _ := mysqlcdc.New(stmt, dsn, b, options()...)
		err = r.Run(context.Background())
		if !errors.Is(err, mysqlcdc.ErrBinlogOff) || !strings.Contains(err.Error(), "binlog_format = ROW") {
			t.Fatalf("Run with binlog_format=STATEMENT = %v", err)
		}
	})
	t.Run("options", func(t *testing.T) {
		for _, opt := range []mysqlcdc.Option{mysqlcdc.WithName(""), mysqlcdc.WithHeartbeat(time.Microsecond),
			mysqlcdc.WithLeaseTTL(time.Millisecond), mysqlcdc.WithServerID(0), mysqlcdc.WithDeadLetterChannel(""),
			mysqlcdc.WithLogger(nil), mysqlcdc.WithStoreInterval(0)} {
			if _, err := mysqlcdc.New(db.DB, db.DSN, b, opt); err == nil {
				t.Error("an invalid option was accepted")
			}
		}
		if _, err := mysqlcdc.New(db.DB, "courier:courier@tcp(127.0.0.1:3306)/", b); err == nil {
			t.Error("a DSN without a database was accepted")
		}
	})
}

func TestBrokerOutage(t *testing.T) {
	db := testdb.MySQL(t)
	var down atomic.Bool
	s := testsink.New(0)
	s.Refuse = down.Load
	srv := httptest.NewServer(s)
	defer srv.Close()
	relay, err := mysqlcdc.New(db.DB, db.DSN, testsink.Producer{URL: srv.URL}, options()...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, relay)
	w := outbox.NewWriter(sqldb.MySQL)
	total := 0
	for seq := range 10 {
		total += len(write(t, db.DB, w, seq, 5, true))
	}
	eventually(t, "the first messages", func() bool { return s.Unique() == total })
	down.Store(true)
	for seq := 10; seq < 40; seq++ {
		total += len(write(t, db.DB, w, seq, 5, true))
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
	dsn := os.Getenv("COURIER_TEST_DSN")
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	relay, err := mysqlcdc.New(db, dsn, testsink.Producer{URL: os.Getenv("COURIER_TEST_SINK")},
		mysqlcdc.WithHeartbeat(200*time.Millisecond), mysqlcdc.WithLeaseTTL(time.Second), mysqlcdc.WithStoreInterval(50*time.Millisecond))
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
	db := testdb.MySQL(t)
	s := testsink.New(3 * time.Millisecond)
	srv := httptest.NewServer(s)
	defer srv.Close()
	setup, err := mysqlcdc.New(db.DB, db.DSN, testsink.Producer{URL: srv.URL}, options()...)
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
		cmd.Env = append(os.Environ(), childEnv+"=1", "COURIER_TEST_DSN="+db.DSN, "COURIER_TEST_SINK="+srv.URL)
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
	w := outbox.NewWriter(sqldb.MySQL, outbox.WithDeleteAfterInsert())
	committed := map[string]bool{}
	var k killing
	for seq := 0; seq < 100; seq++ {
		for _, id := range write(t, db.DB, w, seq, 5, true) {
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
