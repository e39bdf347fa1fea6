package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver

	"github.com/courier-go/courier/broker/memory"
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
			ErrUnavailable, redactURL(postgresURL()), err, PostgresURLEnv)
	}
	return nil
}

func openPG(ctx context.Context, c *cleanup) (*pgEnv, error) {
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
	db.SetMaxOpenConns(outboxPublishers + 16)
	db.SetMaxIdleConns(outboxPublishers + 16)
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

// outboxSystem builds the systems of the outbox suite.
type outboxSystem struct {
	name  string
	start func(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte)) (func(ctx context.Context, key string, payload []byte) error, error)
}

func (s outboxSystem) Name() string                    { return s.name }
func (s outboxSystem) Probe(ctx context.Context) error { return probePostgres(ctx) }

func (s outboxSystem) Start(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
	var c cleanup
	env, err := openPG(ctx, &c)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	publish, err := s.start(ctx, env, &c, consumers, deliver)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	return funcSession{publish: publish, close: c.run}, nil
}

// PostgresCommit is the database's own rate: each publish commits a
// business transaction with one order row and no message, and counts as
// delivered when the commit returns. It is the ceiling of every outbox
// system.
func PostgresCommit() System {
	return outboxSystem{name: "postgres-commit", start: func(_ context.Context, env *pgEnv, _ *cleanup, _ int, deliver func([]byte)) (func(context.Context, string, []byte) error, error) {
		return func(ctx context.Context, key string, payload []byte) error {
			if err := env.commit(ctx, key, nil); err != nil {
				return err
			}
			deliver(payload)
			return nil
		}, nil
	}}
}

// CourierOutboxInsert commits the business transaction with the message
// written through outbox.Writer, and counts it as delivered when the
// commit returns: the cost of the outbox insert, without a relay.
func CourierOutboxInsert() System {
	return outboxSystem{name: "courier-outbox-insert", start: func(_ context.Context, env *pgEnv, _ *cleanup, _ int, deliver func([]byte)) (func(context.Context, string, []byte) error, error) {
		w := outbox.NewWriter(sqldb.Postgres)
		return func(ctx context.Context, key string, payload []byte) error {
			if err := env.commit(ctx, key, func(tx *sql.Tx) error { return w.Send(ctx, tx, benchChannel, outboxMessage(key, payload)) }); err != nil {
				return err
			}
			deliver(payload)
			return nil
		}, nil
	}}
}

func outboxMessage(key string, payload []byte) *message.Message {
	m := message.New(payload)
	m.SetHeader(message.HeaderPartitionID, key)
	return m
}

// courierRelayed starts Courier's memory broker with consumers instances
// of one subscriber id, and returns the publish function of a writer
// committing business transactions with their message through
// outbox.Writer. run starts the relay publishing into the broker.
func courierRelayed(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte),
	run func(ctx context.Context, b *memory.Broker) (func() error, error)) (func(context.Context, string, []byte) error, error) {
	b, err := memory.New()
	if err != nil {
		return nil, err
	}
	c.add(b.Close)
	sys := CourierBroker{Label: "relay", Open: func(context.Context) (brokerCloser, error) { return brokerCloser{Broker: b}, nil }}
	if _, err := sys.Start(ctx, consumers, deliver); err != nil {
		return nil, err
	}
	wait, err := run(ctx, b)
	if err != nil {
		return nil, err
	}
	c.add(func(context.Context) error { return wait() })
	w := outbox.NewWriter(sqldb.Postgres)
	return func(ctx context.Context, key string, payload []byte) error {
		return env.commit(ctx, key, func(tx *sql.Tx) error { return w.Send(ctx, tx, benchChannel, outboxMessage(key, payload)) })
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

// CourierPollingRelay is outbox.Relay (the polling publisher) with
// LISTEN/NOTIFY wake-ups (pgnotify), its default batch of 500 rows and
// poll interval of 100 ms, publishing into Courier's memory broker, so
// that the figure is the relay's and the database's, not a broker's.
func CourierPollingRelay() System {
	return outboxSystem{name: "courier-relay-polling", start: func(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte)) (func(context.Context, string, []byte) error, error) {
		return courierRelayed(ctx, env, c, consumers, deliver, func(ctx context.Context, b *memory.Broker) (func() error, error) {
			r, err := outbox.NewRelay(env.db, sqldb.Postgres, b, outbox.WithWakeup(pgnotify.New(env.db)),
				outbox.WithRelayLogger(quietLogger))
			if err != nil {
				return nil, err
			}
			return goRun(ctx, r.Run), nil
		})
	}}
}

// CourierTailingRelay is the log-tailing relay (outbox/pgcdc: logical
// replication with pgoutput) on a replication slot and publication of its
// own, publishing into Courier's memory broker. Start returns once the
// relay streams, so that no row is committed before the slot exists.
func CourierTailingRelay() System {
	return outboxSystem{name: "courier-relay-tailing", start: func(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte)) (func(context.Context, string, []byte) error, error) {
		return courierRelayed(ctx, env, c, consumers, deliver, func(ctx context.Context, b *memory.Broker) (func() error, error) {
			name := env.schema
			r, err := pgcdc.New(env.db, env.dsn, b, pgcdc.WithSlot(name), pgcdc.WithPublication(name), pgcdc.WithName(name),
				pgcdc.WithLogger(quietLogger))
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
			stop := goRun(ctx, r.Run)
			deadline := time.Now().Add(30 * time.Second)
			for !r.Stats().Leader {
				if time.Now().After(deadline) {
					return nil, errors.Join(errors.New("pgcdc relay did not start streaming within 30s"), stop())
				}
				time.Sleep(10 * time.Millisecond)
			}
			return stop, nil
		})
	}}
}

// WatermillSQL is Watermill's SQL pub/sub (watermill-sql/v4) on the same
// database: the publisher writes each message in the business transaction
// (NewPublisher on the *sql.Tx, the default PostgreSQL schema adapter),
// and consumers subscriptions of one consumer group (the default
// PostgreSQL offsets adapter) poll the topic's table, batch rows at a
// time, acking each message. The payload column is BYTEA, as Courier's
// (Watermill's default is JSON, which binary payloads do not fit). The poll interval is set to Courier's
// relay's, 100 ms (Watermill's default is 1 s).
func WatermillSQL(batch int) System {
	return outboxSystem{name: fmt.Sprintf("watermill-sql-batch%d", batch), start: func(ctx context.Context, env *pgEnv, c *cleanup, consumers int, deliver func([]byte)) (func(context.Context, string, []byte) error, error) {
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
			return nil, err
		}
		var wc cleanup
		wc.add(func(context.Context) error { return sub.Close() })
		const topic = "bench_events"
		if err := sub.SubscribeInitialize(topic); err != nil {
			return nil, wc.fail(ctx, err)
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
		s, err := watermillConsume(ctx, "watermill-sql", wc, sub, topic, consumers, 1, same(deliver), publish)
		if err != nil {
			return nil, err
		}
		c.add(s.Close)
		return publish, nil
	}}
}

// OutboxSuite measures the transactional outbox on PostgreSQL (fsync on,
// the server's defaults) in two phases, each system on a fresh schema:
//
//   - sustained: 16 writers commit business transactions (an order row
//     and a message) as fast as they can while the relay or subscriber
//     delivers; end-to-end msgs/s against postgres-commit, the same
//     transactions without a message;
//   - paced: 64 writers take turns to commit 1,000 transactions a second;
//     latency from the start of the commit to the consumer.
//
// Both relays and watermill-sql deliver at least once, so duplicates do
// not fail a run; the tables count them.
type OutboxSuite struct{}

func outboxSuite() Suite { return OutboxSuite{} }

// Name implements Suite.
func (OutboxSuite) Name() string { return "outbox" }

// OutboxSystems returns the systems of the outbox suite; the first two
// have no relay and are measured in the sustained phase only.
func OutboxSystems() []System {
	return []System{
		PostgresCommit(),
		CourierOutboxInsert(),
		CourierPollingRelay(),
		CourierTailingRelay(),
		WatermillSQL(1),
		WatermillSQL(100),
	}
}

// Configs returns the workloads of the sustained and paced phases.
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
	sustainedCfg, pacedCfg := s.Configs(o)
	sustained := Table{ID: "outbox-sustained", Title: fmt.Sprintf("%d messages, %d writers as fast as they go", sustainedCfg.Messages, outboxPublishers),
		Columns: []string{"system", "end-to-end msgs/s", "commits/s", "of postgres-commit", "p50 latency", "p99 latency", "duplicates", "allocs/msg", "peak heap"}}
	paced := Table{ID: "outbox-paced", Title: fmt.Sprintf("%d messages at %d a second", pacedCfg.Messages, outboxPacedRate),
		Columns: []string{"system", "msgs/s", "p50 latency", "p99 latency", "max latency", "duplicates"}}
	var (
		errs    []error
		ceiling float64
		rates   = map[string]float64{}
		p99s    = map[string]time.Duration{}
	)
	for i, sys := range OutboxSystems() {
		skip, err := probe(ctx, sys, o)
		if err != nil {
			return nil, err
		}
		if skip != "" {
			sustained.Note("not measured: %s", skip)
			return []Table{sustained}, nil
		}
		r, err := Measure(ctx, sys, sustainedCfg, o.warmup())
		if err != nil {
			errs = append(errs, err)
			sustained.Note("%s failed: %v", sys.Name(), err)
		} else {
			if i == 0 {
				ceiling = r.EndToEndRate()
			}
			rates[sys.Name()] = r.EndToEndRate()
			o.progress("%-12s %-34s sustained %10s msgs/s  p99 %s", "outbox", sys.Name(), fmtRate(r.EndToEndRate()), fmtLatency(r.P99))
			sustained.AddRow(sys.Name(), fmtRate(r.EndToEndRate()), fmtRate(r.PublishRate()), fmtPercent(r.EndToEndRate()/ceiling),
				fmtLatency(r.P50), fmtLatency(r.P99), groupThousands(r.Duplicates), fmtOneDecimal(r.AllocsPerMessage()), fmtMiB(r.PeakHeap))
		}
		if i < 2 {
			continue
		}
		r, err = Run(ctx, sys, pacedCfg)
		if err != nil {
			errs = append(errs, err)
			paced.Note("%s failed: %v", sys.Name(), err)
			continue
		}
		p99s[sys.Name()] = r.P99
		o.progress("%-12s %-34s paced %10s msgs/s  p99 %s", "outbox", sys.Name(), fmtRate(r.EndToEndRate()), fmtLatency(r.P99))
		paced.AddRow(sys.Name(), fmtRate(r.EndToEndRate()), fmtLatency(r.P50), fmtLatency(r.P99), fmtLatency(r.Max),
			groupThousands(r.Duplicates))
	}
	return []Table{sustained, paced, outboxTargets(rates, p99s)}, errors.Join(errs...)
}

// outboxTargets checks the targets of issues 4 and 5.
func outboxTargets(rates map[string]float64, p99s map[string]time.Duration) Table {
	t := Table{ID: "outbox-targets", Title: "targets", Columns: []string{"target", "measured", "met"}}
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	ratio := func(goal, a, b string, min float64) {
		ra, okA := rates[a]
		rb, okB := rates[b]
		if !okA || !okB || rb == 0 {
			t.AddRow(goal, "-", "not measured")
			return
		}
		t.AddRow(goal, fmt.Sprintf("%.2fx", ra/rb), verdict(ra/rb >= min))
	}
	latency := func(goal, sys string, limit time.Duration) {
		p, ok := p99s[sys]
		if !ok {
			t.AddRow(goal, "-", "not measured")
			return
		}
		t.AddRow(goal, fmtLatency(p), verdict(p < limit))
	}
	ratio("issue 4: polling relay >= 90% of the commit rate", "courier-relay-polling", "postgres-commit", 0.9)
	ratio("issue 4: polling relay >= 5x watermill-sql at batch 100", "courier-relay-polling", "watermill-sql-batch100", 5)
	latency("issue 4: polling relay p99 < 100 ms at 1,000 msgs/s", "courier-relay-polling", 100*time.Millisecond)
	ratio("issue 5: tailing relay >= 90% of the commit rate", "courier-relay-tailing", "postgres-commit", 0.9)
	latency("issue 5: tailing relay p99 < 50 ms at 1,000 msgs/s", "courier-relay-tailing", 50*time.Millisecond)
	return t
}
