// Package inbox makes message handlers idempotent. A handler wrapped by
// Handler runs in a database transaction that first records the pair
// (consumer id, message id) in the received_messages table; when the pair
// is already there the message was handled before, and it is skipped. The
// record and the handler's own changes commit or roll back together, so a
// redelivered message changes business data exactly once.
//
// The transaction is the handler's argument, as in database/sql, and
// Courier's dispatchers take it that way: commands.Dispatcher,
// commands.ReplyDispatcher and events.Dispatcher each have a HandleTx
// method that is a TxHandler, which hands the transaction to the typed
// handler (Command.Tx, ReplyMessage.Tx, Event.Tx) and, for commands,
// writes the reply through the outbox in it. Messages the handler sends
// through an outbox.Writer's Producer(tx) join the same transaction, so
// receiving a message, changing state, recording the message and emitting
// replies and events is one transaction:
//
//	ib.Handler(dispatcher.HandleTx)
package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// TxHandler handles a message inside the transaction tx. Its error rolls
// the transaction back, so the message will be handled again.
type TxHandler func(ctx context.Context, tx *sql.Tx, msg *message.Message) error

// Inbox records handled messages in one database.
type Inbox struct {
	db         *sql.DB
	d          *sqldb.Dialect
	consumerID string
	txOptions  *sql.TxOptions
	insert     string
	onSkip     func(ctx context.Context, msg *message.Message)
}

// Option configures an Inbox.
type Option func(*Inbox)

// WithConsumerID sets the consumer id recorded with each message. By default
// it is the subscriber id of the delivery (broker.Delivery).
func WithConsumerID(id string) Option { return func(i *Inbox) { i.consumerID = id } }

// WithTxOptions sets the isolation level and read-only flag of the
// handler's transaction.
func WithTxOptions(opts *sql.TxOptions) Option { return func(i *Inbox) { i.txOptions = opts } }

// OnDuplicate is called for each skipped duplicate, e.g. to count them.
func OnDuplicate(f func(ctx context.Context, msg *message.Message)) Option {
	return func(i *Inbox) { i.onSkip = f }
}

// New returns an Inbox over db's received_messages table.
func New(db *sql.DB, d *sqldb.Dialect, opts ...Option) *Inbox {
	i := &Inbox{db: db, d: d, insert: d.InsertIgnore("received_messages", "consumer_id", "message_id", "creation_time")}
	for _, opt := range opts {
		opt(i)
	}
	return i
}

// ErrNoConsumerID means neither WithConsumerID nor the delivery context
// named the consumer.
var ErrNoConsumerID = errors.New("inbox: no consumer id (use WithConsumerID outside broker deliveries)")

// Handler wraps h into a broker.Handler that handles each message at most
// once per consumer id.
func (i *Inbox) Handler(h TxHandler) broker.Handler {
	return broker.HandlerFunc(func(ctx context.Context, msg *message.Message) error {
		return i.Handle(ctx, msg, h)
	})
}

// Handle runs h for msg in a transaction, unless msg was handled before. It
// reports whether h ran through the error only: a skipped duplicate returns
// nil. An error that says the database cannot be reached now, from the
// inbox's own statements or from h's (sqldb.IsUnavailable), is marked
// with broker.Unavailable: the subscription then retries the message
// without spending its attempts, so that a database restart or failover
// delays messages rather than dead-lettering them.
func (i *Inbox) Handle(ctx context.Context, msg *message.Message, h TxHandler) error {
	consumer := i.consumerID
	if consumer == "" {
		info, ok := broker.Delivery(ctx)
		if !ok {
			return broker.Permanent(ErrNoConsumerID)
		}
		consumer = info.SubscriberID
	}
	if msg.ID == "" {
		return broker.Permanent(fmt.Errorf("inbox: %w", message.ErrMissingID))
	}
	err := i.handle(ctx, consumer, msg, h)
	if sqldb.IsUnavailable(err) {
		// The database is down or restarting, not the message at fault:
		// the subscription waits for it without spending attempts.
		err = broker.Unavailable(err)
	}
	return err
}

// handle is Handle's transaction.
func (i *Inbox) handle(ctx context.Context, consumer string, msg *message.Message, h TxHandler) error {
	tx, err := i.db.BeginTx(ctx, i.txOptions)
	if err != nil {
		return fmt.Errorf("inbox: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ExecContext(ctx, i.insert, consumer, msg.ID, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("inbox: recording message %s for %s: %w", msg.ID, consumer, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("inbox: recording message %s for %s: %w", msg.ID, consumer, err)
	}
	if n == 0 {
		if i.onSkip != nil {
			i.onSkip(ctx, msg)
		}
		return nil // handled before
	}
	if err := h(ctx, tx, msg); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("inbox: commit of message %s for %s: %w", msg.ID, consumer, err)
	}
	return nil
}

// Purge deletes tracking rows older than age and returns how many it
// deleted. Keep age well above the longest time a message can take to be
// redelivered (broker retention, outbox relay outages), or a late
// duplicate would be handled again.
func (i *Inbox) Purge(ctx context.Context, age time.Duration) (int64, error) {
	res, err := i.db.ExecContext(ctx, i.d.Rebind("DELETE FROM received_messages WHERE creation_time < ?"),
		time.Now().Add(-age).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("inbox: purging rows older than %v: %w", age, err)
	}
	return res.RowsAffected()
}

// RunPurger purges rows older than age every interval until ctx ends.
func (i *Inbox) RunPurger(ctx context.Context, age, interval time.Duration, logger *slog.Logger) {
	if logger == nil {
		logger = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := i.Purge(ctx, age); err != nil {
				logger.Warn("courier: inbox purge failed", slog.Any("error", err))
			} else if n > 0 {
				logger.Debug("courier: inbox purged", slog.Int64("rows", n))
			}
		}
	}
}
