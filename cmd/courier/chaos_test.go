package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testenv"
	"github.com/courier-go/courier/internal/testproc"
	"github.com/courier-go/courier/internal/testserver"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// A chaosFault is one fault TestChaos injects.
type chaosFault int

const (
	killRelay       chaosFault = iota // kill -9 of the relay that leads, started again as a standby
	killConsumer                      // kill -9 of a consumer process, started again
	restartBroker                     // NATS: the server process stopped and started on its directory; RabbitMQ: stop_app, start_app
	restartDatabase                   // PostgreSQL: pg_ctlcluster restart; MariaDB: shutdown and start
)

// chaosFaults are the faults of each run, in turn.
var chaosFaults = []chaosFault{killRelay, killConsumer, restartBroker, killRelay, killConsumer, restartDatabase, killRelay, killConsumer}

// chaosSetup is one combination of database, broker and relay mode.
type chaosSetup struct {
	name    string
	dialect *sqldb.Dialect
	nats    bool // NATS JetStream, served by a process of its own; RabbitMQ otherwise
	tail    bool // courier relay -mode tail, the writers deleting each row after inserting it; -mode poll otherwise
}

// chaosSetups: every database with every broker, the relays polling; and
// the log-tailing relays, on PostgreSQL (logical replication) with NATS
// and on MariaDB (binary log) with RabbitMQ.
var chaosSetups = []chaosSetup{
	{"postgres+nats", sqldb.Postgres, true, false},
	{"postgres+rabbitmq", sqldb.Postgres, false, false},
	{"mariadb+nats", sqldb.MySQL, true, false},
	{"mariadb+rabbitmq", sqldb.MySQL, false, false},
	{"postgres+nats/tail", sqldb.Postgres, true, true},
	{"mariadb+rabbitmq/tail", sqldb.MySQL, false, true},
}

// The load: chaosWriters goroutines each commit, chaosTxPerSecond times a
// second, a transaction with one message for each of its
// chaosKeysPerWriter partition keys; every tenth transaction is rolled
// back instead.
const (
	chaosWriters       = 4
	chaosKeysPerWriter = 8
	chaosTxPerSecond   = 8
)

// Bounds of the waits: for the pipeline to move again after a fault, for
// a standby relay to publish after the leader was killed, for a server
// restart, and for the backlog to drain after the last fault, or stall
// there: NATS JetStream resumes a dead consumer's shards within its
// membership TTL and ack wait, 15s by default.
const (
	chaosProgressTimeout = 90 * time.Second
	chaosTakeoverTimeout = 30 * time.Second
	chaosRestartTimeout  = 3 * time.Minute
	chaosDrainTimeout    = 3 * time.Minute
	chaosStall           = 30 * time.Second
)

// TestChaos runs the outbox → relay → broker → consumer pipeline in real
// processes on real servers while it injects faults, and checks Courier's
// promises end to end.
//
// Writers in the test commit business rows with outbox messages on 32
// partition keys, about 250 messages a second. Two `courier relay`
// processes publish the outbox (one leads, one stands by). Two consumer
// processes (see chaosConsumer) apply each message's effect in the
// transaction in which the inbox records it. Meanwhile the faults of
// chaosFaults strike in turn: the relay that leads is killed with SIGKILL
// three times (and started again as a standby), a consumer is killed with
// SIGKILL three times (and started again), the broker is restarted once
// and the database once; after each fault the test waits until effects
// are applied again. Once the writers stopped and every message's effect
// was applied, it checks that no committed message was lost, no
// rolled-back one delivered, no effect applied twice, no message
// dead-lettered, and each key's effects applied in the order the rows
// were written, and prints what it measured.
//
// It restarts shared servers, so it runs only with COURIER_RESTART_TESTS=1
// (scripts/test runs it in a step of its own), on PostgreSQL and MariaDB,
// each with NATS JetStream and with RabbitMQ (see chaosSetups).
func TestChaos(t *testing.T) {
	testenv.RequireRestarts(t, "PostgreSQL, MariaDB and RabbitMQ")
	var results []*chaosResult
	for _, s := range chaosSetups {
		t.Run(s.name, func(t *testing.T) {
			r := runChaos(t, s)
			results = append(results, r)
			t.Log(r)
		})
	}
	if len(results) > 0 {
		t.Log("\n" + chaosTable(results))
	}
}

// chaosResult is what one combination's run measured.
type chaosResult struct {
	setup      chaosSetup
	messages   int // committed messages
	rolledBack int // messages of rolled-back transactions
	// What the checks found: committed messages never applied, messages
	// applied more than once, applied out of their key's order, and
	// applied though their transaction rolled back.
	lost, twice, misordered, unknown int
	deadLettered                     int // messages the consumers gave up on
	duplicates                       int // redeliveries the inbox absorbed
	takeovers                        []time.Duration
	consumerKills                    int
	brokerRestart                    time.Duration
	dbRestart                        time.Duration
	drain                            time.Duration // from the end of the last fault to the last effect
	total                            time.Duration
}

func (r *chaosResult) String() string {
	return fmt.Sprintf("%s: %d messages (and %d rolled back): %d lost, %d out of order, %d applied twice, %d rolled back but applied, %d dead-lettered; "+
		"%d duplicates delivered and absorbed by the inbox; relay takeovers after kill -9: %s; %d consumers killed; "+
		"broker restart %v, database restart %v; drained %v after the last fault; %v in all",
		r.setup.name, r.messages, r.rolledBack, r.lost, r.misordered, r.twice, r.unknown, r.deadLettered, r.duplicates, durations(r.takeovers), r.consumerKills,
		r.brokerRestart.Round(100*time.Millisecond), r.dbRestart.Round(100*time.Millisecond), r.drain.Round(100*time.Millisecond),
		r.total.Round(time.Second))
}

func chaosTable(results []*chaosResult) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "combination\tfaults\tmessages\tlost\tout of order\tapplied twice\tduplicates delivered\trelay takeovers (kill -9)\tdrain after last fault\ttime")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%v\t%v\n", r.setup.name, len(chaosFaults), r.messages, r.lost, r.misordered, r.twice, r.duplicates,
			durations(r.takeovers), r.drain.Round(100*time.Millisecond), r.total.Round(time.Second))
	}
	w.Flush()
	return b.String()
}

func durations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.Round(10 * time.Millisecond).String()
	}
	return strings.Join(s, " ")
}

// chaosRun is one combination's run.
type chaosRun struct {
	t         *testing.T
	setup     chaosSetup
	db        *testdb.DB
	procs     *testproc.Group
	relayArgs []string
	brokerURL string
	channel   string // the run's own
	restartDB testserver.Restart
	restartMQ testserver.Restart
	result    *chaosResult
	// rolledBack counts the messages of the transactions the writers
	// rolled back.
	rolledBack atomic.Int64
}

var chaosRelays = []string{"relay-1", "relay-2"}
var chaosConsumers = []string{"consumer-1", "consumer-2"}

func runChaos(t *testing.T, s chaosSetup) *chaosResult {
	started := time.Now()
	r := &chaosRun{t: t, setup: s, result: &chaosResult{setup: s}, channel: fmt.Sprintf("chaos.%06x", rand.Uint32()&0xffffff)}
	var dbURL, name string
	if s.dialect == sqldb.Postgres {
		r.db = testdb.Postgres(t)
		dbURL = r.db.DSN
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		name = u.Query().Get("search_path")
	} else {
		r.db, dbURL, name = mysqlOutbox(t)
	}
	r.restartDB = testserver.Database(t, r.db)
	r.relayArgs = []string{"relay", "-db", dbURL, "-name", "chaos", "-listen", "127.0.0.1:0"}
	leading := "relay starting"
	if s.tail {
		r.relayArgs = append(r.relayArgs, "-mode", "tail")
		leading = "is now the leader"
		if s.dialect == sqldb.Postgres {
			// A slot and publication of the test's own, dropped once the
			// relays stopped.
			r.relayArgs = append(r.relayArgs, "-slot", name, "-publication", name)
			t.Cleanup(func() { dropSlot(t, dbURL, name) })
		}
	}
	if !s.nats {
		r.brokerURL = testserver.AMQPURL(t)
		r.restartMQ = testserver.RabbitMQ(t, r.brokerURL)
		t.Cleanup(r.removeFromRabbitMQ)
	}
	// Created after the database and the clean-up of RabbitMQ, the
	// children stop before those run.
	r.procs = testproc.NewGroup(t)
	if s.nats {
		r.startNATS()
	}
	r.createTables()

	// The consumers subscribe before anything is published: RabbitMQ
	// drops what no queue is bound for.
	r.parallel(chaosConsumers, func(name string) error {
		_, err := r.procs.Start(name, []string{"chaos-consumer", "-dialect", s.dialect.Name(), "-driver", r.db.Driver,
			"-dsn", r.db.DSN, "-broker", r.brokerURL, "-channel", r.channel}, chaosConsumerReady)
		return err
	})
	r.relayArgs = append(r.relayArgs, "-broker", r.brokerURL)
	// The first relay leads: a tailing relay reads the log from where it
	// started leading.
	if _, err := r.procs.Start(chaosRelays[0], r.relayArgs, leading); err != nil {
		t.Fatal(err)
	}
	if _, err := r.procs.Start(chaosRelays[1], r.relayArgs, "relay starting"); err != nil {
		t.Fatal(err)
	}

	ctx, stopWriters := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	t.Cleanup(func() { stopWriters(); writers.Wait() })
	for w := range chaosWriters {
		writers.Go(func() { r.write(ctx, w) })
	}
	r.progress("the first effects")
	for i, f := range chaosFaults {
		if i > 0 {
			r.progress(fmt.Sprintf("effects after fault %d", i))
		}
		r.inject(f, i)
	}
	lastFault := time.Now()
	stopWriters()
	writers.Wait()
	drained := r.drain()
	r.result.drain = time.Since(lastFault)
	r.stopAll()
	r.check()
	if !drained {
		t.Errorf("not every committed message was applied within %v of the last fault", r.result.drain.Round(time.Second))
	}
	r.result.total = time.Since(started)
	return r.result
}

// removeFromRabbitMQ removes the run's queues and exchange from RabbitMQ.
func (r *chaosRun) removeFromRabbitMQ() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := amqp.Open(ctx, r.brokerURL)
	if err != nil {
		r.t.Errorf("removing the run's queues: %v", err)
		return
	}
	defer b.Close(ctx)
	if err := errors.Join(b.RemoveSubscriber(ctx, chaosSubscriber, []string{r.channel}), b.RemoveChannel(ctx, r.channel)); err != nil {
		r.t.Errorf("removing the run's queues and exchange: %v", err)
	}
}

// startNATS runs the NATS server in a process of its own, and sets the
// broker's URL and restart.
func (r *chaosRun) startNATS() {
	dir := r.t.TempDir()
	p, err := r.procs.Start("nats", []string{"chaos-nats", "-dir", dir}, chaosNATSReady)
	if err != nil {
		r.t.Fatal(err)
	}
	r.brokerURL = strings.TrimSpace(strings.TrimPrefix(p.Ready[strings.Index(p.Ready, chaosNATSReady):], chaosNATSReady))
	u, err := url.Parse(r.brokerURL)
	if err != nil {
		r.t.Fatal(err)
	}
	args := []string{"chaos-nats", "-dir", dir, "-port", u.Port()}
	r.restartMQ = func(context.Context) error {
		r.procs.Get("nats").Stop(false)
		_, err := r.procs.Start("nats", args, chaosNATSReady)
		return err
	}
}

// createTables creates the writers' business table chaos_order, which
// says which messages committed, and the consumers' chaos_key and
// chaos_effect (see applyChaosEffect), with a row for each key.
func (r *chaosRun) createTables() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE chaos_order (k VARCHAR(20) NOT NULL, seq INT NOT NULL, message_id VARCHAR(64) NOT NULL, PRIMARY KEY (k, seq))",
		"CREATE TABLE chaos_key (k VARCHAR(20) NOT NULL PRIMARY KEY, last_seq INT NOT NULL)",
		"CREATE TABLE chaos_effect (k VARCHAR(20) NOT NULL, seq INT NOT NULL, prev_seq INT NOT NULL, message_id VARCHAR(64) NOT NULL, consumer_pid INT NOT NULL)",
	} {
		if _, err := r.db.ExecContext(ctx, q); err != nil {
			r.t.Fatal(err)
		}
	}
	for w := range chaosWriters {
		for _, k := range chaosKeys(w) {
			if _, err := r.db.ExecContext(ctx, r.db.Dialect.Rebind("INSERT INTO chaos_key (k, last_seq) VALUES (?, -1)"), k); err != nil {
				r.t.Fatal(err)
			}
		}
	}
}

// chaosKeys are the partition keys writer w writes.
func chaosKeys(w int) []string {
	keys := make([]string, chaosKeysPerWriter)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%02d", i*chaosWriters+w)
	}
	return keys
}

// write is writer w: until ctx ends, it commits transactions of one
// message for each of its keys, the header "seq" counting the
// transactions, with a chaos_order row for each message. Every tenth
// transaction is rolled back. A transaction that fails (the database
// restarts) is written again unless its rows are there: a commit whose
// answer was lost may have committed.
func (r *chaosRun) write(ctx context.Context, w int) {
	keys := chaosKeys(w)
	var opts []outbox.WriterOption
	if r.setup.tail {
		opts = append(opts, outbox.WithDeleteAfterInsert())
	}
	ow := outbox.NewWriter(r.db.Dialect, opts...)
	tick := time.NewTicker(time.Second / chaosTxPerSecond)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		if seq%10 == 9 {
			if r.writeTx(ctx, ow, keys, seq, false) == nil {
				r.rolledBack.Add(int64(len(keys)))
			}
		}
		for {
			err := r.writeTx(ctx, ow, keys, seq, true)
			if err == nil || ctx.Err() != nil {
				break
			}
			if ok, err := r.committed(ctx, keys[0], seq); err == nil && ok {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *chaosRun) writeTx(ctx context.Context, ow *outbox.Writer, keys []string, seq int, commit bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, k := range keys {
		m := message.NewBuilder(fmt.Appendf(nil, "%s/%d", k, seq)).WithPartitionKey(k).WithHeader("seq", strconv.Itoa(seq)).Build()
		if err := ow.Send(ctx, tx, r.channel, m); err != nil {
			return err
		}
		if !commit {
			continue
		}
		if _, err := tx.ExecContext(ctx, r.db.Dialect.Rebind("INSERT INTO chaos_order (k, seq, message_id) VALUES (?, ?, ?)"), k, seq, m.ID); err != nil {
			return err
		}
	}
	if !commit {
		return tx.Rollback()
	}
	return tx.Commit()
}

func (r *chaosRun) committed(ctx context.Context, key string, seq int) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int
	err := r.db.QueryRowContext(ctx, r.db.Dialect.Rebind("SELECT COUNT(*) FROM chaos_order WHERE k = ? AND seq = ?"), key, seq).Scan(&n)
	return n > 0, err
}

// count returns the result of a COUNT query, or -1 while the database
// does not answer.
func (r *chaosRun) count(query string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	if err := r.db.QueryRowContext(ctx, query).Scan(&n); err != nil {
		return -1
	}
	return n
}

func (r *chaosRun) effects() int {
	return r.count("SELECT COUNT(DISTINCT message_id) FROM chaos_effect")
}

// progress waits until 300 more messages have been applied.
func (r *chaosRun) progress(what string) {
	r.t.Helper()
	from := -1
	r.waitFor(what, chaosProgressTimeout, func() bool {
		n := r.effects()
		if from < 0 {
			from = n // -1 while the database does not answer
			return false
		}
		return n >= from+300
	})
}

// waitFor polls cond until it holds, and fails the test with the
// processes' output if it does not within limit.
func (r *chaosRun) waitFor(what string, limit time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: not within %v\n%s", what, limit, r.procs.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inject injects fault number i.
func (r *chaosRun) inject(f chaosFault, i int) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chaosRestartTimeout)
	defer cancel()
	switch f {
	case killRelay:
		leads, publishes := r.killLeader(ctx)
		r.result.takeovers = append(r.result.takeovers, publishes)
		r.logf("fault %d: the standby took the lease %v after the kill, and published %v after it", i+1,
			leads.Round(time.Millisecond), publishes.Round(time.Millisecond))
	case killConsumer:
		name := chaosConsumers[r.result.consumerKills%len(chaosConsumers)]
		r.result.consumerKills++
		if _, err := r.procs.Crash(name); err != nil {
			r.t.Fatal(err)
		}
		r.logf("fault %d: kill -9 of %s, started again", i+1, name)
	case restartBroker:
		r.result.brokerRestart = r.restart(ctx, i, "broker", r.restartMQ)
	case restartDatabase:
		r.result.dbRestart = r.restart(ctx, i, "database", r.restartDB)
	}
}

// restart restarts a server as fault number i and returns how long it
// took.
func (r *chaosRun) restart(ctx context.Context, i int, server string, restart testserver.Restart) time.Duration {
	r.t.Helper()
	start := time.Now()
	r.logf("restarting the %s", server)
	if err := restart(ctx); err != nil {
		r.t.Fatalf("restarting the %s: %v", server, err)
	}
	took := time.Since(start)
	r.logf("fault %d: %s restarted in %v", i+1, server, took.Round(time.Millisecond))
	return took
}

// killLeader kills the relay that leads with SIGKILL and returns how long
// after the kill the other one held the lease, and published; it then
// starts the killed one again, as a standby.
func (r *chaosRun) killLeader(ctx context.Context) (leads, publishes time.Duration) {
	r.t.Helper()
	var leader, standby string
	var before relayMetrics
	r.waitFor("a leading relay", chaosTakeoverTimeout, func() bool {
		m := map[string]relayMetrics{}
		for _, name := range chaosRelays {
			var err error
			if m[name], err = r.relayMetrics(ctx, name); err != nil {
				return false
			}
		}
		switch a, b := chaosRelays[0], chaosRelays[1]; {
		case m[a].leader && !m[b].leader:
			leader, standby = a, b
		case m[b].leader && !m[a].leader:
			leader, standby = b, a
		default:
			return false
		}
		before = m[standby]
		return true
	})
	// Kill it at a random moment of its work: polling, publishing or
	// deleting what the broker confirmed.
	time.Sleep(rand.N(200 * time.Millisecond))
	r.procs.Get(leader).Stop(true)
	killed := time.Now()
	r.logf("kill -9 of %s, the leading relay", leader)
	r.waitFor("the standby relay to publish after the leader's kill", chaosTakeoverTimeout, func() bool {
		m, err := r.relayMetrics(ctx, standby)
		if err != nil {
			return false
		}
		if m.leader && leads == 0 {
			leads = time.Since(killed)
		}
		return m.published > before.published
	})
	publishes = time.Since(killed)
	if leads == 0 {
		leads = publishes
	}
	if _, err := r.procs.Start(leader, r.relayArgs, "relay starting"); err != nil {
		r.t.Fatal(err)
	}
	return leads, publishes
}

var relayAddr = regexp.MustCompile(`relay endpoints" addr=(\S+)`)

// relayMetrics is what TestChaos reads from a relay's /metrics.
type relayMetrics struct {
	leader    bool    // courier_relay_leader
	published float64 // courier_relay_published_total
}

// relayMetrics reads the metrics of the relay name.
func (r *chaosRun) relayMetrics(ctx context.Context, name string) (relayMetrics, error) {
	p := r.procs.Get(name)
	m := relayAddr.FindStringSubmatch(p.Output())
	if m == nil {
		return relayMetrics{}, fmt.Errorf("%s logged no address", name)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m[1]+"/metrics", nil)
	if err != nil {
		return relayMetrics{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return relayMetrics{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return relayMetrics{}, err
	}
	value := func(metric string) (float64, error) {
		v := regexp.MustCompile(`(?m)^` + metric + `(?:\{[^}]*\})? (\S+)$`).FindSubmatch(body)
		if v == nil {
			return 0, fmt.Errorf("%s: no metric %s", name, metric)
		}
		return strconv.ParseFloat(string(v[1]), 64)
	}
	leader, err := value("courier_relay_leader")
	if err != nil {
		return relayMetrics{}, err
	}
	published, err := value("courier_relay_published_total")
	return relayMetrics{leader: leader == 1, published: published}, err
}

// logf logs what the run does, with the time of day, to compare with the
// processes' logs.
func (r *chaosRun) logf(format string, args ...any) {
	r.t.Helper()
	r.t.Logf("%s "+format, append([]any{time.Now().UTC().Format("15:04:05.000")}, args...)...)
}

// drain waits until every committed message was applied and the outbox
// is empty, and reports whether they were. It gives up after
// chaosDrainTimeout, or once no message was applied for chaosStall, and
// leaves it to the checks to say what is missing.
func (r *chaosRun) drain() bool {
	deadline := time.Now().Add(chaosDrainTimeout)
	applied, since := -1, time.Now()
	for time.Now().Before(deadline) && time.Since(since) < chaosStall {
		orders, effects := r.count("SELECT COUNT(*) FROM chaos_order"), r.effects()
		if orders > 0 && effects == orders && r.count("SELECT COUNT(*) FROM message") == 0 {
			return true
		}
		if effects != applied {
			applied, since = effects, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// stopAll stops the relays, then the consumers, then the broker, with
// SIGTERM, after checking that none of them exited by itself.
func (r *chaosRun) stopAll() {
	r.t.Helper()
	names := append(append([]string{}, chaosRelays...), chaosConsumers...)
	if r.setup.nats {
		names = append(names, "nats")
	}
	for _, name := range names {
		if p := r.procs.Get(name); p.Exited() {
			r.t.Fatalf("%s exited during the run:\n%s", name, p.Output())
		}
	}
	r.parallel(chaosRelays, func(name string) error { r.procs.Get(name).Stop(false); return nil })
	r.parallel(chaosConsumers, func(name string) error { r.procs.Get(name).Stop(false); return nil })
	if r.setup.nats {
		r.procs.Get("nats").Stop(false)
	}
}

// check reads what the writers committed and what the consumers applied,
// and fails the test if a committed message was not applied, a message
// not committed was applied, a message was applied twice, or a key's
// effects were applied out of the order the rows were written; and if a
// process logged a data race, a panic, an error at exit or a dead letter.
func (r *chaosRun) check() {
	r.t.Helper()
	logs := r.procs.Logs()
	r.result.duplicates = strings.Count(logs, chaosDuplicate)
	var deadLetters, exits []string
	for line := range strings.Lines(logs) {
		switch {
		case strings.HasPrefix(line, chaosDeadLetter):
			deadLetters = append(deadLetters, line)
		case strings.HasPrefix(line, "child: "): // a process that ended with an error
			exits = append(exits, line)
		}
	}
	r.result.deadLettered = len(deadLetters)
	if len(deadLetters) > 0 || len(exits) > 0 {
		r.t.Errorf("%d messages dead-lettered, %d processes ended with an error:\n%s", len(deadLetters), len(exits),
			strings.Join(append(exits, deadLetters[:min(len(deadLetters), 20)]...), ""))
	}
	if strings.Contains(logs, "DATA RACE") || strings.Contains(logs, "panic:") {
		r.t.Errorf("a data race or a panic:\n%s", logs)
	}

	committed := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := r.db.QueryContext(ctx, "SELECT message_id FROM chaos_order")
	if err != nil {
		r.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			r.t.Fatal(err)
		}
		committed[id] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		r.t.Fatal(err)
	}
	applied := map[string]int{}
	var twice, unknown, misordered []string
	rows, err = r.db.QueryContext(ctx, "SELECT k, seq, prev_seq, message_id FROM chaos_effect")
	if err != nil {
		r.t.Fatal(err)
	}
	for rows.Next() {
		var k, id string
		var seq, prev int
		if err := rows.Scan(&k, &seq, &prev, &id); err != nil {
			r.t.Fatal(err)
		}
		applied[id]++
		switch {
		case !committed[id]:
			unknown = append(unknown, fmt.Sprintf("%s seq %d (%s)", k, seq, id))
		case applied[id] > 1:
			twice = append(twice, fmt.Sprintf("%s seq %d (%s)", k, seq, id))
		case prev != seq-1:
			misordered = append(misordered, fmt.Sprintf("%s seq %d after seq %d", k, seq, prev))
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		r.t.Fatal(err)
	}
	var lost []string
	for id := range committed {
		if applied[id] == 0 {
			lost = append(lost, id)
		}
	}
	r.result.messages = len(committed)
	r.result.lost, r.result.twice, r.result.misordered, r.result.unknown = len(lost), len(twice), len(misordered), len(unknown)
	r.result.rolledBack = int(r.rolledBack.Load())
	for what, ids := range map[string][]string{"lost (committed, never applied)": lost, "applied twice": twice,
		"applied but never committed (rolled back)": unknown, "applied out of order": misordered} {
		if len(ids) > 0 {
			r.t.Errorf("%d of %d messages %s: %s", len(ids), len(committed), what, strings.Join(ids[:min(len(ids), 10)], ", "))
		}
	}
}

// parallel runs f for every name at once and fails the test if any fails.
func (r *chaosRun) parallel(names []string, f func(name string) error) {
	r.t.Helper()
	parallel(r.t, names, f)
}
