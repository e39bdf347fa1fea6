package bench

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver

	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/outbox/pgnotify"
	"github.com/courier-go/courier/sqldb"
)

// PostgresURLEnv names the PostgreSQL server of the outbox suite.
const (
	PostgresURLEnv     = "COURIER_POSTGRES_URL"
	PostgresURLDefault = "postgres://courier:courier@127.0.0.1:5432/courier?sslmode=disable"
)

func postgresURL() string {
	if v := os.Getenv(PostgresURLEnv); v != "" {
		return v
	}
	return PostgresURLDefault
}

// The outbox workload: Publishers goroutines each commit business
// transactions of one order row plus (for every system but the bare
// commit) one message; the systems differ in how the message gets from the
// committed row to the consumers.
const (
	outboxPublishers  = 16
	outboxPayloadSize = 64
	outboxPacedRate   = 1000
)

// pgEnv is a fresh PostgreSQL schema with Courier's tables and a business
// table, dropped at Close.
type pgEnv struct {
	db     *sql.DB
	dsn    string
	schema string
}

func probePostgres(ctx context.Context) error {
	db, err := sql.Open("pgx", postgresURL())
	if err == nil {
		err = db.PingContext(ctx)
		db.Close()
	}
	if err != nil {
		return fmt.Errorf("%w: PostgreSQL at %s: %v; start it with scripts/services/postgres.sh (or set %s)",
			ErrUnavailable, connurl.Redacted(postgresURL()), err, PostgresURLEnv)
	}
	return nil
}

func openPG(ctx context.Context, c *cleanup, writers int) (*pgEnv, error) {
	admin, err := sql.Open("pgx", postgresURL())
	if err != nil {
		return nil, err
	}
	schema := "bench_" + uniqueName("o")[2:]
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, fmt.Errorf("create schema: %w", err)
	}
	c.add(func(ctx context.Context) error {
		defer admin.Close()
		_, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		return err
	})
	u, err := url.Parse(postgresURL())
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, err
	}
	// Every writer gets a connection; the relay, its wake-ups and its
	// lease take a few more.
	db.SetMaxOpenConns(writers + 8)
	db.SetMaxIdleConns(writers + 8)
	c.add(func(context.Context) error { return db.Close() })
	if err := sqldb.Migrate(ctx, db, sqldb.Postgres); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE bench_order (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_key TEXT NOT NULL, amount INT NOT NULL)"); err != nil {
		return nil, err
	}
	return &pgEnv{db: db, dsn: u.String(), schema: schema}, nil
}

// commit runs one business transaction: an order row, then whatever
// write does in the same transaction.
func (e *pgEnv) commit(ctx context.Context, key string, write func(*sql.Tx) error) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO bench_order (order_key, amount) VALUES ($1, $2)", key, 1); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if write != nil {
		if err := write(tx); err != nil {
			return errors.Join(err, tx.Rollback())
		}
	}
	return tx.Commit()
}

// outboxRig is one outbox system set up on a fresh schema: publish
// commits a business transaction with its message; start, if not nil,
// starts the relay or subscriber that delivers the committed messages (it
// is separate so that the drain phase can commit rows before it starts).
type outboxRig struct {
	publish func(ctx context.Context, key string, payload []byte) error
	start   func(ctx context.Context) error
}

// outboxSystem builds the systems of the outbox suite.
type outboxSystem struct {
	name  string
	build func(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte)) (outboxRig, error)
}

func (s outboxSystem) Name() string                    { return s.name }
func (s outboxSystem) Probe(ctx context.Context) error { return probePostgres(ctx) }

// relayed reports whether the system has a relay or subscriber.
func (s outboxSystem) relayed() bool {
	return s.name != "postgres-commit" && !strings.HasPrefix(s.name, "courier-outbox-insert")
}

func (s outboxSystem) Start(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
	var c cleanup
	rig, err := s.setUp(ctx, &c, outboxPublishers, consumers, deliver)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	if rig.start != nil {
		if err := rig.start(ctx); err != nil {
			return nil, c.fail(ctx, err)
		}
	}
	return funcSession{publish: rig.publish, close: c.run}, nil
}

// setUp opens a fresh schema with a pool for writers writers and builds
// the system on it, without starting its relay.
func (s outboxSystem) setUp(ctx context.Context, c *cleanup, writers, consumers int, deliver func([]byte)) (outboxRig, error) {
	env, err := openPG(ctx, c, writers)
	if err != nil {
		return outboxRig{}, err
	}
	return s.build(ctx, env, c, consumers, deliver)
}

// PostgresCommit is the database's own rate: each publish commits a
// business transaction with one order row and no message, and counts as
// delivered when the commit returns. It is the ceiling of every outbox
// system.
func PostgresCommit() System {
	return outboxSystem{name: "postgres-commit", build: func(_ context.Context, env *pgEnv, _ *cleanup, _ int, deliver func([]byte)) (outboxRig, error) {
		return outboxRig{publish: func(ctx context.Context, key string, payload []byte) error {
			if err := env.commit(ctx, key, nil); err != nil {
				return err
			}
			deliver(payload)
			return nil
		}}, nil
	}}
}

// CourierOutboxInsert commits the business transaction with the message
// written through outbox.Writer, and counts it as delivered when the
// commit returns: the cost of the outbox insert, without a relay.
func CourierOutboxInsert() System {
	return outboxSystem{name: "courier-outbox-insert", build: func(_ context.Context, env *pgEnv, _ *cleanup, _ int, deliver func([]byte)) (outboxRig, error) {
		w := outbox.NewWriter(sqldb.Postgres)
		return outboxRig{publish: func(ctx context.Context, key string, payload []byte) error {
			if err := env.commit(ctx, key, func(tx *sql.Tx) error { return w.Send(ctx, tx, benchChannel, outboxMessage(key, payload)) }); err != nil {
				return err
			}
			deliver(payload)
			return nil
		}}, nil
	}}
}

// CourierOutboxInsertNotify is CourierOutboxInsert on an outbox table
// with the LISTEN/NOTIFY trigger that wakes polling relays
// (pgnotify.Install, courier relay -notify): PostgreSQL serializes the
// commits of every transaction that notified, flush included, so the
// trigger's cost is the difference between the two rows.
func CourierOutboxInsertNotify() System {
	return withNotify(CourierOutboxInsert().(outboxSystem))
}

// withNotify is sys on an outbox table with the LISTEN/NOTIFY trigger
// installed (pgnotify.Install) before it is built.
func withNotify(sys outboxSystem) outboxSystem {
	return outboxSystem{name: sys.name + "-notify", build: func(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte)) (outboxRig, error) {
		if err := pgnotify.Install(ctx, env.db); err != nil {
			return outboxRig{}, err
		}
		return sys.build(ctx, env, c, consumers, deliver)
	}}
}

func outboxMessage(key string, payload []byte) *message.Message {
	m := message.New(payload)
	m.SetHeader(message.HeaderPartitionID, key)
	return m
}

// courierRelayed starts Courier's memory broker with consumers instances
// of one subscriber id, and returns a rig whose publish commits business
// transactions with their message through outbox.Writer. newRelay sets
// up a relay publishing into the broker and returns the function that
// starts it, which returns the function that stops it.
func courierRelayed(ctx context.Context, c *cleanup, env *pgEnv, consumers int, deliver func([]byte),
	newRelay func(ctx context.Context, b *memory.Broker) (func(context.Context) (func() error, error), error)) (outboxRig, error) {
	b, err := memory.New()
	if err != nil {
		return outboxRig{}, err
	}
	c.add(b.Close)
	sys := CourierBroker{Label: "relay", Open: func(context.Context) (brokerCloser, error) { return brokerCloser{Broker: b}, nil }}
	if _, err := sys.Start(ctx, consumers, deliver); err != nil {
		return outboxRig{}, err
	}
	run, err := newRelay(ctx, b)
	if err != nil {
		return outboxRig{}, err
	}
	w := outbox.NewWriter(sqldb.Postgres)
	return outboxRig{
		publish: func(ctx context.Context, key string, payload []byte) error {
			return env.commit(ctx, key, func(tx *sql.Tx) error { return w.Send(ctx, tx, benchChannel, outboxMessage(key, payload)) })
		},
		start: func(ctx context.Context) error {
			stop, err := run(ctx)
			if err != nil {
				return err
			}
			c.add(func(context.Context) error { return stop() })
			return nil
		},
	}, nil
}

// goRun runs f in a goroutine until the returned stop function cancels it
// and waits for it.
func goRun(ctx context.Context, f func(context.Context) error) func() error {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- f(rctx) }()
	return func() error { cancel(); return <-done }
}

// CourierPollingRelay is outbox.Relay with its default source, the table
// poller, with its
// default batch of 500 rows and poll interval of 100 ms and no wake-ups,
// publishing into Courier's memory broker, so that the figure is the
// relay's and the database's, not a broker's.
func CourierPollingRelay() System { return courierPollingRelay("courier-relay-polling", false) }

// CourierPollingRelayNotify is CourierPollingRelay woken by LISTEN/NOTIFY
// (pgnotify) as soon as outbox rows commit, with the trigger installed:
// courier relay -notify.
func CourierPollingRelayNotify() System {
	return withNotify(courierPollingRelay("courier-relay-polling", true))
}

// CourierPollingRelayBatch is CourierPollingRelay reading batch rows a
// poll (outbox.WithBatchSize).
func CourierPollingRelayBatch(batch int) System {
	return courierPollingRelay(fmt.Sprintf("courier-relay-polling-batch%d", batch), false, outbox.WithBatchSize(batch))
}

// courierPollingRelay is the polling relay with opts, listening for
// NOTIFY wake-ups if listen.
func courierPollingRelay(name string, listen bool, opts ...outbox.RelayOption) outboxSystem {
	return outboxSystem{name: name, build: func(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte)) (outboxRig, error) {
		return courierRelayed(ctx, c, env, consumers, deliver, func(_ context.Context, b *memory.Broker) (func(context.Context) (func() error, error), error) {
			opts := append([]outbox.RelayOption{outbox.WithLogger(quietLogger)}, opts...)
			if listen {
				opts = append(opts, outbox.WithWakeup(pgnotify.New(env.db)))
			}
			r, err := outbox.NewRelay(env.db, sqldb.Postgres, b, opts...)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context) (func() error, error) { return goRun(ctx, r.Run), nil }, nil
		})
	}}
}

// CourierTailingRelay is outbox.Relay reading from the log-tailing source
// (outbox/pgcdc: logical replication with pgoutput) on a replication slot and publication of its
// own, publishing into Courier's memory broker. The slot is created when
// the system is set up, before any row is committed, so that every row is
// in its stream; starting returns once the relay streams.
func CourierTailingRelay() System {
	return outboxSystem{name: "courier-relay-tailing", build: func(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte)) (outboxRig, error) {
		return courierRelayed(ctx, c, env, consumers, deliver, func(ctx context.Context, b *memory.Broker) (func(context.Context) (func() error, error), error) {
			name := env.schema
			src, err := pgcdc.NewSource(env.dsn, pgcdc.WithSlot(name), pgcdc.WithPublication(name))
			if err != nil {
				return nil, err
			}
			r, err := outbox.NewRelay(env.db, sqldb.Postgres, b, outbox.WithSource(src), outbox.WithName(name), outbox.WithLogger(quietLogger))
			if err != nil {
				return nil, err
			}
			c.add(func(ctx context.Context) error {
				_, err := env.db.ExecContext(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", name)
				if err == nil {
					_, err = env.db.ExecContext(ctx, "DROP PUBLICATION IF EXISTS "+name)
				}
				return err
			})
			if err := r.Setup(ctx); err != nil {
				return nil, err
			}
			return func(ctx context.Context) (func() error, error) {
				stop := goRun(ctx, r.Run)
				deadline := time.Now().Add(30 * time.Second)
				for !r.Stats().Leader {
					if time.Now().After(deadline) {
						return nil, errors.Join(errors.New("pgcdc relay did not start streaming within 30s"), stop())
					}
					time.Sleep(time.Millisecond)
				}
				return stop, nil
			}, nil
		})
	}}
}

// WatermillSQL is Watermill's SQL pub/sub (watermill-sql/v4) on the same
// database: the publisher writes each message in the business transaction
// (NewPublisher on the *sql.Tx, the default PostgreSQL schema adapter),
// and consumers subscriptions of one consumer group (the default
// PostgreSQL offsets adapter) poll the topic's table, batch rows at a
// time, acking each message. The payload column is BYTEA, as Courier's
// (Watermill's default is JSON, which binary payloads do not fit). The
// poll interval is set to Courier's relay's, 100 ms (Watermill's default
// is 1 s).
func WatermillSQL(batch int) System {
	return outboxSystem{name: fmt.Sprintf("watermill-sql-batch%d", batch), build: func(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte)) (outboxRig, error) {
		schema := wmsql.DefaultPostgreSQLSchema{SubscribeBatchSize: batch,
			GeneratePayloadType: func(string) string { return "BYTEA" }}
		logger := watermill.NopLogger{}
		sub, err := wmsql.NewSubscriber(wmsql.BeginnerFromStdSQL(env.db), wmsql.SubscriberConfig{
			ConsumerGroup:    benchSubscriber,
			PollInterval:     outbox.DefaultPollInterval,
			SchemaAdapter:    schema,
			OffsetsAdapter:   wmsql.DefaultPostgreSQLOffsetsAdapter{},
			InitializeSchema: true,
		}, logger)
		if err != nil {
			return outboxRig{}, err
		}
		var session Session
		c.add(func(ctx context.Context) error {
			if session != nil {
				return session.Close(ctx) // closes sub
			}
			return sub.Close()
		})
		const topic = "bench_events"
		if err := sub.SubscribeInitialize(topic); err != nil {
			return outboxRig{}, err
		}
		publish := func(ctx context.Context, key string, payload []byte) error {
			return env.commit(ctx, key, func(tx *sql.Tx) error {
				pub, err := wmsql.NewPublisher(wmsql.TxFromStdSQL(tx), wmsql.PublisherConfig{SchemaAdapter: schema}, logger)
				if err != nil {
					return err
				}
				return pub.Publish(topic, watermillMessage(key, payload))
			})
		}
		return outboxRig{publish: publish, start: func(ctx context.Context) error {
			var wc cleanup
			wc.add(func(context.Context) error { return sub.Close() })
			session, err = watermillConsume(ctx, "watermill-sql", wc, sub, topic, consumers, 1, same(deliver), publish)
			return err
		}}, nil
	}}
}

// OutboxSuite measures the transactional outbox on PostgreSQL (fsync on,
// the server's defaults), each system on a fresh schema, in three phases:
//
//   - sustained: 16 writers commit business transactions (an order row
//     and a message) as fast as they can while the relay or subscriber
//     delivers; end-to-end msgs/s against postgres-commit (the same
//     transactions without a message: the database's single-row commit
//     rate) and courier-outbox-insert (the writers alone, no relay; its
//     -notify row has the LISTEN/NOTIFY trigger, which only
//     courier-relay-polling-notify uses, installed). On
//     a small machine this mostly measures writers, database and relay
//     sharing the CPUs; it answers "does the relay keep up".
//   - drain: the rows are committed first, with the relay stopped (the
//     tailing relay's slot exists already, so the rows are in its
//     stream); then the relay starts, and rows/s run from its start until
//     the consumers handled the last row: the relay's own throughput.
//   - paced: 64 writers take turns to commit 1,000 transactions a second;
//     latency runs from the moment COMMIT returned to the consumer's
//     handler (a row the relay delivers before its writer saw COMMIT
//     return counts as 0). The table says how many commits a second the
//     writers achieved: if PostgreSQL cannot commit 1,000 a second on the
//     machine, the latencies are not "at 1,000 msgs/s", and the targets
//     say so.
//
// With Options.Soak, the suite runs only a long paced phase of each
// Courier relay and samples the heap every 10 s (the outbox-soak table),
// for issue 5's "relay memory flat".
//
// Both relays and watermill-sql deliver at least once, so duplicates do
// not fail a run; the tables count them.
type OutboxSuite struct{}

func outboxSuite() Suite { return OutboxSuite{} }

// Name implements Suite.
func (OutboxSuite) Name() string { return "outbox" }

// OutboxSystems returns the systems of the outbox suite's sustained and
// paced phases; the first two have no relay and are not paced. (The
// suite also runs CourierOutboxInsertNotify in its sustained phase.) Only
// the -notify systems have the LISTEN/NOTIFY trigger, as only
// courier relay -notify installs it.
func OutboxSystems() []System {
	return []System{
		PostgresCommit(),
		CourierOutboxInsert(),
		CourierPollingRelay(),
		CourierPollingRelayNotify(),
		CourierTailingRelay(),
		WatermillSQL(1),
		WatermillSQL(100),
	}
}

// OutboxDrainSystems returns the systems of the drain phase: every relay
// and subscriber, the polling relay at its default batch and at 100.
func OutboxDrainSystems() []System {
	return []System{
		CourierPollingRelay(),
		CourierPollingRelayBatch(100),
		CourierTailingRelay(),
		WatermillSQL(1),
		WatermillSQL(100),
	}
}

// Configs returns the workloads of the sustained and paced phases (the
// paced one as a Config of the generic workload, whose latency starts
// before BEGIN; the suite's own paced phase measures from COMMIT).
func (OutboxSuite) Configs(o Options) (sustained, paced Config) {
	sustained = Config{Messages: o.messages(20_000, 1_000), PayloadSize: outboxPayloadSize, Publishers: outboxPublishers,
		Keys: DefaultKeys, Timeout: 5 * time.Minute, AllowDuplicates: true}
	paced = Config{Messages: outboxPacedRate * 10, PayloadSize: outboxPayloadSize, Publishers: DefaultPublishers,
		Rate: outboxPacedRate, Timeout: time.Minute, AllowDuplicates: true}
	if o.Quick {
		paced.Messages = outboxPacedRate
	}
	return sustained, paced
}

// Run implements Suite.
func (s OutboxSuite) Run(ctx context.Context, o Options) ([]Table, error) {
	if skip, err := probe(ctx, PostgresCommit(), o); err != nil || skip != "" {
		t := Table{ID: "outbox-sustained", Title: "not measured", Columns: []string{"system"}}
		t.Note("not measured: %s", skip)
		return []Table{t}, err
	}
	if o.Soak > 0 {
		return outboxSoak(ctx, o)
	}
	sustainedCfg, pacedCfg := s.Configs(o)
	drainN := o.messages(20_000, 2_000)
	sustained := Table{ID: "outbox-sustained", Title: fmt.Sprintf("%d messages, %d writers as fast as they go, relay running", sustainedCfg.Messages, outboxPublishers),
		Columns: []string{"system", "end-to-end msgs/s", "commits/s", "of postgres-commit", "of outbox-insert", "p50 latency", "p99 latency", "duplicates", "allocs/msg", "peak heap"}}
	drain := Table{ID: "outbox-drain", Title: fmt.Sprintf("%d rows committed first, then the relay started", drainN),
		Columns: []string{"system", "drain rows/s", "of postgres-commit", "duplicates", "peak heap"}}
	paced := Table{ID: "outbox-paced", Title: fmt.Sprintf("%d messages at %d a second, %d writers; latency from COMMIT's return", pacedCfg.Messages, outboxPacedRate, DefaultPublishers),
		Columns: []string{"system", "commits/s", "commit p99", "writers on time", "p50 latency", "p99 latency", "max latency", "duplicates"}}
	var (
		errs   []error
		m      = outboxMeasured{sustained: map[string]float64{}, drain: map[string]float64{}, paced: map[string]pacedResult{}}
		failed = func(t *Table, name string, err error) {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			t.Note("%s failed: %v", name, err)
		}
	)
	all := OutboxSystems()
	for _, sys := range slices.Concat(all[:2], []System{CourierOutboxInsertNotify()}, all[2:]) {
		r, err := Measure(ctx, sys, sustainedCfg, o.warmup())
		if err != nil {
			failed(&sustained, sys.Name(), err)
			continue
		}
		m.sustained[sys.Name()] = r.EndToEndRate()
		o.progress("%-12s %-34s sustained %10s msgs/s  p99 %s", "outbox", sys.Name(), fmtRate(r.EndToEndRate()), fmtLatency(r.P99))
		sustained.AddRow(sys.Name(), fmtRate(r.EndToEndRate()), fmtRate(r.PublishRate()), m.of(r.EndToEndRate(), "postgres-commit"),
			m.of(r.EndToEndRate(), "courier-outbox-insert"), fmtLatency(r.P50), fmtLatency(r.P99), groupThousands(r.Duplicates),
			fmtOneDecimal(r.AllocsPerMessage()), fmtMiB(r.PeakHeap))
	}
	for _, sys := range OutboxDrainSystems() {
		r, err := drainOutbox(ctx, sys.(outboxSystem), drainN)
		if err != nil {
			failed(&drain, sys.Name(), err)
			continue
		}
		m.drain[sys.Name()] = r.rate
		o.progress("%-12s %-34s drain %10s rows/s", "outbox", sys.Name(), fmtRate(r.rate))
		drain.AddRow(sys.Name(), fmtRate(r.rate), m.of(r.rate, "postgres-commit"), groupThousands(r.duplicates), fmtMiB(r.peakHeap))
	}
	for _, sys := range slices.Concat(all[:1], all[2:]) {
		r, err := pacedOutbox(ctx, sys.(outboxSystem), outboxPacedRate, pacedCfg.Messages, DefaultPublishers, 0, nil)
		if err != nil {
			failed(&paced, sys.Name(), err)
			continue
		}
		m.paced[sys.Name()] = r
		o.progress("%-12s %-34s paced %10s commits/s  p99 %s", "outbox", sys.Name(), fmtRate(r.commitRate), fmtLatency(r.p99))
		p50, p99, mx := "-", "-", "-"
		if r.relayed {
			p50, p99, mx = fmtLatency(r.p50), fmtLatency(r.p99), fmtLatency(r.max)
		}
		paced.AddRow(sys.Name(), fmtRate(r.commitRate), fmtLatency(r.commitP99), fmtPercent(r.onTime), p50, p99, mx, groupThousands(r.duplicates))
		if !r.keptPace() {
			paced.Note("%s: the writers committed %s transactions a second, not %s: PostgreSQL (or the machine) could not keep the pace, so its latencies are not at %s msgs/s.",
				sys.Name(), fmtRate(r.commitRate), fmtRate(outboxPacedRate), fmtRate(outboxPacedRate))
		}
	}
	paced.Note("writers on time: the share of transactions whose COMMIT returned within 100 ms of their slot.")
	return []Table{sustained, drain, paced, m.targets()}, errors.Join(errs...)
}

// outboxMeasured is what a run of the suite measured, by system name.
type outboxMeasured struct {
	sustained map[string]float64 // end-to-end msgs/s
	drain     map[string]float64 // rows/s
	paced     map[string]pacedResult
}

// of formats rate as a share of the sustained rate of system base.
func (m outboxMeasured) of(rate float64, base string) string {
	b, ok := m.sustained[base]
	if !ok || b == 0 {
		return "-"
	}
	return fmtPercent(rate / b)
}

// targets checks the targets of issues 4 and 5.
func (m outboxMeasured) targets() Table {
	t := Table{ID: "outbox-targets", Title: "targets", Columns: []string{"target", "check", "measured", "met"}}
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	ratio := func(goal, how string, a, b float64, okA, okB bool, min float64) {
		if !okA || !okB || b == 0 {
			t.AddRow(goal, how, "-", "not measured")
			return
		}
		t.AddRow(goal, how, fmt.Sprintf("%.2fx", a/b), verdict(a/b >= min))
	}
	latency := func(goal, sys string, limit time.Duration) {
		how := "paced phase, COMMIT to handler"
		r, ok := m.paced[sys]
		switch {
		case !ok:
			t.AddRow(goal, how, "-", "not measured")
		case !r.keptPace():
			t.AddRow(goal, how, fmt.Sprintf("%s at %s commits/s", fmtLatency(r.p99), fmtRate(r.commitRate)),
				"not measured: the database did not commit 1,000/s")
		default:
			t.AddRow(goal, how, fmtLatency(r.p99), verdict(r.p99 < limit))
		}
	}
	drain := func(goal, sys, peer string, min float64) {
		a, okA := m.drain[sys]
		b, okB := m.sustained[peer]
		ratio(goal, fmt.Sprintf("drain rows/s of %s / sustained commits/s of %s", sys, peer), a, b, okA, okB, min)
	}
	keepsUp := func(goal, sys, writers string) {
		a, okA := m.sustained[sys]
		b, okB := m.sustained[writers]
		ratio(goal, fmt.Sprintf("sustained end-to-end msgs/s of %s / %s (writers alone)", sys, writers), a, b, okA, okB, 0.9)
	}
	drain("issue 4 (b): polling relay >= 90% of the commit rate", "courier-relay-polling", "postgres-commit", 0.9)
	{
		a, okA := m.drain["courier-relay-polling"]
		b, okB := m.drain["watermill-sql-batch100"]
		ratio("issue 4: polling relay >= 5x watermill-sql at batch 100", "drain rows/s, both", a, b, okA, okB, 5)
	}
	latency("issue 4 (c): polling relay with NOTIFY wake-ups p99 < 100 ms at 1,000 msgs/s", "courier-relay-polling-notify", 100*time.Millisecond)
	keepsUp("issue 5: polling relay sustains >= 90% of the writers' rate", "courier-relay-polling", "courier-outbox-insert")
	keepsUp("issue 5: tailing relay sustains >= 90% of the writers' rate", "courier-relay-tailing", "courier-outbox-insert")
	drain("issue 5: tailing relay >= 90% of the commit rate (own throughput)", "courier-relay-tailing", "postgres-commit", 0.9)
	latency("issue 5: tailing relay p99 < 50 ms at 1,000 msgs/s", "courier-relay-tailing", 50*time.Millisecond)
	t.AddRow("issue 5: relay memory flat over 5 minutes", "-soak 5m (outbox-soak table)", "-", "not measured in this run")
	return t
}

// outboxPayload is the payload of message seq: the harness's header
// (see HeaderBytes) with the sequence number, zero padded.
func outboxPayload(seq int, sent int64) []byte {
	p := make([]byte, outboxPayloadSize)
	binary.LittleEndian.PutUint64(p, uint64(sent))
	binary.LittleEndian.PutUint64(p[8:], uint64(seq))
	return p
}

// deliveries records the first delivery time of each of n messages.
type deliveries struct {
	epoch   time.Time
	at      []atomic.Int64 // ns since epoch + 1; 0: not yet
	handled atomic.Int64
	dups    atomic.Int64
	garbled atomic.Int64
	all     chan struct{}
}

func newDeliveries(n int) *deliveries {
	return &deliveries{epoch: time.Now(), at: make([]atomic.Int64, n), all: make(chan struct{})}
}

func (d *deliveries) now() int64 { return int64(time.Since(d.epoch)) }

func (d *deliveries) deliver(p []byte) {
	t := d.now()
	if len(p) < HeaderBytes {
		d.garbled.Add(1)
		return
	}
	seq := binary.LittleEndian.Uint64(p[8:])
	if seq >= uint64(len(d.at)) {
		d.garbled.Add(1)
		return
	}
	if !d.at[seq].CompareAndSwap(0, t+1) {
		d.dups.Add(1)
		return
	}
	if d.handled.Add(1) == int64(len(d.at)) {
		close(d.all)
	}
}

// wait waits until every message was delivered, or fails after timeout.
func (d *deliveries) wait(ctx context.Context, name string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-d.all:
	case <-t.C:
	case <-ctx.Done():
	}
	if got, n := d.handled.Load(), int64(len(d.at)); got != n || d.garbled.Load() != 0 {
		return fmt.Errorf("%w: %s: %d of %d messages consumed, %d garbled (waited %v)", ErrIncomplete, name, got, n, d.garbled.Load(), timeout)
	}
	return nil
}

// last is the time of the last first delivery, in ns since the epoch.
func (d *deliveries) last() int64 {
	var last int64
	for i := range d.at {
		last = max(last, d.at[i].Load()-1)
	}
	return last
}

// commitAll commits messages from .. to-1 through publish with writers
// goroutines.
func commitAll(ctx context.Context, publish func(context.Context, string, []byte) error, from, to, writers int) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next.Store(int64(from))
	for range writers {
		wg.Go(func() {
			for {
				seq := int(next.Add(1) - 1)
				if seq >= to || ctx.Err() != nil {
					return
				}
				if err := publish(ctx, "key-"+strconv.Itoa(seq%DefaultKeys), outboxPayload(seq, 0)); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("commit message %d: %w", seq, err))
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runInto runs the cleanup (within 30 s) and reports its failure in
// *err, unless *err already holds an error.
func (c *cleanup) runInto(ctx context.Context, err *error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if cerr := c.run(cctx); cerr != nil && *err == nil {
		*err = fmt.Errorf("close: %w", cerr)
	}
}

type drainResult struct {
	rate       float64
	duplicates int64
	peakHeap   uint64
}

// drainOutbox commits n rows with sys's relay stopped, then starts it and
// measures rows/s from its start until the last row was handled.
func drainOutbox(ctx context.Context, sys outboxSystem, n int) (res drainResult, err error) {
	var c cleanup
	defer c.runInto(ctx, &err)
	d := newDeliveries(n)
	rig, err := sys.setUp(ctx, &c, outboxPublishers, DefaultConsumers, d.deliver)
	if err != nil {
		return res, err
	}
	if err := commitAll(ctx, rig.publish, 0, n, outboxPublishers); err != nil {
		return res, err
	}
	runtime.GC()
	sampler := startSampler(DefaultSampleEvery)
	start := d.now()
	if err := rig.start(ctx); err != nil {
		sampler.stop()
		return res, err
	}
	err = d.wait(ctx, sys.Name(), 2*time.Minute)
	res.peakHeap = sampler.stop().heap
	if err != nil {
		return res, err
	}
	res.rate = perSecond(n, time.Duration(d.last()-start))
	res.duplicates = d.dups.Load()
	return res, nil
}

type pacedResult struct {
	relayed bool
	// commitRate is the transactions a second the writers committed, from
	// the first slot to the last COMMIT's return.
	commitRate float64
	// commitP99 is the 99th percentile of BEGIN to COMMIT's return.
	commitP99 time.Duration
	// onTime is the share of commits that returned within 100 ms of
	// their slot.
	onTime float64
	// Commit-to-handle latency percentiles (relayed systems only).
	p50, p99, max time.Duration
	duplicates    int64
	samples       []heapSample
}

// keptPace reports whether the writers committed at 95% of the asked rate
// or more.
func (r pacedResult) keptPace() bool { return r.commitRate >= 0.95*outboxPacedRate }

// heapSample is the heap at one time of a soak run.
type heapSample struct {
	at         time.Duration
	live, used uint64
}

// pacedOutbox commits n transactions at rate a second with writers
// goroutines taking turns while sys's relay runs, and measures the
// latency from each COMMIT's return to its handling. With sampleEvery > 0
// it samples the heap at that interval into the result.
func pacedOutbox(ctx context.Context, sys outboxSystem, rate, n, writers int, sampleEvery time.Duration, progress func(heapSample)) (res pacedResult, err error) {
	var c cleanup
	defer c.runInto(ctx, &err)
	res.relayed = sys.relayed()
	d := newDeliveries(n)
	deliver := d.deliver
	if !res.relayed {
		deliver = func([]byte) {} // postgres-commit: only the commit rate counts
	}
	rig, err := sys.setUp(ctx, &c, writers, DefaultConsumers, deliver)
	if err != nil {
		return res, err
	}
	if rig.start != nil {
		if err := rig.start(ctx); err != nil {
			return res, err
		}
	}
	committed := make([]int64, n)  // ns since epoch when COMMIT returned
	commitDur := make([]int64, n)  // BEGIN to COMMIT's return
	late := make([]atomic.Bool, n) // returned over 100 ms after its slot
	stopSampling := func() []heapSample { return nil }
	if sampleEvery > 0 {
		stopSampling = sampleHeap(sampleEvery, progress)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		pubErr  error
	)
	start := d.now()
	for g := range writers {
		wg.Go(func() {
			for seq := g; seq < n; seq += writers {
				due := start + int64(seq)*int64(time.Second)/int64(rate)
				if wait := time.Duration(due - d.now()); wait > 0 {
					select {
					case <-time.After(wait):
					case <-pctx.Done():
						return
					}
				}
				began := d.now()
				if err := rig.publish(pctx, "key-"+strconv.Itoa(seq%DefaultKeys), outboxPayload(seq, began)); err != nil {
					errOnce.Do(func() { pubErr = fmt.Errorf("commit message %d: %w", seq, err); cancel() })
					return
				}
				done := d.now()
				committed[seq], commitDur[seq] = done, done-began
				late[seq].Store(done-due > int64(100*time.Millisecond))
			}
		})
	}
	wg.Wait()
	lastCommit := d.now()
	if pubErr != nil {
		stopSampling()
		return res, pubErr
	}
	if res.relayed {
		err = d.wait(ctx, sys.Name(), time.Minute)
	}
	res.samples = stopSampling()
	if err != nil {
		return res, err
	}
	res.commitRate = perSecond(n, time.Duration(lastCommit-start))
	onTime := 0
	for i := range late {
		if !late[i].Load() {
			onTime++
		}
	}
	res.onTime = float64(onTime) / float64(n)
	slices.Sort(commitDur)
	res.commitP99 = time.Duration(commitDur[percentileIndex(n, 99)])
	res.duplicates = d.dups.Load()
	if res.relayed {
		lat := make([]int64, n)
		for i := range lat {
			lat[i] = max(0, d.at[i].Load()-1-committed[i])
		}
		slices.Sort(lat)
		res.p50, res.p99, res.max = time.Duration(lat[percentileIndex(n, 50)]), time.Duration(lat[percentileIndex(n, 99)]), time.Duration(lat[n-1])
	}
	return res, nil
}

// sampleHeap samples the heap every interval, passing each sample to
// progress if not nil, until the returned function stops it and returns
// the samples. The live heap is runtime/metrics' /gc/heap/live:bytes
// (the heap marked live by the last GC: what the process keeps), the heap
// in use is runtime.MemStats.HeapInuse (live and not yet collected).
func sampleHeap(every time.Duration, progress func(heapSample)) (stop func() []heapSample) {
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	began := time.Now()
	done, out := make(chan struct{}), make(chan []heapSample, 1)
	go func() {
		var got []heapSample
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				metrics.Read(samples)
				hs := heapSample{at: time.Since(began).Round(time.Second), live: samples[0].Value.Uint64(),
					used: samples[1].Value.Uint64() + samples[2].Value.Uint64()}
				got = append(got, hs)
				if progress != nil {
					progress(hs)
				}
			case <-done:
				out <- got
				return
			}
		}
	}()
	return func() []heapSample { close(done); return <-out }
}

// soakSampleEvery is the heap sampling interval of the soak phase.
const soakSampleEvery = 10 * time.Second

// outboxSoak runs the paced phase of each Courier relay for o.Soak,
// sampling the heap every 10 s, and reports the first, last and highest
// samples: issue 5's "relay memory flat".
func outboxSoak(ctx context.Context, o Options) ([]Table, error) {
	n := int(o.Soak.Seconds() * outboxPacedRate)
	t := Table{ID: "outbox-soak", Title: fmt.Sprintf("%v at %d messages a second, heap sampled every %v", o.Soak, outboxPacedRate, soakSampleEvery),
		Columns: []string{"system", "commits/s", "p50 latency", "p99 latency", "duplicates", "samples", "live heap first", "live heap last", "live heap max", "heap in use max", "flat"}}
	var errs []error
	for _, sys := range []System{CourierPollingRelay(), CourierTailingRelay()} {
		name := sys.Name()
		r, err := pacedOutbox(ctx, sys.(outboxSystem), outboxPacedRate, n, DefaultPublishers, soakSampleEvery, func(h heapSample) {
			o.progress("%-12s %-34s soak %6v  live heap %s  in use %s", "outbox", name, h.at, fmtMiB(h.live), fmtMiB(h.used))
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			t.Note("%s failed: %v", name, err)
			continue
		}
		if len(r.samples) < 2 {
			t.Note("%s: fewer than 2 heap samples; run -soak for at least %v", name, 2*soakSampleEvery)
			continue
		}
		first, last := r.samples[0], r.samples[len(r.samples)-1]
		var maxLive, maxUsed uint64
		for _, h := range r.samples {
			maxLive, maxUsed = max(maxLive, h.live), max(maxUsed, h.used)
		}
		t.AddRow(name, fmtRate(r.commitRate), fmtLatency(r.p50), fmtLatency(r.p99), groupThousands(r.duplicates), strconv.Itoa(len(r.samples)),
			fmtMiB(first.live), fmtMiB(last.live), fmtMiB(maxLive), fmtMiB(maxUsed), yesNo(heapFlat(r.samples)))
	}
	t.Note("flat: the live heap of the last third of the samples stays within 25%% (and 2 MiB) of the first third's highest; the first sample is taken %v after the writers start.", soakSampleEvery)
	t.Note("The live heap is the whole process's: the harness keeps about 30 bytes a message of bookkeeping, allocated before the run.")
	return []Table{t}, errors.Join(errs...)
}

// heapFlat reports whether the live heap did not grow: the highest live
// heap of the last third of the samples is within 25% and 2 MiB of the
// highest of the first third.
func heapFlat(samples []heapSample) bool {
	third := max(len(samples)/3, 1)
	var early, late uint64
	for _, h := range samples[:third] {
		early = max(early, h.live)
	}
	for _, h := range samples[len(samples)-third:] {
		late = max(late, h.live)
	}
	return float64(late) <= 1.25*float64(early)+2<<20
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
