// Package outbox implements the transactional outbox: a service writes the
// messages it sends into the `message` table in the same database
// transaction as its business changes, and a relay publishes the committed
// rows to the broker afterwards. A rolled-back transaction sends nothing; a
// committed one is published at least once, even across crashes.
//
// Writer inserts the rows. Relay publishes them: one relay type, whatever
// the rows come from. Its Source reads committed rows in commit order; the
// default polls the table (every SQL dialect), reading unpublished rows in
// insertion order and deleting (or marking) them once the broker confirmed
// them; pgcdc.NewSource follows PostgreSQL's logical replication and
// mysqlcdc.NewSource the MySQL/MariaDB binary log, confirming their
// position in the log only after the broker confirmed every row before
// it. The relay itself owns the rest: the lease, publishing each
// destination's rows in order, dead-lettering rows that cannot be
// published (through the broker's way for dead letters, broker.DeadLetters),
// the counters (Stats), the lag (Lag) and the options.
//
// Several relays may run against one outbox for availability; a lease in
// the database lets exactly one of them publish at a time. A relay that
// stops releases the lease and a standby takes over within
// StandbyRetryInterval; one that dies is replaced once its lease expires
// (DefaultLeaseTTL, 3s), and one that can no longer renew stops
// publishing, abandoning a Send in flight, before the lease expires.
// Stats shows, besides the counts, whether publishing fails now
// (PublishFailingSince).
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// Writer writes messages into the outbox table inside the caller's
// transaction. It is safe for concurrent use.
type Writer struct {
	d           *sqldb.Dialect
	limits      message.Limits
	deleteAfter bool
	eventuate   *EventuateTable // WithEventuateTable
}

// WriterOption configures a Writer.
type WriterOption func(*Writer)

// WithWriterLimits sets the size limits the Writer enforces, which should
// match the broker's (default message.DefaultMaxPayloadBytes and
// message.DefaultMaxHeaderBytes).
func WithWriterLimits(l message.Limits) WriterOption {
	return func(w *Writer) { w.limits = l }
}

// WithDeleteAfterInsert makes the Writer delete each row in the same
// transaction right after inserting it. Only a transaction-log tailing
// relay (outbox/pgcdc, outbox/mysqlcdc) sees such rows — in the log — and
// the table stays empty; a polling relay would see nothing.
func WithDeleteAfterInsert() WriterOption {
	return func(w *Writer) { w.deleteAfter = true }
}

// NewWriter returns a Writer for the dialect's outbox table.
func NewWriter(d *sqldb.Dialect, opts ...WriterOption) *Writer {
	w := &Writer{d: d}
	for _, opt := range opts {
		opt(w)
	}
	return w
}

// maxRowsPerInsert bounds one multi-row INSERT, far below every database's
// limit on placeholders.
const maxRowsPerInsert = 500

// Send writes msgs, addressed to channel, into the outbox through tx — a
// *sql.Tx of the caller's business transaction. The messages are sent when
// the transaction commits and never if it rolls back. Like
// broker.Producer.Send, it assigns IDs to messages without one and fails
// without writing anything if a message is invalid.
func (w *Writer) Send(ctx context.Context, tx sqldb.Execer, channel string, msgs ...*message.Message) error {
	if w.eventuate != nil {
		return w.sendEventuate(ctx, tx, channel, msgs)
	}
	if err := adapter.PrepareSend(channel, msgs, w.limits); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	date := message.FormatDate(time.Now())
	now := time.Now().UnixMilli()
	for start := 0; start < len(msgs); start += maxRowsPerInsert {
		chunk := msgs[start:min(len(msgs), start+maxRowsPerInsert)]
		args := make([]any, 0, 5*len(chunk))
		for _, m := range chunk {
			headers := make(message.Headers, len(m.Headers)+2)
			for k, v := range m.Headers {
				headers[k] = v
			}
			headers[message.HeaderDestination] = channel
			if _, ok := headers[message.HeaderDate]; !ok {
				headers[message.HeaderDate] = date
			}
			encoded, err := json.Marshal(headers)
			if err != nil {
				return fmt.Errorf("outbox: encoding headers of message %s: %w", m.ID, err)
			}
			payload := m.Payload
			if payload == nil {
				payload = []byte{}
			}
			args = append(args, m.ID, channel, string(encoded), payload, now)
		}
		query := "INSERT INTO message (id, destination, headers, payload, published, creation_time) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, 0, ?), ", len(chunk)), ", ")
		if _, err := tx.ExecContext(ctx, w.d.Rebind(query), args...); err != nil {
			return fmt.Errorf("outbox: writing %d messages for %q: %w", len(chunk), channel, err)
		}
		if w.deleteAfter {
			ids := make([]any, len(chunk))
			for i, m := range chunk {
				ids[i] = m.ID
			}
			del := "DELETE FROM message WHERE id IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ") + ")"
			if _, err := tx.ExecContext(ctx, w.d.Rebind(del), ids...); err != nil {
				return fmt.Errorf("outbox: deleting %d messages for %q after insert: %w", len(chunk), channel, err)
			}
		}
	}
	return nil
}

// Producer returns a broker.Producer whose Send writes into tx, for code
// written against the broker port (event publishers, command senders) that
// should send through the outbox. It is valid while tx is.
func (w *Writer) Producer(tx sqldb.Execer) broker.Producer {
	return txProducer{w: w, tx: tx}
}

type txProducer struct {
	w  *Writer
	tx sqldb.Execer
}

func (p txProducer) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	return p.w.Send(ctx, p.tx, channel, msgs...)
}
