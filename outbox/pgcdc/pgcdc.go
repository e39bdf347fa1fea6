// Package pgcdc is an outbox.Source that tails PostgreSQL's transaction
// log: logical replication of the message table with the built-in pgoutput
// plugin. Each committed transaction's outbox rows reach the relay as the
// transaction commits, in commit order, without polling the table:
//
//	src, err := pgcdc.NewSource(connString, pgcdc.WithSlot("orders_outbox"))
//	relay, err := outbox.NewRelay(db, sqldb.Postgres, broker, outbox.WithSource(src), outbox.WithName("orders"))
//
// The source confirms a position to the replication slot only after the
// broker confirmed every message before it, so a crash replays from the
// last confirmed transaction (duplicates, never loss). It emits a logical
// heartbeat message periodically, so that an idle outbox does not keep the
// slot from releasing WAL. Producers may insert and delete an outbox row in
// the same transaction (outbox.WithDeleteAfterInsert): the insert still
// reaches the log, and the table stays empty.
//
// The relay (outbox.Relay) owns the rest: the lease, publishing,
// dead-lettering, stats and options. Several relays may run; the one that
// holds the lease streams, the others wait. PostgreSQL also lets only one
// connection use a slot at a time, which fences a leader that lost its
// lease but has not noticed yet.
//
// The server needs wal_level = logical, and the relay's role the
// REPLICATION attribute (or to be the table owner for the publication).
package pgcdc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/internal/relay"
	"github.com/courier-go/courier/sqldb"
)

// Defaults of a Source.
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
	slot, publication string
	heartbeat, status time.Duration
	eventuate         *outbox.EventuateTable // WithEventuateTable
}

// Option configures a Source.
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

// WithHeartbeat sets how often the source writes a heartbeat to the log
// (default 10s, at least 10ms), so that an idle outbox still lets the slot
// move on. The relay renews its lease on its own cadence, every quarter
// of its TTL, beside the stream.
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("heartbeat interval must be at least 10ms, got %v", d)
		}
		c.heartbeat = d
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

// Source reads the outbox table's inserts from a logical replication
// slot. It serves one relay (outbox.WithSource).
type Source struct {
	connString string
	cfg        config
	db         *sql.DB
	logger     *slog.Logger

	confirmed  atomic.Uint64 // the last position confirmed to the slot
	lastCommit atomic.Int64  // Unix milliseconds
}

// NewSource returns a source that reads the outbox table of the database
// connString names, over replication connections it opens with
// connString. The relay's database must be the same one.
func NewSource(connString string, opts ...Option) (*Source, error) {
	cfg := config{slot: DefaultSlot, publication: DefaultPublication, heartbeat: DefaultHeartbeatInterval, status: DefaultStatusInterval}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("pgcdc: configuration: %w", err)
		}
	}
	if _, err := pgconn.ParseConfig(connString); err != nil {
		return nil, fmt.Errorf("pgcdc: connection string: %w", err)
	}
	return &Source{connString: connString, cfg: cfg}, nil
}

// Bind is called by outbox.NewRelay: the relay's database must be
// PostgreSQL.
func (s *Source) Bind(env relay.Env) error {
	switch {
	case s.db != nil:
		return errors.New("pgcdc: the source serves one relay")
	case env.Dialect != sqldb.Postgres:
		return fmt.Errorf("pgcdc: the source reads PostgreSQL's log; the relay's database is %s", env.Dialect.Name())
	}
	s.db, s.logger = env.DB, env.Logger.With(slog.String("slot", s.cfg.slot))
	return nil
}

// Progress is the last position confirmed to the slot and the commit time
// of the last transaction published.
func (s *Source) Progress() relay.Progress {
	p := relay.Progress{Position: pglogrepl.LSN(s.confirmed.Load()).String()}
	if ms := s.lastCommit.Load(); ms > 0 {
		p.LastCommit = time.UnixMilli(ms)
	}
	return p
}

// Lag is the WAL the slot has not confirmed yet.
func (s *Source) Lag(ctx context.Context) (relay.Lag, error) {
	var lag sql.NullFloat64
	if err := s.db.QueryRowContext(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = $1",
		s.cfg.slot).Scan(&lag); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return relay.Lag{}, fmt.Errorf("pgcdc: reading the slot's lag: %w", err)
	}
	return relay.Lag{Bytes: int64(lag.Float64)}, nil
}

// check verifies the server and the schema: wal_level, the outbox table
// and its columns.
func (r *Source) check(ctx context.Context) error {
	var level string
	if err := r.db.QueryRowContext(ctx, "SELECT current_setting('wal_level')").Scan(&level); err != nil {
		return fmt.Errorf("pgcdc: reading wal_level: %w", err)
	}
	if level != "logical" {
		return fmt.Errorf("%w: the server's wal_level is %q; set wal_level = logical in postgresql.conf and restart PostgreSQL", ErrNotLogical, level)
	}
	check := func() error { return sqldb.CheckSchema(ctx, r.db, sqldb.Postgres) }
	if r.cfg.eventuate != nil {
		check = func() error { return r.cfg.eventuate.Check(ctx, r.db) }
	}
	if err := check(); err != nil {
		return fmt.Errorf("pgcdc: %w", err)
	}
	return nil
}

// Setup checks the server and creates the publication and the replication
// slot if they do not exist. It fails with ErrSlotMismatch if the slot
// exists but belongs to another database, is physical or uses another
// plugin. Transactions committed before the slot exists are not in its
// stream: run the relay's Setup (or Run) before producers write, or drain
// older rows once with the table poller. The relay calls it.
func (r *Source) Setup(ctx context.Context) error {
	if err := r.check(ctx); err != nil {
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
	r.logger.Info("courier: created replication slot")
	return nil
}

// checkSlot reports whether the relay's slot exists, and fails with
// ErrSlotMismatch if it exists but the relay cannot stream from it: a
// slot of another database (slots are cluster-wide, a logical slot
// decodes one database), a physical slot or one of another plugin.
func (r *Source) checkSlot(ctx context.Context) (bool, error) {
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

// ensurePublication creates the publication of the outbox table's inserts
// if it does not exist.
func (r *Source) ensurePublication(ctx context.Context) error {
	var exists bool
	if err := r.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", r.cfg.publication).Scan(&exists); err != nil {
		return fmt.Errorf("pgcdc: reading publications: %w", err)
	}
	if exists {
		return nil
	}
	var table string
	if r.cfg.eventuate != nil {
		table = r.cfg.eventuate.TableName() // plain identifiers (EventuateTable.Validate)
	} else {
		var schema string
		if err := r.db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			return fmt.Errorf("pgcdc: reading the current schema: %w", err)
		}
		table = quoteIdent(schema) + ".message"
	}
	_, err := r.db.ExecContext(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (publish = 'insert')",
		r.cfg.publication, table))
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("pgcdc: creating publication %s: %w", r.cfg.publication, err)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Open starts a replication session at the last confirmed position.
func (r *Source) Open(ctx context.Context, lead relay.Lead) (relay.Reader, error) {
	pc, err := pgconn.ParseConfig(r.connString)
	if err != nil {
		return nil, err
	}
	pc.RuntimeParams["replication"] = "database"
	pc.RuntimeParams["bytea_output"] = "hex"
	delete(pc.RuntimeParams, "search_path")
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgcdc: replication connection: %w", err)
	}
	start := pglogrepl.LSN(r.confirmed.Load())
	if err := pglogrepl.StartReplication(ctx, conn, r.cfg.slot, start, pglogrepl.StartReplicationOptions{PluginArgs: []string{
		"proto_version '1'", fmt.Sprintf("publication_names '%s'", r.cfg.publication), "messages 'true'",
	}}); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("pgcdc: starting replication on slot %s: %w", r.cfg.slot, err)
	}
	return newReader(r, conn, lead, start), nil
}
