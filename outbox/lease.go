package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/courier-go/courier/sqldb"
)

// lease is a leader lease kept in the courier_lease table. Expiry is
// measured on the database's clock, so relays on machines whose clocks
// disagree still agree on who leads. Each acquisition increments the
// token, which fences the previous holder's writes.
type lease struct {
	db    *sql.DB
	d     *sqldb.Dialect
	name  string
	owner string
	ttl   time.Duration

	token     int64
	held      bool
	renewedAt time.Time // local time the last successful acquire or renew began
}

// acquire takes the lease if it is free or expired (or already ours).
func (l *lease) acquire(ctx context.Context) (bool, error) {
	if _, err := l.db.ExecContext(ctx, l.d.InsertIgnore("courier_lease", "name", "owner", "token", "expires_at", "beats"),
		l.name, "", 0, 0, 0); err != nil {
		return false, fmt.Errorf("creating lease %q: %w", l.name, err)
	}
	started := time.Now()
	now := l.d.NowMillis()
	res, err := l.db.ExecContext(ctx, l.d.Rebind(
		"UPDATE courier_lease SET owner = ?, token = token + 1, expires_at = "+now+" + ?, beats = beats + 1"+
			" WHERE name = ? AND (expires_at < "+now+" OR owner = '' OR owner = ?)"),
		l.owner, l.ttl.Milliseconds(), l.name, l.owner)
	if err != nil {
		return false, fmt.Errorf("acquiring lease %q: %w", l.name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		l.held = false
		return false, err
	}
	if err := l.db.QueryRowContext(ctx, l.d.Rebind("SELECT token FROM courier_lease WHERE name = ? AND owner = ?"),
		l.name, l.owner).Scan(&l.token); err != nil {
		l.held = false
		return false, fmt.Errorf("reading lease %q: %w", l.name, err)
	}
	l.held, l.renewedAt = true, started
	return true, nil
}

// errLeaseLost means another relay took the lease.
var errLeaseLost = errors.New("lease lost to another relay")

// renew extends a held lease; it fails with errLeaseLost if another relay
// has taken it since.
func (l *lease) renew(ctx context.Context) error {
	started := time.Now()
	res, err := l.db.ExecContext(ctx, l.d.Rebind(
		"UPDATE courier_lease SET expires_at = "+l.d.NowMillis()+" + ?, beats = beats + 1 WHERE name = ? AND owner = ? AND token = ?"),
		l.ttl.Milliseconds(), l.name, l.owner, l.token)
	if err != nil {
		return fmt.Errorf("renewing lease %q: %w", l.name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		l.held = false
		return errLeaseLost
	}
	l.renewedAt = started
	return nil
}

// valid reports whether the lease is certainly still ours: renewed less
// than three quarters of its time to live ago, measured locally from
// before the renewal was sent.
func (l *lease) valid() bool {
	return l.held && time.Since(l.renewedAt) < l.ttl*3/4
}

// release gives the lease up so that another relay can take it at once.
func (l *lease) release(ctx context.Context) error {
	if !l.held {
		return nil
	}
	l.held = false
	_, err := l.db.ExecContext(ctx, l.d.Rebind(
		"UPDATE courier_lease SET owner = '', expires_at = 0, beats = beats + 1 WHERE name = ? AND owner = ? AND token = ?"),
		l.name, l.owner, l.token)
	if err != nil {
		return fmt.Errorf("releasing lease %q: %w", l.name, err)
	}
	return nil
}

// fence is an SQL condition, with its arguments, that holds only while this
// relay still holds the lease with its current token.
func (l *lease) fence() (string, []any) {
	return "EXISTS (SELECT 1 FROM courier_lease WHERE name = ? AND owner = ? AND token = ?)", []any{l.name, l.owner, l.token}
}
