package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Lease is a leader lease kept in the courier_lease table: several
// processes compete for it, one holds it at a time. Expiry is measured on
// the database's clock, so processes on machines whose clocks disagree
// still agree on who leads. Each acquisition increments the token, which
// fences the previous holder's writes (see Fence).
//
// A Lease is used by one goroutine at a time.
type Lease struct {
	db    *sql.DB
	d     *Dialect
	name  string
	owner string
	ttl   time.Duration

	token     int64
	held      bool
	renewedAt time.Time // local time the last successful acquire or renew began
}

// NewLease returns a lease called name, to be held by owner for ttl after
// each acquisition or renewal.
func NewLease(db *sql.DB, d *Dialect, name, owner string, ttl time.Duration) *Lease {
	return &Lease{db: db, d: d, name: name, owner: owner, ttl: ttl}
}

// Held reports whether this process believes it holds the lease (see Valid).
func (l *Lease) Held() bool { return l.held }

// Token is the fencing token of the current holding.
func (l *Lease) Token() int64 { return l.token }

// TTL is the lease's time to live.
func (l *Lease) TTL() time.Duration { return l.ttl }

// RenewDue reports whether a quarter of the TTL has passed since the last
// successful renewal: holders renew that often.
func (l *Lease) RenewDue() bool { return time.Since(l.renewedAt) >= l.ttl/4 }

// UntilRenew is how long until RenewDue.
func (l *Lease) UntilRenew() time.Duration { return max(0, l.ttl/4-time.Since(l.renewedAt)) }

// Drop forgets the holding without telling the database, after a fenced
// write showed that another process holds the lease.
func (l *Lease) Drop() { l.held = false }

// Acquire takes the lease if it is free or expired (or already ours).
func (l *Lease) Acquire(ctx context.Context) (bool, error) {
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

// ErrLeaseLost means another process took the lease.
var ErrLeaseLost = errors.New("sqldb: lease lost to another process")

// Renew extends a held lease; it fails with ErrLeaseLost if another process
// has taken it since.
func (l *Lease) Renew(ctx context.Context) error {
	started := time.Now()
	res, err := l.db.ExecContext(ctx, l.d.Rebind(
		"UPDATE courier_lease SET expires_at = "+l.d.NowMillis()+" + ?, beats = beats + 1 WHERE name = ? AND owner = ? AND token = ?"),
		l.ttl.Milliseconds(), l.name, l.owner, l.token)
	if err != nil {
		return fmt.Errorf("renewing lease %q: %w", l.name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		l.held = false
		return ErrLeaseLost
	}
	l.renewedAt = started
	return nil
}

// Valid reports whether the lease is certainly still ours: renewed less
// than three quarters of its time to live ago, measured locally from
// before the renewal was sent.
func (l *Lease) Valid() bool {
	return l.held && time.Since(l.renewedAt) < l.ttl*3/4
}

// Release gives the lease up so that another process can take it at once.
func (l *Lease) Release(ctx context.Context) error {
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

// Fence returns an SQL condition, with its arguments, that holds only while this
// process still holds the lease with its current token.
func (l *Lease) Fence() (string, []any) {
	return "EXISTS (SELECT 1 FROM courier_lease WHERE name = ? AND owner = ? AND token = ?)", []any{l.name, l.owner, l.token}
}
