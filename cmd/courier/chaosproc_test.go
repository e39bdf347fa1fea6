package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/inbox"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// The programs TestChaos runs as child processes besides courier relay:
// the consumer and the NATS server. What they print that the test reads.
const (
	chaosConsumerReady = "chaos consumer: subscribed"
	chaosNATSReady     = "chaos nats: listening on"
	// chaosDuplicate starts a line for each redelivery the inbox absorbed.
	chaosDuplicate = "chaos consumer: duplicate absorbed"
	// chaosDeadLetter starts a line for each message the consumer gave up
	// on.
	chaosDeadLetter = "chaos consumer: dead-lettered"
)

// The consumers' subscriber id. Each run sends to a channel of its own,
// so that nothing a run left in a broker reaches the next.
const chaosSubscriber = "chaos-consumer"

// runTestChild is what a child process of this package's tests runs: one
// of the chaos test's programs, or a courier command.
func runTestChild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch args[0] {
	case "chaos-consumer":
		return chaosConsumer(ctx, args[1:], stdout, stderr)
	case "chaos-nats":
		return chaosNATS(ctx, args[1:], stdout, stderr)
	}
	return run(ctx, args, stdout, stderr)
}

// chaosConsumer is a service that consumes a channel as the subscriber id
// chaos-consumer, until ctx ends. Each message's effect is applied by
// applyChaosEffect in the transaction in which the inbox records the
// message. The subscription keeps the default retries: the inbox marks
// the failures of a database that restarts as unavailable, which the
// subscription retries without spending attempts.
func chaosConsumer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos-consumer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dialect   = fs.String("dialect", "", "sqldb dialect name")
		driver    = fs.String("driver", "", "database/sql driver")
		dsn       = fs.String("dsn", "", "database DSN")
		brokerURL = fs.String("broker", "", "nats:// or amqp:// URL")
		channel   = fs.String("channel", "", "the channel to consume")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := sqldb.ByName(*dialect)
	if err != nil {
		return err
	}
	db, err := sql.Open(*driver, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := openChaosBroker(setup, *brokerURL, logger)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		b.Close(ctx)
	}()
	in := inbox.New(db, d, inbox.OnDuplicate(func(_ context.Context, m *message.Message) {
		fmt.Fprintln(stdout, chaosDuplicate, m.ID)
	}))
	h := in.Handler(func(ctx context.Context, tx *sql.Tx, m *message.Message) error {
		return applyChaosEffect(ctx, tx, d, m)
	})
	sub, err := b.Subscribe(setup, chaosSubscriber, []string{*channel}, h,
		broker.WithHandlerTimeout(15*time.Second), broker.WithObserver(deadLetterPrinter{stdout}), broker.WithLogger(logger))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, chaosConsumerReady)
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	return sub.Close(closeCtx)
}

// openChaosBroker opens the broker of a nats:// or amqp:// URL as a
// service would, with its adapter's constructor. RabbitMQ deletes the
// test's queues a minute after their last consumer left.
func openChaosBroker(ctx context.Context, u string, logger *slog.Logger) (broker.Broker, error) {
	switch {
	case strings.HasPrefix(u, "nats://"):
		return natsjs.Open(ctx, u, natsjs.WithLogger(logger))
	case strings.HasPrefix(u, "amqp://"):
		return amqp.Open(ctx, u, amqp.WithLogger(logger), amqp.WithQueueExpiry(time.Minute))
	}
	return nil, fmt.Errorf("chaos consumer: broker URL %q: want nats:// or amqp://", u)
}

// applyChaosEffect is the consumer's business change for m: it appends
// the effect of m (its key, its "seq" header and the seq of the key's
// effect applied before it) to chaos_effect and makes m the key's last,
// under the key's row lock. The test reads chaos_effect to check that
// each message was applied once, and each key's in the order written.
func applyChaosEffect(ctx context.Context, tx *sql.Tx, d *sqldb.Dialect, m *message.Message) error {
	key := m.PartitionKey()
	seq, err := strconv.Atoi(m.Header("seq"))
	if err != nil {
		return broker.Permanent(fmt.Errorf("message %s: seq header: %w", m.ID, err))
	}
	var prev int
	if err := tx.QueryRowContext(ctx, d.Rebind("SELECT last_seq FROM chaos_key WHERE k = ? FOR UPDATE"), key).Scan(&prev); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return broker.Permanent(fmt.Errorf("message %s: unknown key %q", m.ID, key))
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, d.Rebind("INSERT INTO chaos_effect (k, seq, prev_seq, message_id, consumer_pid) VALUES (?, ?, ?, ?, ?)"),
		key, seq, prev, m.ID, os.Getpid()); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, d.Rebind("UPDATE chaos_key SET last_seq = ? WHERE k = ?"), seq, key)
	return err
}

// deadLetterPrinter prints a line for each message the consumer gives up
// on.
type deadLetterPrinter struct{ w io.Writer }

func (p deadLetterPrinter) DeadLettered(_ context.Context, _ broker.DeliveryInfo, id, envelope string) {
	fmt.Fprintln(p.w, chaosDeadLetter, id, envelope)
}

func (p deadLetterPrinter) Discarded(_ context.Context, _ broker.DeliveryInfo, id string, err error) {
	fmt.Fprintln(p.w, chaosDeadLetter, id, "discarded:", err)
}

// chaosNATS runs an embedded NATS JetStream server that other processes
// reach on 127.0.0.1, until ctx ends; started again on the same
// directory and port, it carries on where it stopped.
func chaosNATS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos-nats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dir  = fs.String("dir", "", "store directory")
		port = fs.Int("port", 0, "listen port; 0 picks one")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	start, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(start, *dir, embedded.WithListenPort(*port))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, chaosNATSReady, srv.ClientURL())
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	return srv.Shutdown(stop)
}
