// Package pgcdc publishes the outbox by tailing PostgreSQL's transaction
// log: logical replication of the message table with the built-in pgoutput
// plugin. Each committed transaction's outbox rows are published as the
// transaction commits, in commit order, without polling the table.
//
// The relay confirms a position to the replication slot only after the
// broker confirmed every message before it, so a crash replays from the
// last confirmed transaction (duplicates, never loss). It emits a logical
// heartbeat message periodically, so that an idle outbox does not keep the
// slot from releasing WAL. Producers may insert and delete an outbox row in
// the same transaction (outbox.WithDeleteAfterInsert): the insert still
// reaches the log, and the table stays empty.
//
// Several relays may run; one holds the lease (sqldb.Lease) and streams,
// the others wait. PostgreSQL also lets only one connection use a slot at a
// time, which fences a leader that lost its lease but has not noticed yet.
//
// The server needs wal_level = logical, and the relay's role the
// REPLICATION attribute (or to be the table owner for the publication).
package pgcdc

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
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// Defaults of a Relay.
const (
	DefaultSlot              = "courier_outbox"
	DefaultPublication       = "courier_outbox"
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultStatusInterval    = time.Second
	heartbeatPrefix          = "courier_heartbeat"
)

// ErrNotLogical means the server's wal_level is not logical.
var ErrNotLogical = errors.New("pgcdc: logical replication is off")

// ErrColumnLayout means the outbox table lacks a column the relay reads.
var ErrColumnLayout = errors.New("pgcdc: unknown outbox column layout")

// ErrSlotMismatch means the replication slot exists but the relay cannot
// stream from it: it belongs to another database, is a physical slot, or
// decodes with another plugin than pgoutput.
var ErrSlotMismatch = errors.New("pgcdc: the replication slot is not this outbox's")

type config struct {
	name, owner       string
	slot, publication string
	heartbeat, status time.Duration
	leaseTTL          time.Duration
	deadLetter        string
	limits            message.Limits
	logger            *slog.Logger
}

// Option configures a Relay.
type Option func(*config) error

// WithSlot names the replication slot (default "courier_outbox"); one per
// outbox.
func WithSlot(name string) Option {
	return func(c *config) error { c.slot = name; return validIdent("slot", name) }
}

// WithPublication names the publication (default "courier_outbox").
func WithPublication(name string) Option {
	return func(c *config) error { c.publication = name; return validIdent("publication", name) }
}

// WithHeartbeat sets how often the relay writes a heartbeat to the log
// (default 10s), so that an idle outbox still lets the slot move on. The
// lease is renewed on its own cadence, every quarter of its TTL, beside
// the stream (outbox.LeaseKeeper).
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("heartbeat interval must be at least 10ms, got %v", d)
		}
		c.heartbeat = d
		return nil
	}
}

// WithLeaseTTL sets the leader lease's time to live (default
// outbox.DefaultLeaseTTL, 3s): the bound on a takeover after the leader
// dies; a leader that stops cleanly hands over at once. The leader
// renews it every quarter of the TTL.
func WithLeaseTTL(d time.Duration) Option {
	return func(c *config) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("lease TTL must be at least 100ms, got %v", d)
		}
		c.leaseTTL = d
		return nil
	}
}

// WithName names the outbox, for the lease (default "outbox").
func WithName(name string) Option {
	return func(c *config) error {
		if name == "" {
			return errors.New("name must not be empty")
		}
		c.name = name
		return nil
	}
}

// WithDeadLetterChannel names the channel for rows that cannot be
// published (default outbox.DefaultDeadLetterChannel).
func WithDeadLetterChannel(channel string) Option {
	return func(c *config) error {
		c.deadLetter = channel
		return message.ValidateChannel(channel)
	}
}

// WithLimits sets the size limits rows must meet (default message's).
func WithLimits(l message.Limits) Option {
	return func(c *config) error { c.limits = l; return l.Validate() }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

func validIdent(what, s string) error {
	if s == "" || len(s) > 63 {
		return fmt.Errorf("%s name must have 1 to 63 characters", what)
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("%s name %q: use lower-case letters, digits and _", what, s)
		}
	}
	return nil
}

// Stats is a snapshot of a relay's counters.
type Stats struct {
	outbox.Stats
	// ConfirmedLSN is the last log position confirmed to the slot.
	ConfirmedLSN string
	// LastCommit is the commit time of the last published transaction.
	LastCommit time.Time
}

// Relay tails one outbox table.
type Relay struct {
	db         *sql.DB
	connString string
	cfg        config
	lease      *sqldb.Lease
	// keeper renews the lease while this relay streams; only Run's
	// goroutine touches it.
	keeper *outbox.LeaseKeeper
	rows   *outbox.RowPublisher

	leader     atomic.Bool
	errs       atomic.Uint64
	confirmed  atomic.Uint64
	lastCommit atomic.Int64
}

// New returns a relay for the outbox table of the database db is connected
// to. connString is the same database's URL; the relay opens replication
// connections with it. db must use the pgx driver.
func New(db *sql.DB, connString string, pub broker.Producer, opts ...Option) (*Relay, error) {
	if db == nil || pub == nil || connString == "" {
		return nil, errors.New("pgcdc: New needs a database, its connection string and a producer")
	}
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	cfg := config{
		name: outbox.DefaultRelayName, owner: fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:])),
		slot: DefaultSlot, publication: DefaultPublication,
		heartbeat: DefaultHeartbeatInterval, status: DefaultStatusInterval, leaseTTL: outbox.DefaultLeaseTTL,
		deadLetter: outbox.DefaultDeadLetterChannel,
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("pgcdc: configuration: %w", err)
		}
	}
	if _, err := pgconn.ParseConfig(connString); err != nil {
		return nil, fmt.Errorf("pgcdc: connection string: %w", err)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	cfg.logger = cfg.logger.With(slog.String("relay", cfg.name), slog.String("slot", cfg.slot))
	r := &Relay{db: db, connString: connString, cfg: cfg,
		lease: sqldb.NewLease(db, sqldb.Postgres, "outbox:"+cfg.name, cfg.owner, cfg.leaseTTL)}
	r.rows = &outbox.RowPublisher{Producer: pub, DeadLetterChannel: cfg.deadLetter, Source: "outbox-relay." + cfg.name,
		Limits: cfg.limits, Logger: cfg.logger, Lease: func() *outbox.LeaseKeeper { return r.keeper }}
	return r, nil
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	s := Stats{Stats: r.rows.RelayStats(r.leader.Load(), r.errs.Load()), ConfirmedLSN: pglogrepl.LSN(r.confirmed.Load()).String()}
	if ms := r.lastCommit.Load(); ms > 0 {
		s.LastCommit = time.UnixMilli(ms)
	}
	return s
}

// Check verifies the server and the schema: wal_level, the outbox table
// and its columns. Run calls it first.
func (r *Relay) Check(ctx context.Context) error {
	var level string
	if err := r.db.QueryRowContext(ctx, "SELECT current_setting('wal_level')").Scan(&level); err != nil {
		return fmt.Errorf("pgcdc: reading wal_level: %w", err)
	}
	if level != "logical" {
		return fmt.Errorf("%w: the server's wal_level is %q; set wal_level = logical in postgresql.conf and restart PostgreSQL", ErrNotLogical, level)
	}
	if err := sqldb.CheckSchema(ctx, r.db, sqldb.Postgres); err != nil {
		return fmt.Errorf("pgcdc: %w", err)
	}
	return nil
}

// Setup checks the server and creates the publication and the replication
// slot if they do not exist. It fails with ErrSlotMismatch if the slot
// exists but belongs to another database, is physical or uses another
// plugin. Transactions committed before the slot exists
// are not in its stream: run Setup (or Run) before producers write, or
// drain older rows once with the polling relay. Run calls Setup.
func (r *Relay) Setup(ctx context.Context) error {
	if err := r.Check(ctx); err != nil {
		return err
	}
	if err := r.ensurePublication(ctx); err != nil {
		return err
	}
	exists, err := r.checkSlot(ctx)
	if err != nil || exists {
		return err
	}
	_, err = r.db.ExecContext(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", r.cfg.slot)
	if err != nil && strings.Contains(err.Error(), "already exists") {
		// Another relay created it meanwhile, or another database has
		// it: the slot must still be one this relay can read.
		_, err = r.checkSlot(ctx)
		return err
	}
	if err != nil {
		return fmt.Errorf("pgcdc: creating replication slot %s: %w", r.cfg.slot, err)
	}
	r.cfg.logger.Info("courier: created replication slot")
	return nil
}

// checkSlot reports whether the relay's slot exists, and fails with
// ErrSlotMismatch if it exists but the relay cannot stream from it: a
// slot of another database (slots are cluster-wide, a logical slot
// decodes one database), a physical slot or one of another plugin.
func (r *Relay) checkSlot(ctx context.Context) (bool, error) {
	var database, plugin sql.NullString
	var slotType, ours string
	err := r.db.QueryRowContext(ctx, "SELECT s.database, s.plugin, s.slot_type, current_database() FROM pg_replication_slots s WHERE s.slot_name = $1",
		r.cfg.slot).Scan(&database, &plugin, &slotType, &ours)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("pgcdc: reading replication slot %s: %w", r.cfg.slot, err)
	case slotType != "logical":
		return true, fmt.Errorf("%w: replication slot %q is a %s slot, not a logical one; name another slot for the outbox of database %q (WithSlot, courier relay -slot)",
			ErrSlotMismatch, r.cfg.slot, slotType, ours)
	case database.String != ours:
		return true, fmt.Errorf("%w: replication slot %q belongs to database %q, not to this relay's database %q; name a slot of this outbox's own (WithSlot, courier relay -slot)",
			ErrSlotMismatch, r.cfg.slot, database.String, ours)
	case plugin.String != "pgoutput":
		return true, fmt.Errorf("%w: replication slot %q of database %q decodes with plugin %q, not pgoutput; name another slot (WithSlot, courier relay -slot)",
			ErrSlotMismatch, r.cfg.slot, ours, plugin.String)
	}
	return true, nil
}

// Run tails the log until ctx ends, then gives up the lease and returns
// nil. It fails at once if Setup fails.
func (r *Relay) Run(ctx context.Context) error {
	if err := r.Setup(ctx); err != nil {
		return err
	}
	return outbox.RunAsLeader(ctx, r.lease, outbox.LeaderOptions{
		Role: "log-tailing relay", Logger: r.cfg.logger, Leader: &r.leader, OnError: r.fail,
		Fatal: func(err error) bool { return errors.Is(err, ErrColumnLayout) },
	}, func(ctx context.Context, k *outbox.LeaseKeeper) (bool, error) {
		r.keeper = k
		defer func() { r.keeper = nil }()
		// A session that confirmed a position made progress: the
		// next failure starts the back-off afresh.
		before := r.confirmed.Load()
		err := r.stream(ctx)
		return r.confirmed.Load() != before, err
	})
}

// valid reports whether the relay may publish: it leads and its lease is
// current.
func (r *Relay) valid() bool { return r.keeper != nil && r.keeper.Valid() }

func (r *Relay) fail(err error) {
	r.errs.Add(1)
	r.cfg.logger.Warn("courier: log-tailing relay error", slog.Any("error", err))
}

// ensurePublication creates the publication of the outbox table's inserts
// if it does not exist.
func (r *Relay) ensurePublication(ctx context.Context) error {
	var exists bool
	if err := r.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", r.cfg.publication).Scan(&exists); err != nil {
		return fmt.Errorf("pgcdc: reading publications: %w", err)
	}
	if exists {
		return nil
	}
	var schema string
	if err := r.db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("pgcdc: reading the current schema: %w", err)
	}
	_, err := r.db.ExecContext(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s.message WITH (publish = 'insert')",
		r.cfg.publication, quoteIdent(schema)))
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("pgcdc: creating publication %s: %w", r.cfg.publication, err)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// stream runs one replication session while the lease holds.
func (r *Relay) stream(ctx context.Context) error {
	pc, err := pgconn.ParseConfig(r.connString)
	if err != nil {
		return err
	}
	pc.RuntimeParams["replication"] = "database"
	pc.RuntimeParams["bytea_output"] = "hex"
	delete(pc.RuntimeParams, "search_path")
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("pgcdc: replication connection: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if err := pglogrepl.StartReplication(ctx, conn, r.cfg.slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: []string{
		"proto_version '1'", fmt.Sprintf("publication_names '%s'", r.cfg.publication), "messages 'true'",
	}}); err != nil {
		return fmt.Errorf("pgcdc: starting replication on slot %s: %w", r.cfg.slot, err)
	}
	s := &session{r: r, conn: conn, relations: map[uint32]*relation{}}
	return s.run(ctx)
}
