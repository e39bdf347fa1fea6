// Package mysqlcdc is an outbox.Source that tails the MySQL/MariaDB binary
// log: it connects as a replica, through go-mysql's replication client
// (github.com/go-mysql-org/go-mysql/replication), and hands the relay the
// rows each committed transaction inserted into the message table, when
// the transaction's commit (XID) arrives, in commit order, without polling
// the table:
//
//	src, err := mysqlcdc.NewSource("user:pass@tcp(db:3306)/orders")
//	relay, err := outbox.NewRelay(db, sqldb.MySQL, broker, outbox.WithSource(src), outbox.WithName("orders"))
//
// The source stores its position (file and offset, and the GTID position:
// MariaDB's, or MySQL's executed GTID set when gtid_mode is ON) in the
// courier_binlog_position table only after the broker confirmed every
// message before it, so a crash replays from the last stored transaction
// (duplicates, never loss). It resumes from the GTID position where there
// is one (MariaDB's slave_connect_state, MySQL's GTID auto-positioning),
// and from the file and offset otherwise. Producers may insert and delete
// an outbox row in the same transaction (outbox.WithDeleteAfterInsert):
// the insert is still in the binary log, and the table stays empty.
//
// The relay (outbox.Relay) owns the rest: the lease, publishing,
// dead-lettering, stats and options. Several relays may run; the one that
// holds the lease streams, the others wait. All relays of one outbox register with the same replica
// server id, and a server lets one connection stream per server id: a new
// leader's stream ends the stream of a leader that lost its lease but has
// not noticed yet.
//
// The server needs log_bin on, binlog_format = ROW and binlog_row_image =
// FULL, and the relay's user the REPLICATION SLAVE and REPLICATION CLIENT
// privileges (BINLOG MONITOR on MariaDB). The replication connection uses
// the DSN's address, user, password and TLS settings (tls=true, or a
// registered configuration); compressed transactions
// (binlog_transaction_compression) are read; encrypted binary logs are
// decrypted by the server before they are sent.
package mysqlcdc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/go-sql-driver/mysql"

	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/internal/relay"
	"github.com/courier-go/courier/sqldb"
)

// Defaults of a Source.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultStoreInterval     = time.Second
	// PositionTable holds each relay's binary log position.
	PositionTable = "courier_binlog_position"
)

// ErrBinlogOff means the server does not write a usable binary log.
var ErrBinlogOff = errors.New("mysqlcdc: the binary log is not usable for row capture")

// ErrColumnLayout means the outbox table lacks a column the relay reads,
// or a column has a type the relay cannot read.
var ErrColumnLayout = errors.New("mysqlcdc: unknown outbox column layout")

type config struct {
	heartbeat, store time.Duration
	serverID         uint32
	eventuate        *outbox.EventuateTable // WithEventuateTable
}

// Option configures a Source.
type Option func(*config) error

// WithHeartbeat sets the period of the server's heartbeats while the log
// is idle (default 10s); a stream that receives nothing for three periods
// is considered dead and reopened.
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond || d > time.Hour {
			return fmt.Errorf("heartbeat interval must be between 10ms and 1h, got %v", d)
		}
		c.heartbeat = d
		return nil
	}
}

// WithStoreInterval sets how often the relay stores its position while
// transactions commit (default 1s): a crash replays at most this much.
func WithStoreInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Millisecond {
			return fmt.Errorf("store interval must be at least 1ms, got %v", d)
		}
		c.store = d
		return nil
	}
}

// WithServerID sets the replica server id the relays of this outbox
// register with (default: derived from the name, between 2^30 and 2^31).
// It must differ from every server's and other replica's server_id.
func WithServerID(id uint32) Option {
	return func(c *config) error {
		if id == 0 {
			return errors.New("server id must not be 0")
		}
		c.serverID = id
		return nil
	}
}

// Position is a place in the binary log: just after a committed
// transaction.
type Position struct {
	File   string
	Offset uint32
	// GTID is MariaDB's GTID position (domain-server-sequence for each
	// domain, comma-separated); empty on MySQL.
	GTID string
}

func (p Position) String() string {
	s := fmt.Sprintf("%s:%d", p.File, p.Offset)
	if p.GTID != "" {
		s += " gtid " + p.GTID
	}
	return s
}

// Source reads the outbox table's inserts from the binary log. It serves
// one relay (outbox.WithSource).
type Source struct {
	dsn        *mysql.Config
	cfg        config
	db         *sql.DB
	name       string
	logger     *slog.Logger
	lastCommit atomic.Int64 // Unix milliseconds
	mu         sync.Mutex
	stored     Position
	// flavorName, when set, is the server's kind instead of what its
	// version says (tests of a MySQL source beside a MariaDB database).
	flavorName string
}

// NewSource returns a source that reads the binary log of the server dsn
// names, a go-sql-driver/mysql DSN of the relay's database
// (user:pass@tcp(host:port)/db, with tls=... for TLS); the source opens
// its replication connection with it.
func NewSource(dsn string, opts ...Option) (*Source, error) {
	dc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysqlcdc: DSN: %w", err)
	}
	if dc.Net != "tcp" {
		return nil, fmt.Errorf("mysqlcdc: DSN: the replication connection needs tcp, not %q", dc.Net)
	}
	if dc.DBName == "" {
		return nil, errors.New("mysqlcdc: DSN: name the database whose outbox the relay publishes")
	}
	cfg := config{heartbeat: DefaultHeartbeatInterval, store: DefaultStoreInterval}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("mysqlcdc: configuration: %w", err)
		}
	}
	return &Source{dsn: dc, cfg: cfg}, nil
}

// Bind is called by outbox.NewRelay: the relay's database must be MySQL
// or MariaDB. Without WithServerID, the server id is derived from the
// database's and the outbox's names.
func (s *Source) Bind(env relay.Env) error {
	switch {
	case s.db != nil:
		return errors.New("mysqlcdc: the source serves one relay")
	case env.Dialect != sqldb.MySQL:
		return fmt.Errorf("mysqlcdc: the source reads the MySQL/MariaDB binary log; the relay's database is %s", env.Dialect.Name())
	}
	s.db, s.name = env.DB, env.Name
	s.logger = env.Logger.With(slog.String("database", s.dsn.DBName))
	if s.cfg.serverID == 0 {
		h := fnv.New32a()
		h.Write([]byte(s.dsn.DBName + "/" + s.name))
		s.cfg.serverID = 1<<30 | h.Sum32()&(1<<30-1)
	}
	return nil
}

// Stored is the last position the source stored.
func (s *Source) Stored() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored
}

// Progress is the stored position and the commit time of the last
// transaction published.
func (s *Source) Progress() relay.Progress {
	p := relay.Progress{}
	if st := s.Stored(); st.File != "" {
		p.Position = st.String()
	}
	if ms := s.lastCommit.Load(); ms > 0 {
		p.LastCommit = time.UnixMilli(ms)
	}
	return p
}

// check verifies the server and the schema: the binary log settings, the
// outbox table and its columns.
func (r *Source) check(ctx context.Context) error {
	var logBin, format, image sql.NullString
	if err := r.db.QueryRowContext(ctx, "SELECT @@log_bin, @@binlog_format, @@binlog_row_image").Scan(&logBin, &format, &image); err != nil {
		return fmt.Errorf("mysqlcdc: reading the binary log settings: %w", err)
	}
	switch {
	case logBin.String != "1" && !strings.EqualFold(logBin.String, "ON"):
		return fmt.Errorf("%w: log_bin is off; start the server with log_bin (and server_id, binlog_format = ROW, binlog_row_image = FULL)", ErrBinlogOff)
	case !strings.EqualFold(format.String, "ROW"):
		return fmt.Errorf("%w: binlog_format is %s; set binlog_format = ROW", ErrBinlogOff, format.String)
	case !strings.EqualFold(image.String, "FULL"):
		return fmt.Errorf("%w: binlog_row_image is %s; set binlog_row_image = FULL", ErrBinlogOff, image.String)
	}
	check := func() error { return sqldb.CheckSchema(ctx, r.db, sqldb.MySQL) }
	if r.cfg.eventuate != nil {
		check = func() error { return r.cfg.eventuate.Check(ctx, r.db) }
	}
	if err := check(); err != nil {
		return fmt.Errorf("mysqlcdc: %w", err)
	}
	if _, err := r.layout(ctx); err != nil {
		return err
	}
	return nil
}

// Setup checks the server, creates the position table and, for a new
// outbox name, stores the current end of the log as the start. Transactions
// committed before are not published: run the relay's Setup (or Run)
// before producers write, or drain older rows once with the table poller.
// The relay calls it.
func (r *Source) Setup(ctx context.Context) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if err := r.createPositionTable(ctx); err != nil {
		return err
	}
	if _, ok, err := r.position(ctx); err != nil || ok {
		return err
	}
	start, err := r.endOfLog(ctx)
	if err != nil {
		return err
	}
	if _, err := r.db.ExecContext(ctx, "INSERT IGNORE INTO "+PositionTable+" (name, file, position, gtid, updated_at) VALUES (?, ?, ?, ?, ?)",
		r.name, start.File, start.Offset, start.GTID, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("mysqlcdc: storing the start position: %w", err)
	}
	r.logger.Info("courier: binlog relay starts at the end of the log", slog.String("position", start.String()))
	return nil
}

// createPositionTable creates the table of the relays' positions if it
// does not exist.
func (r *Source) createPositionTable(ctx context.Context) error {
	if _, err := r.db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+PositionTable+` (
    name       VARCHAR(255)  NOT NULL PRIMARY KEY,
    file       VARCHAR(255)  NOT NULL,
    position   BIGINT        NOT NULL,
    gtid       TEXT          NOT NULL,
    updated_at BIGINT        NOT NULL,
    beats      BIGINT        NOT NULL DEFAULT 0
) ENGINE = InnoDB`); err != nil {
		return fmt.Errorf("mysqlcdc: creating %s: %w", PositionTable, err)
	}
	return nil
}

// position reads the stored position.
func (r *Source) position(ctx context.Context) (Position, bool, error) {
	var p Position
	err := r.db.QueryRowContext(ctx, "SELECT file, position, gtid FROM "+PositionTable+" WHERE name = ?", r.name).Scan(&p.File, &p.Offset, &p.GTID)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("mysqlcdc: reading the stored position: %w", err)
	}
	return p, true, nil
}

// endOfLog is the server's current position.
func (r *Source) endOfLog(ctx context.Context) (Position, error) {
	var p Position
	rows, err := r.db.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil { // MySQL 8.4 renamed it
		rows, err = r.db.QueryContext(ctx, "SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return p, fmt.Errorf("mysqlcdc: reading the binary log status (grant REPLICATION CLIENT or BINLOG MONITOR): %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return p, fmt.Errorf("%w: the server reports no binary log status; is log_bin on?", ErrBinlogOff)
	}
	vals := make([]any, len(cols))
	for i := range vals {
		vals[i] = new(sql.RawBytes)
	}
	if err := rows.Scan(vals...); err != nil || len(cols) < 2 {
		return p, fmt.Errorf("mysqlcdc: reading the binary log status: %w", err)
	}
	p.File = string(*vals[0].(*sql.RawBytes))
	var off uint64
	fmt.Sscan(string(*vals[1].(*sql.RawBytes)), &off)
	p.Offset = uint32(off)
	rows.Close()
	flavor, err := r.flavor(ctx)
	if err != nil {
		return p, err
	}
	if flavor == gomysql.MariaDBFlavor {
		if err := r.db.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&p.GTID); err != nil {
			return p, fmt.Errorf("mysqlcdc: reading gtid_binlog_pos: %w", err)
		}
		return p, nil
	}
	// MySQL with GTIDs: the relay resumes by GTID auto-positioning from
	// the set of transactions it has seen.
	var mode sql.NullString
	if err := r.db.QueryRowContext(ctx, "SELECT @@gtid_mode").Scan(&mode); err != nil {
		return p, fmt.Errorf("mysqlcdc: reading gtid_mode: %w", err)
	}
	if strings.EqualFold(mode.String, "ON") {
		if err := r.db.QueryRowContext(ctx, "SELECT @@gtid_executed").Scan(&p.GTID); err != nil {
			return p, fmt.Errorf("mysqlcdc: reading gtid_executed: %w", err)
		}
		p.GTID = strings.ReplaceAll(p.GTID, "\n", "")
	}
	return p, nil
}

// Lag is how many bytes of binary log the stored position is behind the
// end of the log.
func (r *Source) Lag(ctx context.Context) (relay.Lag, error) {
	n, err := r.lagBytes(ctx)
	return relay.Lag{Bytes: n}, err
}

func (r *Source) lagBytes(ctx context.Context) (int64, error) {
	p, ok, err := r.position(ctx)
	if err != nil || !ok {
		return 0, err
	}
	rows, err := r.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return 0, fmt.Errorf("mysqlcdc: listing binary logs: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lag int64
	for rows.Next() {
		var name string
		var size int64
		dest := []any{&name, &size}
		for range len(cols) - 2 {
			dest = append(dest, new(sql.RawBytes))
		}
		if err := rows.Scan(dest...); err != nil {
			return 0, fmt.Errorf("mysqlcdc: listing binary logs: %w", err)
		}
		switch {
		case name == p.File:
			lag += max(0, size-int64(p.Offset))
		case name > p.File:
			lag += size
		}
	}
	return lag, rows.Err()
}

// layout reads the message table's columns from information_schema.
func (r *Source) layout(ctx context.Context) (*layout, error) {
	rows, err := r.db.QueryContext(ctx, "SELECT column_name, data_type FROM information_schema.columns"+
		" WHERE table_schema = ? AND table_name = 'message' ORDER BY ordinal_position", r.outboxSchema())
	if err != nil {
		return nil, fmt.Errorf("mysqlcdc: reading the outbox columns: %w", err)
	}
	defer rows.Close()
	var names, types []string
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return nil, fmt.Errorf("mysqlcdc: reading the outbox columns: %w", err)
		}
		names, types = append(names, strings.ToLower(n)), append(types, strings.ToLower(t))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysqlcdc: reading the outbox columns: %w", err)
	}
	l := &layout{columns: len(names), id: -1, destination: -1, headers: -1, payload: -1, eventuate: r.cfg.eventuate, published: -1, dbid: -1}
	for i, n := range names {
		switch n {
		case "published":
			l.published = i
			continue
		case "dbid":
			l.dbid = i
			continue
		case "id":
			l.id = i
		case "destination":
			l.destination = i
		case "headers":
			l.headers = i
		case "payload":
			l.payload = i
		default:
			continue
		}
		if !stringType(types[i]) {
			return nil, relay.Fatal(fmt.Errorf("%w: column message.%s is %s; it must be a string or binary type (see sqldb/migrations/mysql)", ErrColumnLayout, n, types[i]))
		}
	}
	if l.id < 0 || l.destination < 0 || l.headers < 0 || l.payload < 0 {
		return nil, relay.Fatal(fmt.Errorf("%w: message has columns %v; it needs id, destination, headers and payload (see sqldb/migrations/mysql)",
			ErrColumnLayout, names))
	}
	if t := l.eventuate; t != nil && (l.published < 0 || t.DatabaseIDs && l.dbid < 0) {
		return nil, relay.Fatal(fmt.Errorf("%w: %s.message has columns %v; Eventuate's table has published, and dbid in database-id mode",
			ErrColumnLayout, r.outboxSchema(), names))
	}
	return l, nil
}

func stringType(t string) bool {
	switch t {
	case "char", "varchar", "binary", "varbinary", "tinytext", "text", "mediumtext", "longtext",
		"tinyblob", "blob", "mediumblob", "longblob":
		return true
	}
	return false
}

// Open starts a replication session at the stored position.
func (r *Source) Open(ctx context.Context, lead relay.Lead) (relay.Reader, error) {
	l, err := r.layout(ctx)
	if err != nil {
		return nil, err
	}
	start, ok, err := r.position(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("mysqlcdc: no stored position for %q; run Setup", r.name)
	}
	r.setStored(start)
	flavor, err := r.flavor(ctx)
	if err != nil {
		return nil, err
	}
	gset, err := parseGTIDSet(flavor, start.GTID)
	if err != nil {
		return nil, err
	}
	syncer := replication.NewBinlogSyncer(r.syncerConfig(flavor))
	var st *replication.BinlogStreamer
	if !gset.IsEmpty() {
		st, err = syncer.StartSyncGTID(gset.Clone())
	} else {
		st, err = syncer.StartSync(gomysql.Position{Name: start.File, Pos: start.Offset})
	}
	if err != nil {
		syncer.Close()
		return nil, fmt.Errorf("mysqlcdc: starting the binlog dump at %v: %w", start, err)
	}
	if flavor == gomysql.MySQLFlavor && gset.IsEmpty() {
		gset = nil // positioned by file and offset only
	}
	rd := newReader(r, st, lead, l, start, gset)
	rd.close = syncer.Close
	return rd, nil
}

// syncerConfig is the replication client's configuration: the relay's
// server id, the DSN's address, user, password and TLS, heartbeats every
// heartbeat interval and a stream presumed dead after three without a
// packet. The relay resumes from its stored position itself, so the
// client does not reconnect on its own.
func (r *Source) syncerConfig(flavor string) replication.BinlogSyncerConfig {
	host, _ := os.Hostname()
	return replication.BinlogSyncerConfig{
		ServerID:         r.cfg.serverID,
		Flavor:           flavor,
		Host:             r.dsn.Addr,
		User:             r.dsn.User,
		Password:         r.dsn.Passwd,
		Localhost:        host,
		TLSConfig:        r.dsn.TLS,
		HeartbeatPeriod:  r.cfg.heartbeat,
		ReadTimeout:      3 * r.cfg.heartbeat,
		DisableRetrySync: true,
		VerifyChecksum:   true,
		DiscardGTIDSet:   true,
		EventCacheCount:  eventCache,
		Logger:           slog.New(quieter{r.logger.Handler()}),
		// go-mysql's own decoder loops until memory runs out on some
		// malformed rows events.
		RowsEventDecodeFunc: decodeRows(r.outboxSchema()),
	}
}

// eventCache is how many events the replication client reads ahead of
// the relay.
const eventCache = 4096

// flavor is go-mysql's name of the server's kind: mysql or mariadb.
func (r *Source) flavor(ctx context.Context) (string, error) {
	if r.flavorName != "" {
		return r.flavorName, nil
	}
	var version string
	if err := r.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return "", fmt.Errorf("mysqlcdc: reading the server version: %w", err)
	}
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return gomysql.MariaDBFlavor, nil
	}
	return gomysql.MySQLFlavor, nil
}

// parseGTIDSet reads a stored GTID position; an empty one makes the relay
// resume from the file and offset.
func parseGTIDSet(flavor, s string) (gomysql.GTIDSet, error) {
	set, err := gomysql.ParseGTIDSet(flavor, strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("mysqlcdc: stored GTID position %q: %w", s, err)
	}
	return set, nil
}

func (r *Source) setStored(p Position) {
	r.mu.Lock()
	r.stored = p
	r.mu.Unlock()
}

// quieter passes go-mysql's log lines to the relay's handler one level
// down: its news of each connection and file are the relay's debug
// lines, its errors the relay's warnings (the relay reports the failure
// that ends a stream itself).
type quieter struct{ slog.Handler }

func (q quieter) Enabled(ctx context.Context, l slog.Level) bool {
	return q.Handler.Enabled(ctx, l-4)
}

func (q quieter) Handle(ctx context.Context, r slog.Record) error {
	r.Level -= 4
	return q.Handler.Handle(ctx, r)
}

func (q quieter) WithAttrs(as []slog.Attr) slog.Handler { return quieter{q.Handler.WithAttrs(as)} }
func (q quieter) WithGroup(name string) slog.Handler    { return quieter{q.Handler.WithGroup(name)} }
