package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/eventuate"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox/internal/relay"
	"github.com/courier-go/courier/sqldb"
)

// EventuateTable is Eventuate Tram's outbox table, <schema>.message, as
// Eventuate's schema files create it on PostgreSQL and MySQL/MariaDB
// (eventuate-common: postgres/2.initialize-database.sql and
// mysql/3.create-message-table.sql, or for database ids
// 5.initialize-database-db-id.sql), with TEXT (not JSON) headers and
// payload columns. A Writer with WithEventuateTable writes the rows
// Eventuate's EventuateCommonJdbcOperations writes, and a Relay with
// PollEventuateTable, or with the log-tailing source of pgcdc or mysqlcdc
// and their WithEventuateTable, publishes the rows Eventuate's services
// write, so that a Go service on Courier and a Java service on Eventuate
// share one outbox and either relay.
//
// The table belongs to Eventuate's schema: create it with Eventuate's
// files. The relay's lease table (courier_lease, made by sqldb.Migrate)
// lives in the connection's default schema or database.
type EventuateTable struct {
	// Schema is the schema (the database, on MySQL) of the table:
	// Eventuate's eventuate.database.schema, "eventuate" if empty.
	Schema string
	// DatabaseIDs says the table is in Eventuate's database-id mode: its
	// rows have an auto-incremented dbid, which orders them, and an
	// empty id; a row whose headers have no ID gets the ID
	// Eventuate's CDC gives it, "%016x-%016x" of its dbid and OutboxID.
	// Otherwise rows carry application-generated ids, which order them.
	DatabaseIDs bool
	// OutboxID is the outbox's id in database-id mode (Eventuate's
	// eventuate.outbox.id, from 0 to 2^48-1), the low half of the IDs
	// of rows without one.
	OutboxID uint64
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Validate reports whether t is a valid description of a table.
func (t EventuateTable) Validate() error {
	if t.Schema != "" && !identifier.MatchString(t.Schema) {
		return fmt.Errorf("eventuate table: schema %q is not a plain SQL identifier", t.Schema)
	}
	if t.OutboxID > 0xffffffffffff {
		return fmt.Errorf("eventuate table: outbox id %d is over 2^48-1", t.OutboxID)
	}
	return nil
}

// TableName is the table's qualified name, as Eventuate's
// EventuateSchema.qualifyTable makes it: "eventuate.message" by default.
func (t EventuateTable) TableName() string {
	if t.Schema == "" {
		return "eventuate.message"
	}
	return t.Schema + ".message"
}

// WithEventuateTable makes the Writer write into Eventuate Tram's outbox
// table t, with the INSERT Eventuate issues for its mode
// (EventuateJdbcOperationsUtils.insertIntoMessageTable...Sql): the
// headers as Jackson writes them with the message's ID among them,
// creation_time the database's clock in milliseconds, published 0 and
// message_partition NULL. In database-id mode the id column is empty
// and the row's ID is the one in its headers: the message's, which both
// Eventuate's CDC and Courier's relay publish it under. Only PostgreSQL
// and MySQL/MariaDB have the table. Payloads must be UTF-8 text, which
// the table's TEXT column holds.
func WithEventuateTable(t EventuateTable) WriterOption {
	return func(w *Writer) { w.eventuate = &t }
}

// PollEventuateTable makes the relay's table poller read Eventuate Tram's
// outbox table t instead of Courier's: the rows with published = 0 in
// the order of their id (or of their dbid, in database-id mode), as
// Eventuate's polling CDC reads them, removed or marked (WithKeepPublished,
// as Eventuate's own CDC does) once published. Every row becomes the
// message Eventuate's CDC would publish: its headers, its payload and the
// ID in its headers (or made of dbid and OutboxID).
func PollEventuateTable(t EventuateTable) RelayOption {
	return pollOption("PollEventuateTable", func(c *pollConfig) error {
		if err := t.Validate(); err != nil {
			return err
		}
		c.eventuate = &t
		return nil
	})
}

// eventuateInsert returns the INSERT Eventuate issues for a row of t, with
// ? placeholders: id (in application-id mode), destination, headers,
// payload, published, message_partition.
func eventuateInsert(d *sqldb.Dialect, t EventuateTable) (string, error) {
	var text, now string
	switch d {
	case sqldb.Postgres:
		// PostgresDialect.castToJson casts to the column's type, text
		// in Eventuate's default schema.
		text, now = "?::text", "(ROUND(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) * 1000))"
	case sqldb.MySQL:
		text, now = "?", "ROUND(UNIX_TIMESTAMP(CURTIME(4)) * 1000)"
	default:
		return "", fmt.Errorf("%w, not %s", errNoEventuateDialect, d)
	}
	id := "?"
	if t.DatabaseIDs {
		id = "''"
	}
	return fmt.Sprintf("insert into %s(id, destination, headers, payload, creation_time, published, message_partition) values(%s, ?, %s, %s, %s, ?, ?)",
		t.TableName(), id, text, text, now), nil
}

// sendEventuate is Send into Eventuate's table.
func (w *Writer) sendEventuate(ctx context.Context, tx sqldb.Execer, channel string, msgs []*message.Message) error {
	if err := w.eventuate.Validate(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if w.deleteAfter {
		return errors.New("outbox: WithDeleteAfterInsert does not apply to Eventuate's outbox table")
	}
	insert, err := eventuateInsert(w.d, *w.eventuate)
	if err != nil {
		return err
	}
	insert = w.d.Rebind(insert)
	if err := adapter.PrepareSend(channel, msgs, w.limits); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	date := message.FormatDate(time.Now())
	for _, m := range msgs {
		headers := make(map[string]string, len(m.Headers)+3)
		for k, v := range m.Headers {
			headers[k] = v
		}
		headers[message.HeaderID] = m.ID
		headers[message.HeaderDestination] = channel
		if _, ok := headers[message.HeaderDate]; !ok {
			headers[message.HeaderDate] = date
		}
		encoded, err := eventuate.AppendHeaders(nil, headers)
		if err == nil && !utf8.Valid(m.Payload) {
			err = fmt.Errorf("payload: %w", eventuate.ErrNotText)
		}
		if err != nil {
			return fmt.Errorf("outbox: message %s for %q: %w", m.ID, channel, err)
		}
		args := []any{channel, string(encoded), string(m.Payload), 0, nil}
		if !w.eventuate.DatabaseIDs {
			args = append([]any{m.ID}, args...)
		}
		if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
			return fmt.Errorf("outbox: writing message %s for %q into %s: %w", m.ID, channel, w.eventuate.TableName(), err)
		}
	}
	return nil
}

// eventuateSQL returns the poller's statements for Eventuate's table: the
// query of unpublished rows, the removal and the column it matches.
func (p *poller) eventuateSQL() (selectRows, remove, key string) {
	t := p.cfg.eventuate
	key = "id"
	if t.DatabaseIDs {
		key = "dbid"
	}
	remove = "DELETE FROM " + t.TableName()
	if p.cfg.keep {
		remove = "UPDATE " + t.TableName() + " SET published = 1"
	}
	return "SELECT " + key + ", destination, headers, payload, creation_time FROM " + t.TableName() + " WHERE published = 0 ORDER BY " + key + " LIMIT ?", remove, key
}

// Check reports whether db has the table, with the columns a relay reads,
// and the relay's lease table (sqldb.Migrate makes it), with an error
// wrapping sqldb.ErrSchemaMissing that says which is missing.
func (t EventuateTable) Check(ctx context.Context, db sqldb.Querier) error {
	cols := "id, destination, headers, payload, published, message_partition, creation_time"
	if t.DatabaseIDs {
		cols += ", dbid"
	}
	for _, c := range []struct{ table, cols, fix string }{
		{t.TableName(), cols, "create it with Eventuate's schema files"},
		{"courier_lease", "name, owner, token, expires_at, beats", "create it with sqldb.Migrate"},
	} {
		rows, err := db.QueryContext(ctx, "SELECT "+c.cols+" FROM "+c.table+" WHERE 1 = 0")
		if err == nil {
			err = rows.Close()
		}
		if err != nil {
			return fmt.Errorf("%w: table %s (columns %s) is not usable: %v; %s", sqldb.ErrSchemaMissing, c.table, c.cols, err, c.fix)
		}
	}
	return nil
}

// scanEventuate reads a row of Eventuate's table: its key (id or dbid),
// its creation_time into created, and the row the relay publishes, whose
// ID is the one in its headers or, in database-id mode, made of dbid and
// the outbox id.
func (p *poller) scanEventuate(q *sql.Rows, created *sql.NullInt64) (relay.Row, any, error) {
	var rw relay.Row
	if !p.cfg.eventuate.DatabaseIDs {
		err := q.Scan(&rw.ID, &rw.Destination, &rw.Headers, &rw.Payload, created)
		return rw, rw.ID, err
	}
	var dbid int64
	if err := q.Scan(&dbid, &rw.Destination, &rw.Headers, &rw.Payload, created); err != nil {
		return rw, nil, err
	}
	rw.ID = relay.EventuateID(rw.Headers, dbid, p.cfg.eventuate.OutboxID)
	return rw, dbid, nil
}

// errNoEventuateDialect is the error of an Eventuate table on SQLite.
var errNoEventuateDialect = errors.New("outbox: Eventuate's outbox table is for PostgreSQL and MySQL/MariaDB")
