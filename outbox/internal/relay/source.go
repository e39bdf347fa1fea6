// Package relay holds what the outbox relay (outbox.Relay) and its sources
// share and users need not see: the rows a source reads, the source and
// reader interfaces, and the keeper of the leader's lease.
//
// The relay owns the lease, the leader loop, publishing, dead-lettering,
// stats and options; a source owns only where rows come from and how a
// position is confirmed after the broker acknowledged the rows before it:
// the table poller (package outbox), PostgreSQL logical replication
// (outbox/pgcdc) and the MySQL/MariaDB binary log (outbox/mysqlcdc).
package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// Row is one outbox row as a source reads it, from a query or from the
// database's transaction log.
type Row struct {
	ID          string
	Destination string
	Headers     string // the headers column: a JSON object of strings
	Payload     []byte
	// Committed is when the row's transaction committed, as well as the
	// source knows: the commit time in the log (PostgreSQL's to the
	// microsecond, the binary log's to the second), or the row's
	// creation_time, its insert in the transaction (the table poller).
	// Zero if unknown.
	Committed time.Time
}

// Message decodes the row into the message to publish, or says why it
// cannot be published: undecodable headers, an invalid destination, a
// message over limits.
func (rw Row) Message(limits message.Limits) (*message.Message, error) {
	headers, err := decodeHeaders(rw.Headers)
	if err != nil {
		return nil, fmt.Errorf("undecodable headers: %w", err)
	}
	if err := message.ValidateChannel(rw.Destination); err != nil {
		return nil, fmt.Errorf("invalid destination: %w", err)
	}
	delete(headers, message.HeaderID)
	m := &message.Message{ID: rw.ID, Headers: headers, Payload: rw.Payload}
	if err := limits.Check(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Env is what a relay tells its source once, when it is made.
type Env struct {
	DB      *sql.DB
	Dialect *sqldb.Dialect
	// Name is the outbox's name (outbox.WithName): the lease's, and the
	// key of what a source stores.
	Name   string
	Logger *slog.Logger
}

// Source is where a relay's rows come from.
type Source interface {
	// Bind checks that the source can serve the relay env describes and
	// keeps env. The relay calls it once, before anything else.
	Bind(env Env) error
	// Setup checks the database and prepares what the source needs (a
	// replication slot, a stored position). The relay's Setup and Run
	// call it before they compete for the lease; its errors end Run.
	Setup(ctx context.Context) error
	// Open starts reading while the relay leads with lead.
	Open(ctx context.Context, lead Lead) (Reader, error)
	// Lag says how far the source is behind the database.
	Lag(ctx context.Context) (Lag, error)
	// Progress is the source's last confirmed position; it is safe for
	// concurrent use.
	Progress() Progress
}

// Reader reads rows in commit order for one leadership (or until it
// fails). One goroutine calls it.
type Reader interface {
	// Read returns the oldest rows whose publication is not confirmed:
	// those of the last Read that Confirm did not mark done, or newer
	// ones. It returns no row, and no error, when none came within the
	// source's idle wait, so that the relay can look at its lease.
	Read(ctx context.Context) ([]Row, error)
	// Confirm says which rows of the last Read the broker confirmed
	// (done[i] for the i-th row). A source confirms a position only past
	// rows all confirmed; its writes are fenced by the lease, and it
	// returns an error wrapping sqldb.ErrLeaseLost when the fence shows
	// that another relay leads.
	Confirm(ctx context.Context, done []bool) error
	// Close ends the reading, keeping what was confirmed where it can.
	Close(ctx context.Context) error
}

// Lead is a leadership the relay gives a Reader: the lease, whose Fence
// guards the source's writes, and its keeper.
type Lead struct {
	Lease  *sqldb.Lease
	Keeper *Keeper
}

// Lag is how far a source is behind its outbox: the age of the oldest
// row waiting (the table poller) or the bytes of log not confirmed (the
// log-tailing sources).
type Lag struct {
	Age   time.Duration
	Bytes int64
}

// Progress is a source's position: where it would resume, in its own
// notation, and the commit time of the last transaction it published.
type Progress struct {
	Position   string
	LastCommit time.Time
}

// Fatal marks err as one that retrying does not cure, such as an outbox
// table whose layout the source cannot read: it ends the relay's Run. The
// mark is a Permanent() bool method, found with errors.As.
func Fatal(err error) error {
	if err == nil {
		return nil
	}
	return fatalError{err}
}

type fatalError struct{ error }

func (e fatalError) Unwrap() error   { return e.error }
func (e fatalError) Permanent() bool { return true }

// IsFatal reports whether err carries a Permanent() bool method that
// returns true.
func IsFatal(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// Unconfirmed returns the rows not marked done (done[i] for rows[i]), in
// order, reusing rows' array: what a log-tailing reader still holds after
// a Confirm.
func Unconfirmed(rows []Row, done []bool) []Row {
	left := rows[:0]
	for i, rw := range rows {
		if i >= len(done) || !done[i] {
			left = append(left, rw)
		}
	}
	clear(rows[len(left):])
	return left
}
