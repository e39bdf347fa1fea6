// Package pgnotify wakes an outbox relay through PostgreSQL's LISTEN/NOTIFY:
// the outbox schema's trigger notifies the channel courier_outbox when a
// transaction that inserted outbox rows commits, and the relay polls at
// once instead of waiting for its next interval.
//
// It needs a database/sql pool opened with the pgx driver
// (github.com/jackc/pgx/v5/stdlib).
package pgnotify

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the notification channel the outbox trigger notifies.
const Channel = "courier_outbox"

// Listener holds one connection of the pool in LISTEN and wakes the relay on
// each notification. It implements outbox.Wakeup.
type Listener struct {
	db *sql.DB
}

// New returns a Listener over db, which must use the pgx driver.
func New(db *sql.DB) *Listener { return &Listener{db: db} }

// Run listens until ctx ends, reconnecting after connection failures, and
// calls wake for every notification and after every (re)connection (a
// notification may have been missed while disconnected).
func (l *Listener) Run(ctx context.Context, wake func()) error {
	backoff := 100 * time.Millisecond
	for {
		err := l.listen(ctx, wake)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errNotPgx) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

var errNotPgx = errors.New("pgnotify: the database/sql pool does not use the pgx driver")

func (l *Listener) listen(ctx context.Context, wake func()) error {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("pgnotify: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		pc, ok := driverConn.(interface{ Conn() *pgx.Conn })
		if !ok {
			return errNotPgx
		}
		c := pc.Conn()
		if _, err := c.Exec(ctx, "LISTEN "+Channel); err != nil {
			return fmt.Errorf("pgnotify: LISTEN: %w", err)
		}
		wake()
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				// A cancelled wait leaves the connection unusable
				// and still listening: have the pool discard it.
				return fmt.Errorf("pgnotify: waiting for notifications: %w (%w)", err, driver.ErrBadConn)
			}
			wake()
		}
	})
}
