package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// Defaults of a Relay.
const (
	DefaultBatchSize    = 500
	DefaultPollInterval = 100 * time.Millisecond
	// DefaultLeaseTTL bounds a takeover after the leader dies: the
	// leader renews its lease every quarter of the TTL (750ms) and stops
	// publishing when three quarters passed without a renewal (2.25s),
	// and a standby takes the lease within StandbyRetryInterval of its
	// expiry (3s after the last renewal). A leader that stops cleanly
	// releases the lease, and a standby takes it within
	// StandbyRetryInterval. A renewal may take up to about 2s before the
	// lease is lost, and up to 1.5s before the leader pauses.
	DefaultLeaseTTL          = 3 * time.Second
	DefaultDeadLetterChannel = "outbox.dead-letter"
	DefaultRelayName         = "outbox"
	// HeaderDeadLetterRawHeaders carries, on a dead-lettered outbox row,
	// the row's headers column as it was (cut to 4 KiB).
	HeaderDeadLetterRawHeaders = "dead_letter_raw_headers"
)

// Wakeup tells a relay that new rows may have been committed, so that it
// polls at once instead of at its next interval. Run calls wake for each
// notification until ctx ends. See package pgnotify for PostgreSQL's
// LISTEN/NOTIFY.
type Wakeup interface {
	Run(ctx context.Context, wake func()) error
}

type relayConfig struct {
	name         string
	owner        string
	batchSize    int
	pollInterval time.Duration
	leaseTTL     time.Duration
	deadLetter   string
	keep         bool
	wakeup       Wakeup
	limits       message.Limits
	logger       *slog.Logger
}

// RelayOption configures a Relay.
type RelayOption func(*relayConfig) error

// WithName names the outbox the relay serves (default "outbox"). Relays with
// the same name share a lease: one of them publishes at a time.
func WithName(name string) RelayOption {
	return func(c *relayConfig) error {
		if name == "" || len(name) > 200 {
			return errors.New("name must have 1 to 200 characters")
		}
		c.name = name
		return nil
	}
}

// WithOwner sets the identity this relay writes into the lease (default:
// host name, process id and a random suffix).
func WithOwner(owner string) RelayOption {
	return func(c *relayConfig) error {
		if owner == "" {
			return errors.New("owner must not be empty")
		}
		c.owner = owner
		return nil
	}
}

// WithBatchSize sets how many rows one poll reads (default 500).
func WithBatchSize(n int) RelayOption {
	return func(c *relayConfig) error {
		if n < 1 || n > 10000 {
			return fmt.Errorf("batch size must be between 1 and 10000, got %d", n)
		}
		c.batchSize = n
		return nil
	}
}

// WithPollInterval sets how long an idle relay waits before polling again
// when no Wakeup woke it (default 100ms).
func WithPollInterval(d time.Duration) RelayOption {
	return func(c *relayConfig) error {
		if d <= 0 {
			return fmt.Errorf("poll interval must be positive, got %v", d)
		}
		c.pollInterval = d
		return nil
	}
}

// WithLeaseTTL sets how long leadership lasts without renewal (default
// DefaultLeaseTTL, 3s). A relay that dies is replaced within about this
// time; the leader renews every quarter of it and stops publishing once
// three quarters passed without a successful renewal. A longer TTL
// tolerates slower commits of the lease row, at the cost of a slower
// takeover after a crash; a clean stop hands over at once either way.
func WithLeaseTTL(d time.Duration) RelayOption {
	return func(c *relayConfig) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("lease TTL must be at least 100ms, got %v", d)
		}
		c.leaseTTL = d
		return nil
	}
}

// WithDeadLetterChannel names the channel that receives rows that cannot
// be published: undecodable headers, an invalid destination, a payload
// over the limits (default "outbox.dead-letter").
func WithDeadLetterChannel(channel string) RelayOption {
	return func(c *relayConfig) error {
		if err := message.ValidateChannel(channel); err != nil {
			return fmt.Errorf("dead-letter channel: %w", err)
		}
		c.deadLetter = channel
		return nil
	}
}

// WithKeepPublished makes the relay mark published rows (published = 1)
// instead of deleting them; the application then purges them itself.
func WithKeepPublished() RelayOption {
	return func(c *relayConfig) error {
		c.keep = true
		return nil
	}
}

// WithWakeup lets the relay poll as soon as rows are committed.
func WithWakeup(w Wakeup) RelayOption {
	return func(c *relayConfig) error {
		c.wakeup = w
		return nil
	}
}

// WithLimits sets the size limits a row must meet to be published; rows
// over them are dead-lettered (default: message's defaults).
func WithLimits(l message.Limits) RelayOption {
	return func(c *relayConfig) error {
		if err := l.Validate(); err != nil {
			return err
		}
		c.limits = l
		return nil
	}
}

// WithRelayLogger sets the relay's logger (default slog.Default()).
func WithRelayLogger(l *slog.Logger) RelayOption {
	return func(c *relayConfig) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

// Relay is the polling publisher of one outbox.
type Relay struct {
	db    *sql.DB
	d     *sqldb.Dialect
	pub   broker.Producer
	cfg   relayConfig
	lease *sqldb.Lease
	rows  *RowPublisher
	// keeper renews the lease while this relay leads; only Run's
	// goroutine touches it. leading is the same keeper, for Stats.
	keeper  *LeaseKeeper
	leading atomic.Pointer[LeaseKeeper]

	running atomic.Bool
	errs    atomic.Uint64
}

// Stats is a snapshot of a relay's counters. The log-tailing relays'
// Stats embed it.
type Stats struct {
	// Leader reports that this relay holds the lease now and may publish:
	// its last renewal is recent enough that no other relay can have
	// taken the lease since. Two relays never report it at once.
	Leader       bool
	Published    uint64 // rows published and removed from the outbox
	DeadLettered uint64 // rows sent to the dead-letter channel
	Errors       uint64 // failed polls, publishes and lease operations
	// PublishErrors counts the Sends the broker refused or did not
	// confirm (see PublishStats.SendErrors); they count in Errors too.
	PublishErrors uint64
	// PublishFailingSince is set while publishing fails: the broker
	// refused or did not confirm every Send since then (see
	// PublishStats.FailingSince). LastPublishError is the last failure.
	PublishFailingSince time.Time
	LastPublishError    error
}

// NewRelay returns a relay that publishes db's outbox through pub.
func NewRelay(db *sql.DB, d *sqldb.Dialect, pub broker.Producer, opts ...RelayOption) (*Relay, error) {
	if db == nil || d == nil || pub == nil {
		return nil, errors.New("outbox: NewRelay needs a database, a dialect and a producer")
	}
	cfg := relayConfig{
		name:         DefaultRelayName,
		owner:        defaultOwner(),
		batchSize:    DefaultBatchSize,
		pollInterval: DefaultPollInterval,
		leaseTTL:     DefaultLeaseTTL,
		deadLetter:   DefaultDeadLetterChannel,
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("outbox: relay configuration: %w", err)
		}
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	cfg.logger = cfg.logger.With(slog.String("relay", cfg.name), slog.String("owner", cfg.owner))
	r := &Relay{db: db, d: d, pub: pub, cfg: cfg,
		lease: sqldb.NewLease(db, d, "outbox:"+cfg.name, cfg.owner, cfg.leaseTTL)}
	r.rows = &RowPublisher{Producer: pub, DeadLetterChannel: cfg.deadLetter, Source: "outbox-relay." + cfg.name,
		Limits: cfg.limits, Logger: cfg.logger, Lease: func() *LeaseKeeper { return r.keeper }}
	return r, nil
}

func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	k := r.leading.Load()
	return r.rows.RelayStats(k != nil && k.Valid(), r.errs.Load())
}

// Run publishes until ctx ends, then releases the lease, so that a
// standby relay takes over within StandbyRetryInterval, and returns nil.
// It returns an error at once if the schema is missing, or if it is
// already running.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("outbox: relay is already running")
	}
	defer r.running.Store(false)
	if err := sqldb.CheckSchema(ctx, r.db, r.d); err != nil {
		return fmt.Errorf("outbox relay %q: %w", r.cfg.name, err)
	}

	wake := make(chan struct{}, 1)
	if r.cfg.wakeup != nil {
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			err := r.cfg.wakeup.Run(wctx, func() {
				select {
				case wake <- struct{}{}:
				default:
				}
			})
			if err != nil && wctx.Err() == nil {
				r.cfg.logger.Warn("courier: outbox wake-ups stopped; polling only", slog.Any("error", err))
			}
		})
		defer func() { stop(); wg.Wait() }()
	}
	defer func() {
		r.stopKeeping() // before another relay can take the released lease
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.lease.Release(rctx); err != nil {
			r.cfg.logger.Warn("courier: releasing the outbox lease failed", slog.Any("error", err))
		}
	}()

	failures := 0
	for ctx.Err() == nil {
		wait, err := r.step(ctx)
		if err != nil && ctx.Err() == nil {
			r.errs.Add(1)
			failures++
			wait = min(r.cfg.pollInterval<<min(failures, 6), 5*time.Second)
			r.cfg.logger.Warn("courier: outbox relay step failed", slog.Any("error", err), slog.Duration("retry_in", wait))
		} else if err == nil {
			failures = 0
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-wake:
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

// step takes the lease if it does not hold it and publishes one batch.
// It returns how long to wait before the next step. While the relay
// leads, a LeaseKeeper renews the lease in the background.
func (r *Relay) step(ctx context.Context) (time.Duration, error) {
	l := r.lease
	switch {
	case r.keeper == nil:
		ok, err := l.Acquire(ctx)
		if err != nil || !ok {
			return standbyRetry(l.TTL()), err
		}
		r.keeper = KeepLease(ctx, l, func(err error) {
			r.errs.Add(1)
			r.cfg.logger.Warn("courier: renewing the outbox lease failed", slog.Any("error", err))
		}, nil)
		r.leading.Store(r.keeper)
		r.cfg.logger.Info("courier: outbox relay is now the leader", slog.Int64("token", l.Token()))
	case r.keeper.Lost():
		r.stopKeeping()
		r.cfg.logger.Warn("courier: outbox relay lost the lease to another relay")
		return 0, nil
	}
	if !r.keeper.Valid() {
		return r.cfg.pollInterval, nil
	}
	n, err := r.publishBatch(ctx)
	if err != nil {
		return 0, err
	}
	if n >= r.cfg.batchSize {
		return 0, nil
	}
	return r.cfg.pollInterval, nil
}

// stopKeeping stops renewing the lease, which is then Run's own again.
func (r *Relay) stopKeeping() {
	if r.keeper != nil {
		r.leading.Store(nil)
		r.keeper.Stop()
		r.keeper = nil
	}
}

// publishBatch publishes the oldest unpublished rows and removes those the
// broker confirmed. It returns how many rows it read.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	rows, err := r.readBatch(ctx)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	res := r.rows.Publish(ctx, rows)
	if err := r.remove(ctx, res.Done); err != nil {
		return len(rows), errors.Join(res.Err, err)
	}
	return len(rows), res.Err
}

func (r *Relay) readBatch(ctx context.Context) ([]Row, error) {
	q, err := r.db.QueryContext(ctx, r.d.Rebind(
		"SELECT id, destination, headers, payload FROM message WHERE published = 0 ORDER BY seq LIMIT ?"), r.cfg.batchSize)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	defer q.Close()
	var out []Row
	for q.Next() {
		var rw Row
		if err := q.Scan(&rw.ID, &rw.Destination, &rw.Headers, &rw.Payload); err != nil {
			return nil, fmt.Errorf("reading the outbox: %w", err)
		}
		out = append(out, rw)
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return out, nil
}

// remove deletes (or marks) the published rows, but only while this relay
// still holds the lease with the token it published under.
func (r *Relay) remove(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if r.d == sqldb.Postgres {
		return r.removePostgres(ctx, ids)
	}
	for start := 0; start < len(ids); start += maxRowsPerInsert {
		chunk := ids[start:min(len(ids), start+maxRowsPerInsert)]
		fence, args := r.lease.Fence()
		stmt := r.removeStatement() + " WHERE id IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ") + ") AND " + fence
		all := make([]any, 0, len(chunk)+len(args))
		for _, id := range chunk {
			all = append(all, id)
		}
		all = append(all, args...)
		res, err := r.db.ExecContext(ctx, r.d.Rebind(stmt), all...)
		if err != nil {
			return fmt.Errorf("removing %d published rows: %w", len(chunk), err)
		}
		if err := r.fenced(res); err != nil {
			return err
		}
	}
	return nil
}

func (r *Relay) removeStatement() string {
	if r.cfg.keep {
		return "UPDATE message SET published = 1"
	}
	return "DELETE FROM message"
}

// fenced reports sqldb.ErrLeaseLost, and gives up the lease, when a
// removal touched no row: another relay leads now and will publish these
// rows again; consumers absorb the duplicates.
func (r *Relay) fenced(res sql.Result) error {
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		r.stopKeeping()
		r.lease.Drop()
		return fmt.Errorf("removing published rows: %w", sqldb.ErrLeaseLost)
	}
	return nil
}

// removePostgres removes the rows with one statement whose ids are one
// array parameter (the same statement text for every batch, so the
// driver's prepared statement is reused), in a transaction that does not
// wait for its WAL flush (synchronous_commit off). A removal lost in a
// server crash only makes the rows be published again, which
// at-least-once delivery allows; without the flush, the relay's next
// batch does not wait for the disk.
func (r *Relay) removePostgres(ctx context.Context, ids []string) error {
	fence, args := r.lease.Fence()
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("removing %d published rows: %w", len(ids), err)
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit TO off"); err != nil {
		return errors.Join(fmt.Errorf("removing %d published rows: %w", len(ids), err), tx.Rollback())
	}
	res, err := tx.ExecContext(ctx, r.d.Rebind(r.removeStatement()+" WHERE id = ANY(?) AND "+fence), append([]any{ids}, args...)...)
	if err == nil {
		err = r.fenced(res)
	}
	if err != nil {
		if !errors.Is(err, sqldb.ErrLeaseLost) {
			err = fmt.Errorf("removing %d published rows: %w", len(ids), err)
		}
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("removing %d published rows: %w", len(ids), err)
	}
	return nil
}
