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
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/backoff"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox/internal/relay"
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

// StandbyRetryInterval is the longest a relay that does not lead waits
// before it tries to take the lease again (for leases shorter than 800ms,
// a quarter of the TTL). A leader that stops cleanly releases the lease,
// so a standby takes over within this interval instead of waiting for the
// lease to expire; after a crash, it takes over within this interval of
// the expiry. A try is one primary-key read and, unless the lease is
// held, one update of the lease row.
const StandbyRetryInterval = relay.StandbyRetryInterval

// Source is where a Relay's rows come from: the table poller, which is
// the default, or a transaction-log tailer given with WithSource
// (pgcdc.NewSource for PostgreSQL's logical replication,
// mysqlcdc.NewSource for the MySQL/MariaDB binary log). A source reads
// rows in commit order and confirms its position only after the broker
// confirmed the rows before it; the relay does the rest. Its methods'
// types are internal: the sources are Courier's own.
type Source = relay.Source

// Wakeup tells a relay that new rows may have been committed, so that it
// polls at once instead of at its next interval. Run calls wake for each
// notification until ctx ends. See package pgnotify for PostgreSQL's
// LISTEN/NOTIFY.
type Wakeup interface {
	Run(ctx context.Context, wake func()) error
}

type relayConfig struct {
	name       string
	owner      string
	leaseTTL   time.Duration
	deadLetter string
	limits     message.Limits
	logger     *slog.Logger
	source     Source
	// poll configures the table poller, the default source; pollSet
	// names the first poller option given, which WithSource refuses.
	poll    pollConfig
	pollSet string
	// observer is WithObserver's; nil without it.
	observer RelayObserver
	// progress is WithProgressInterval's; 0 for no summaries.
	progress time.Duration
}

// RelayOption configures a Relay.
type RelayOption func(*relayConfig) error

// WithName names the outbox the relay serves (default "outbox"): 1 to 200
// characters. Relays with the same name share a lease: one of them
// publishes at a time. A log-tailing source keys what it stores by it.
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

// WithLeaseTTL sets how long leadership lasts without renewal (default
// DefaultLeaseTTL, 3s; at least 100ms). A relay that dies is replaced
// within about this time; the leader renews every quarter of it and stops
// publishing once three quarters passed without a successful renewal. A
// longer TTL tolerates slower commits of the lease row, at the cost of a
// slower takeover after a crash; a clean stop hands over at once either
// way.
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

// WithLogger sets the relay's logger (default slog.Default()); its source
// logs there too.
func WithLogger(l *slog.Logger) RelayOption {
	return func(c *relayConfig) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

// WithSource makes the relay read its rows from s instead of polling the
// outbox table: pgcdc.NewSource or mysqlcdc.NewSource. A source serves
// one relay. The table poller's options (WithBatchSize, WithPollInterval,
// WithWakeup, WithKeepPublished) do not apply to another source, and
// NewRelay refuses them beside it.
func WithSource(s Source) RelayOption {
	return func(c *relayConfig) error {
		if s == nil {
			return errors.New("source must not be nil")
		}
		c.source = s
		return nil
	}
}

// Relay publishes one outbox's committed rows to a broker, at least once
// and in commit order per destination. Several relays of the same outbox
// (WithName) share a lease in the database: one leads and publishes, the
// others stand by. The leader publishes the rows its Source reads, sends
// rows that cannot be published to the dead-letter channel, and lets the
// source confirm its position (delete the rows, move the replication
// slot, store the binary log position) only after the broker confirmed
// them.
//
// Stats and Lag are safe for concurrent use; Run is called once at a
// time.
type Relay struct {
	db    *sql.DB
	d     *sqldb.Dialect
	cfg   relayConfig
	src   Source
	lease *sqldb.Lease
	pub   *publisher
	// leading is the keeper of the lease while this relay leads.
	leading atomic.Pointer[relay.Keeper]

	running atomic.Bool
	errs    atomic.Uint64
}

// Stats is a snapshot of a relay's counters.
type Stats struct {
	// Leader reports that this relay holds the lease now and may publish:
	// its last renewal is recent enough that no other relay can have
	// taken the lease since. Two relays never report it at once.
	Leader       bool
	Published    uint64 // rows published
	DeadLettered uint64 // rows sent to the dead-letter channel
	// Errors counts failed reads, publishes, confirmations and lease
	// operations.
	Errors uint64
	// PublishErrors counts the Sends the broker refused or did not
	// confirm, each one destination's batch of rows (a Send abandoned
	// because the relay stopped or its lease lapsed is not counted);
	// they count in Errors too.
	PublishErrors uint64
	// PublishFailingSince is set while publishing fails: it is the time
	// of the first failed Send since the last confirmed one, within the
	// current leadership. It is zero once a Send succeeds, and after the
	// lease the failures happened under ended. LastPublishError is the
	// last failure.
	PublishFailingSince time.Time
	LastPublishError    error
	// Position is the source's last confirmed position, in its notation:
	// a log sequence number (pgcdc), a binary log file, offset and GTID
	// position (mysqlcdc); empty for the table poller, whose position is
	// the table itself.
	Position string
	// LastCommit is the commit time of the last transaction a log-tailing
	// source published.
	LastCommit time.Time
}

// Lag is how far a relay is behind its outbox.
type Lag struct {
	// Age is how long the oldest row not yet published has waited (the
	// table poller); zero when none waits.
	Age time.Duration
	// Bytes is how much of the database's log the relay has not
	// confirmed (the log-tailing sources).
	Bytes int64
}

// NewRelay returns a relay that publishes the outbox of db, a database of
// dialect d, through pub. It polls the outbox table unless WithSource
// gives another source.
func NewRelay(db *sql.DB, d *sqldb.Dialect, pub broker.Producer, opts ...RelayOption) (*Relay, error) {
	if db == nil || d == nil || pub == nil {
		return nil, errors.New("outbox: NewRelay needs a database, a dialect and a producer")
	}
	cfg := relayConfig{
		name:       DefaultRelayName,
		owner:      defaultOwner(),
		leaseTTL:   DefaultLeaseTTL,
		deadLetter: DefaultDeadLetterChannel,
		poll:       pollConfig{batchSize: DefaultBatchSize, interval: DefaultPollInterval},
		progress:   DefaultProgressInterval,
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("outbox: relay configuration: %w", err)
		}
	}
	if cfg.source != nil && cfg.pollSet != "" {
		return nil, fmt.Errorf("outbox: relay configuration: %s configures the table poller, not the source given with WithSource", cfg.pollSet)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	cfg.logger = cfg.logger.With(slog.String("relay", cfg.name), slog.String("owner", cfg.owner))
	src := cfg.source
	if src == nil {
		src = &poller{cfg: cfg.poll}
	}
	if err := src.Bind(relay.Env{DB: db, Dialect: d, Name: cfg.name, Logger: cfg.logger}); err != nil {
		return nil, err
	}
	r := &Relay{db: db, d: d, cfg: cfg, src: src,
		lease: sqldb.NewLease(db, d, "outbox:"+cfg.name, cfg.owner, cfg.leaseTTL)}
	r.pub = &publisher{producer: pub, deadLetter: cfg.deadLetter, source: "outbox-relay." + cfg.name,
		limits: cfg.limits, logger: cfg.logger, lease: r.leading.Load, errs: &r.errs, observer: cfg.observer}
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
	ps := r.pub.stats() // before the error count, which counts its failed Sends too
	p := r.src.Progress()
	return Stats{Leader: k != nil && k.Valid(), Published: ps.Published, DeadLettered: ps.DeadLettered, Errors: r.errs.Load(),
		PublishErrors: ps.SendErrors, PublishFailingSince: ps.FailingSince, LastPublishError: ps.LastError,
		Position: p.Position, LastCommit: p.LastCommit}
}

// Lag reads how far the relay is behind its outbox from the database.
func (r *Relay) Lag(ctx context.Context) (Lag, error) {
	l, err := r.src.Lag(ctx)
	return Lag(l), err
}

// Setup checks the database and prepares the source: the outbox schema,
// and for a log-tailing source its replication slot or stored position.
// A log-tailing source publishes what commits after its Setup: run Setup
// (or Run) before producers write. Run calls Setup.
func (r *Relay) Setup(ctx context.Context) error {
	return r.src.Setup(ctx)
}

// Run publishes until ctx ends, then releases the lease, so that a
// standby relay takes over within StandbyRetryInterval, and returns nil.
// It returns an error at once if Setup fails or if the relay is already
// running, and later if the source meets what retrying cannot cure (an
// outbox table whose layout it cannot read).
//
// While it does not lead, Run tries to take the lease every
// StandbyRetryInterval. While it leads, a keeper renews the lease beside
// the publishing, and Run reads, publishes and confirms; after a failure
// it waits, from 50ms doubling up to 2s, and tries again. It stops
// leading when the lease is lost or, renewals failing, no longer
// certainly held.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("outbox: relay is already running")
	}
	defer r.running.Store(false)
	if err := r.Setup(ctx); err != nil {
		return fmt.Errorf("outbox relay %q: %w", r.cfg.name, err)
	}
	if r.cfg.progress > 0 {
		pctx, stopProgress := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { r.logProgress(pctx, r.cfg.progress) })
		defer wg.Wait()
		defer stopProgress()
	}
	l := r.lease
	var keeper *relay.Keeper
	stopLeading := func() {
		if keeper != nil {
			r.leading.Store(nil)
			keeper.Stop()
			keeper = nil
		}
	}
	defer func() {
		stopLeading() // before another relay can take the released lease
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.Release(rctx); err != nil {
			r.cfg.logger.Warn("courier: releasing the outbox lease failed", slog.Any("error", err))
		}
	}()
	failures := 0
	for ctx.Err() == nil {
		if keeper == nil {
			if ok := r.acquire(ctx); !ok {
				continue
			}
			// Renewals run beside the publishing, so that a slow commit
			// of the lease row never holds it back.
			keeper = relay.Keep(ctx, l, func(err error) {
				r.fail(fmt.Errorf("renewing the lease: %w", err))
			}, nil)
			r.leading.Store(keeper)
		}
		progressed, err := r.lead(ctx, keeper)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, sqldb.ErrLeaseLost):
			stopLeading()
			l.Drop()
			r.cfg.logger.Warn("courier: outbox relay lost the lease to another relay")
			continue
		case relay.IsFatal(err):
			return fmt.Errorf("outbox relay %q: %w", r.cfg.name, err)
		}
		if progressed {
			failures = 0
		}
		failures++
		if err != nil {
			r.fail(err)
		}
		backoff.Sleep(ctx, backoff.Exponential(100*time.Millisecond, 5*time.Second, failures+1))
	}
	return nil
}

// acquire tries once to take the lease, or to renew a held one whose
// renewals failed for a while, and waits before the next try if it did
// not get it.
func (r *Relay) acquire(ctx context.Context) bool {
	l := r.lease
	if !l.Held() {
		ok, err := l.Acquire(ctx)
		if err != nil && ctx.Err() == nil {
			r.fail(fmt.Errorf("acquiring the lease: %w", err))
		}
		if !ok {
			backoff.Sleep(ctx, relay.StandbyRetry(l.TTL()))
			return false
		}
		r.cfg.logger.Info("courier: outbox relay is now the leader", slog.Int64("token", l.Token()))
		return true
	}
	if !l.Valid() {
		// Renewals failed for a while (e.g. the database restarted):
		// renew before leading, or learn that another relay leads.
		if err := l.Renew(ctx); err != nil {
			if !errors.Is(err, sqldb.ErrLeaseLost) && ctx.Err() == nil {
				r.fail(fmt.Errorf("renewing the lease: %w", err))
			}
			backoff.Sleep(ctx, min(l.TTL()/4, time.Second))
			return false
		}
	}
	return true
}

// lead reads, publishes and confirms while k keeps the lease, until ctx
// ends, the lease is lost or the source fails. It reports whether it
// confirmed anything.
func (r *Relay) lead(ctx context.Context, k *relay.Keeper) (progressed bool, err error) {
	rd, err := r.src.Open(ctx, relay.Lead{Lease: r.lease, Keeper: k})
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if cerr := rd.Close(cctx); cerr != nil && !errors.Is(cerr, sqldb.ErrLeaseLost) {
			r.fail(cerr)
		}
	}()
	failures := 0
	for {
		// A late renewal holds the publishing rather than ending it:
		// a new reader would read every unconfirmed row again.
		if err := k.Await(ctx); err != nil {
			return progressed, err
		}
		if k.Lost() {
			return progressed, sqldb.ErrLeaseLost
		}
		rows, err := rd.Read(ctx)
		if len(rows) > 0 && r.cfg.observer != nil {
			r.cfg.observer.Read(len(rows))
		}
		if err != nil || len(rows) == 0 {
			if ctx.Err() != nil {
				return progressed, nil
			}
			if err != nil {
				return progressed, err
			}
			continue
		}
		res := r.pub.publish(ctx, rows)
		if err := rd.Confirm(ctx, res.done); err != nil {
			return progressed, err
		}
		if res.published+res.deadLettered > 0 {
			progressed = true
		}
		if res.err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return progressed, nil
		}
		// The publisher counted the broker's failures.
		r.cfg.logger.Warn("courier: outbox relay error", slog.Any("error", res.err))
		if errors.Is(res.err, sqldb.ErrLeaseLost) {
			return progressed, sqldb.ErrLeaseLost
		}
		// The rows not confirmed come back at the next Read.
		backoff.Sleep(ctx, backoff.Exponential(50*time.Millisecond, 2*time.Second, failures+1))
		failures++
	}
}

func (r *Relay) fail(err error) {
	r.errs.Add(1)
	r.cfg.logger.Warn("courier: outbox relay error", slog.Any("error", err))
}
