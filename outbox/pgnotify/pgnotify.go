// Package pgnotify wakes a polling outbox relay through PostgreSQL's
// LISTEN/NOTIFY: a trigger on the outbox table notifies the channel
// courier_outbox when a transaction that inserted outbox rows commits, and
// the relay polls at once instead of waiting for its next interval.
//
// The trigger is opt-in: the schema (sqldb.Migrate) does not create it,
// Install does, and Uninstall removes it. It costs every writer of the
// outbox commit throughput (see Install), so install it only for a polling
// relay whose delivery latency matters more than that. Without it a polling
// relay finds new rows within its poll interval; the tailing relay
// (outbox/pgcdc) follows the database's log and never needs it.
// `courier relay -notify` installs it and listens.
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

	"github.com/courier-go/courier/sqldb"
)

// Channel is the notification channel the outbox trigger notifies. Each
// notification's payload is the schema of the outbox table that was
// written to (channels are per database, not per schema); a Listener
// wakes on any payload.
const Channel = "courier_outbox"

// TriggerName names both the trigger Install creates on the outbox table
// and its function.
const TriggerName = "courier_outbox_notify"

// Install creates the trigger that wakes polling relays: the function
// courier_outbox_notify and a statement-level AFTER INSERT trigger of the
// same name on the outbox table (message, in the first schema of db's
// search_path that has it), which notify Channel once per transaction that
// inserted outbox rows, when it commits. It runs in one transaction, is
// idempotent and may run concurrently with other Installs (a relay may
// call it at every start). The Courier schema must exist (sqldb.Migrate);
// errors.Is(err, sqldb.ErrSchemaMissing) reports when it does not.
//
// The trigger costs every writer of the outbox, not only the relay:
// PostgreSQL serializes the commits of all transactions that sent a
// notification, holding a database-wide lock on the notification queue
// through each one's WAL flush, so they no longer share flushes. On 2
// cores, 16 outbox writers committed 1,706 transactions a second with the
// trigger against 2,524 without, and the tailing relay kept up with 1,000
// commits a second only without it. Install it for a polling relay
// (outbox.Relay with outbox.WithWakeup(New(db))) where delivery latency
// matters more than commit throughput; without it that relay finds new
// rows within its poll interval. The tailing relay (outbox/pgcdc) reads
// the log and never needs it.
func Install(ctx context.Context, db *sql.DB) error {
	return inTx(ctx, db, "installing the trigger", func(tx *sql.Tx) error {
		// Serializes concurrent Installs, which would otherwise race to
		// replace the function and to create the trigger.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", TriggerName); err != nil {
			return err
		}
		var table sql.NullString
		if err := tx.QueryRowContext(ctx, "SELECT to_regclass('message')::text").Scan(&table); err != nil {
			return err
		}
		if !table.Valid {
			return fmt.Errorf("%w: no outbox table message in the search_path; create the schema with sqldb.Migrate(ctx, db, sqldb.Postgres) first",
				sqldb.ErrSchemaMissing)
		}
		if _, err := tx.ExecContext(ctx, `CREATE OR REPLACE FUNCTION `+TriggerName+`() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('`+Channel+`', TG_TABLE_SCHEMA);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql`); err != nil {
			return err
		}
		var installed bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'message'::regclass AND tgname = $1)",
			TriggerName).Scan(&installed); err != nil || installed {
			return err
		}
		_, err := tx.ExecContext(ctx, "CREATE TRIGGER "+TriggerName+" AFTER INSERT ON message FOR EACH STATEMENT EXECUTE FUNCTION "+TriggerName+"()")
		return err
	})
}

// Uninstall removes what Install created, in one transaction; it does
// nothing where they do not exist. Relays listening on Channel keep
// running and poll at their interval.
func Uninstall(ctx context.Context, db *sql.DB) error {
	return inTx(ctx, db, "removing the trigger", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", TriggerName); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+TriggerName+" ON message"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DROP FUNCTION IF EXISTS "+TriggerName+"()")
		return err
	})
}

// inTx runs f in a transaction and commits it.
func inTx(ctx context.Context, db *sql.DB, what string, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("pgnotify: %s: %w", what, err)
	}
	if err := f(tx); err != nil {
		return errors.Join(fmt.Errorf("pgnotify: %s: %w", what, err), tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("pgnotify: %s: %w", what, err)
	}
	return nil
}

// Listener holds one connection of the pool in LISTEN and wakes the relay on
// each notification. It implements outbox.Wakeup.
type Listener struct {
	db *sql.DB
	// accept, when set, sees each notification's payload and decides
	// whether it wakes the relay (tests).
	accept func(payload string) bool
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
			n, err := c.WaitForNotification(ctx)
			if err != nil {
				// A cancelled wait leaves the connection unusable
				// and still listening: have the pool discard it.
				return fmt.Errorf("pgnotify: waiting for notifications: %w (%w)", err, driver.ErrBadConn)
			}
			if l.accept == nil || l.accept(n.Payload) {
				wake()
			}
		}
	})
}
