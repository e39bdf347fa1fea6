package relaytest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testserver"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// The relay processes are the test binary started again with childEnv
// set; the other variables tell them the database and the sink.
const (
	childEnv   = "COURIER_RELAYTEST_CHILD"
	dialectEnv = "COURIER_TEST_DIALECT"
	driverEnv  = "COURIER_TEST_DRIVER"
	dsnEnv     = "COURIER_TEST_DSN"
	sinkEnv    = "COURIER_TEST_SINK"
)

// Main is a test binary's TestMain for tests that start relay processes
// (StartRelays): in such a process it runs the relay newRelay returns
// instead of the tests, until SIGTERM.
func Main(m *testing.M, newRelay func(Child) (Relay, error)) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild(newRelay))
	}
	os.Exit(m.Run())
}

// Child is what a relay process gets from the test that started it.
type Child struct {
	DB      *sql.DB
	Dialect *sqldb.Dialect
	// DSN opens DB again.
	DSN string
	// Sink publishes to the test's testsink.Sink.
	Sink testsink.Producer
}

func runChild(newRelay func(Child) (Relay, error)) int {
	d, err := sqldb.ByName(os.Getenv(dialectEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	db, err := sql.Open(os.Getenv(driverEnv), os.Getenv(dsnEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	relay, err := newRelay(Child{DB: db, Dialect: d, DSN: os.Getenv(dsnEnv), Sink: testsink.Producer{URL: os.Getenv(sinkEnv)}})
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

// Relays are relay processes that publish to a testsink.Sink, which kills
// the one that publishes while it waits for a confirmation.
type Relays struct {
	t       testing.TB
	sink    *testsink.Sink
	cmds    map[int]*exec.Cmd
	outputs map[int]*bytes.Buffer
	killed  chan Kill
}

// Kill says which relay process the Sink killed, and when.
type Kill struct {
	Pid int
	At  time.Time
}

// StartRelays starts n relay processes (see Main) on db that publish to
// sink, served at sinkURL, with env added to their environment. The sink
// kills (SIGKILL) the process whose publish brings it to killAt distinct
// messages, before confirming that publish. The processes that still run
// are killed when the test ends.
func StartRelays(t testing.TB, n int, db *testdb.DB, sink *testsink.Sink, sinkURL string, killAt int, env ...string) *Relays {
	t.Helper()
	r := &Relays{t: t, sink: sink, cmds: map[int]*exec.Cmd{}, outputs: map[int]*bytes.Buffer{}, killed: make(chan Kill, 1)}
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), childEnv+"=1", dialectEnv+"="+db.Dialect.Name(), driverEnv+"="+db.Driver,
			dsnEnv+"="+db.DSN, sinkEnv+"="+sinkURL), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		r.cmds[cmd.Process.Pid], r.outputs[cmd.Process.Pid] = cmd, &out
	}
	sink.KillAt(killAt, func(pid int) {
		r.cmds[pid].Process.Signal(syscall.SIGKILL)
		r.cmds[pid].Wait()
		r.killed <- Kill{pid, time.Now()}
	})
	return r
}

// Killed waits for the kill, for up to 30 seconds.
func (r *Relays) Killed() Kill {
	r.t.Helper()
	select {
	case k := <-r.killed:
		r.killed <- k // for the next call
		return k
	case <-time.After(30 * time.Second):
		r.t.Fatal("no relay process was killed: too few messages published")
		return Kill{}
	}
}

// Takeover checks that no two processes published at once, and that a
// survivor published within limit of the kill; it returns how long that
// took.
func (r *Relays) Takeover(limit time.Duration) time.Duration {
	r.t.Helper()
	k := r.Killed()
	if n := r.sink.Overlaps(); n > 0 {
		r.t.Fatalf("two relays published at the same time %d times", n)
	}
	var takeover time.Duration
	for _, b := range r.sink.Batches() {
		if b.Pid != k.Pid && b.At.After(k.At) {
			takeover = b.At.Sub(k.At)
			break
		}
	}
	if takeover == 0 || takeover > limit {
		r.t.Fatalf("the surviving relay took %v to publish after the leader died (at most %v)", takeover, limit)
	}
	return takeover
}

// Stop stops the surviving processes with SIGTERM, and fails the test if
// one exits with an error.
func (r *Relays) Stop() {
	r.t.Helper()
	k := r.Killed()
	for pid, cmd := range r.cmds {
		if pid == k.Pid {
			continue
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			r.t.Errorf("surviving relay exited with %v\n%s", err, r.outputs[pid])
		}
	}
}

// KillLeaderMidStream is the kill -9 test of the log-tailing relays. Two
// relay processes (see Main) run on db, whose relay is set up; the one
// that publishes is killed at the 100th message while 500 are written.
// The survivor must publish every message, in order, within 5 seconds of
// the kill, and never while the other published.
func KillLeaderMidStream(t *testing.T, db *testdb.DB, env ...string) {
	t.Helper()
	s := testsink.New(3 * time.Millisecond)
	srv := httptest.NewServer(s)
	defer srv.Close()
	relays := StartRelays(t, 2, db, s, srv.URL, 100, env...)
	w := outbox.NewWriter(db.Dialect, outbox.WithDeleteAfterInsert())
	committed := map[string]bool{}
	for seq := range 100 {
		for _, id := range WriteOrders(t, db.DB, w, seq, 5, true) {
			committed[id] = true
		}
		time.Sleep(2 * time.Millisecond)
	}
	relays.Killed()
	Eventually(t, "every committed message after the takeover", func() bool { return s.Unique() == len(committed) })
	CheckOrder(t, s.Messages())
	takeover := relays.Takeover(5 * time.Second)
	relays.Stop()
	t.Logf("leader killed at %d messages; survivor published %v later; %d messages, %d duplicates",
		100, takeover.Round(time.Millisecond), len(committed), len(s.Messages())-s.Unique())
}

// BrokerOutage is the broker outage test of the log-tailing relays. start
// runs a relay on db that publishes with p, and returns how to read the
// relay's error count. The relay must publish nothing while the broker
// refuses, count errors, and publish everything in order once the broker
// is back.
func BrokerOutage(t *testing.T, db *testdb.DB, start func(p broker.Producer) (errors func() uint64)) {
	t.Helper()
	var down atomic.Bool
	s := testsink.New(0)
	s.Refuse = down.Load
	srv := httptest.NewServer(s)
	defer srv.Close()
	errs := start(testsink.Producer{URL: srv.URL})
	w := outbox.NewWriter(db.Dialect)
	total := 0
	for seq := range 10 {
		total += len(WriteOrders(t, db.DB, w, seq, 5, true))
	}
	Eventually(t, "the first messages", func() bool { return s.Unique() == total })
	down.Store(true)
	for seq := 10; seq < 40; seq++ {
		total += len(WriteOrders(t, db.DB, w, seq, 5, true))
	}
	time.Sleep(3 * time.Second) // the broker stays down for a while
	if s.Unique() != 50 {
		t.Fatalf("%d messages confirmed by a broker that was down", s.Unique())
	}
	down.Store(false)
	Eventually(t, "every message after the outage", func() bool { return s.Unique() == total })
	CheckOrder(t, s.Messages())
	if errs() == 0 {
		t.Fatal("the outage was not counted as errors")
	}
}

// RestartMidStream is the database restart test of the log-tailing
// relays. start runs a relay on db that publishes with p, and returns how
// to read the relay's error count; restart restarts the database server
// (see internal/testserver). The relay must publish, in order, every
// message committed before and after the restart.
func RestartMidStream(t *testing.T, db *testdb.DB, start func(p broker.Producer) (errors func() uint64), restart testserver.Restart) {
	t.Helper()
	s := testsink.New(0)
	srv := httptest.NewServer(s)
	defer srv.Close()
	errs := start(testsink.Producer{URL: srv.URL})
	w := outbox.NewWriter(db.Dialect)
	for seq := range 50 {
		writeOrderRetrying(t, db.DB, w, seq)
	}
	Eventually(t, "the first 50 messages", func() bool { return s.Unique() == 50 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	err := restart(ctx)
	cancel()
	if err != nil {
		t.Fatalf("restarting the database: %v", err)
	}
	for seq := 50; seq < 100; seq++ {
		writeOrderRetrying(t, db.DB, w, seq)
	}
	Eventually(t, "every message after the restart", func() bool { return s.Unique() == 100 })
	CheckOrder(t, s.Messages())
	t.Logf("100 messages delivered across a server restart, %d duplicates, %d relay errors",
		len(s.Messages())-s.Unique(), errs())
}
