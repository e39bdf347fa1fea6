// Package sqldb holds what Courier needs to know about its three SQL
// databases — SQLite (the embedded default), PostgreSQL and MySQL/MariaDB —
// and their schemas: the outbox table `message`, the idempotent consumer's
// table `received_messages` and the relay's lease table `courier_lease`.
//
// Courier works through database/sql with the driver of the user's choice
// for each database: modernc.org/sqlite, github.com/jackc/pgx/v5/stdlib or
// github.com/go-sql-driver/mysql. The schema is created by Migrate, or by
// applying the files under migrations/ with the database's own tools.
package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Dialect describes one SQL database. Use the values SQLite, Postgres and
// MySQL.
type Dialect struct {
	name      string
	dollar    bool   // $1 placeholders instead of ?
	nowMillis string // SQL expression: the database clock in Unix milliseconds
	ignore    [2]string
}

var (
	// SQLite is the embedded default (modernc.org/sqlite).
	SQLite = &Dialect{
		name:      "sqlite",
		nowMillis: "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
		ignore:    [2]string{"INSERT OR IGNORE INTO", ""},
	}
	// Postgres is PostgreSQL 13 or later (github.com/jackc/pgx/v5/stdlib).
	Postgres = &Dialect{
		name:      "postgres",
		dollar:    true,
		nowMillis: "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
		ignore:    [2]string{"INSERT INTO", " ON CONFLICT DO NOTHING"},
	}
	// MySQL is MySQL 8 or MariaDB 10.6 or later (github.com/go-sql-driver/mysql).
	MySQL = &Dialect{
		name:      "mysql",
		nowMillis: "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
		ignore:    [2]string{"INSERT IGNORE INTO", ""},
	}
)

// Name returns "sqlite", "postgres" or "mysql".
func (d *Dialect) Name() string { return d.name }

func (d *Dialect) String() string { return d.name }

// ByName returns the dialect called name ("sqlite", "postgres" or "mysql";
// "postgresql", "pgx", "mariadb" are accepted too).
func ByName(name string) (*Dialect, error) {
	switch strings.ToLower(name) {
	case "sqlite", "sqlite3":
		return SQLite, nil
	case "postgres", "postgresql", "pgx":
		return Postgres, nil
	case "mysql", "mariadb":
		return MySQL, nil
	}
	return nil, fmt.Errorf("sqldb: unknown dialect %q (want sqlite, postgres or mysql)", name)
}

// Rebind rewrites the ? placeholders of query into the dialect's form. It
// does not look inside string literals, so queries passed to it must not
// contain a literal '?'.
func (d *Dialect) Rebind(query string) string {
	if !d.dollar || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// NowMillis is an SQL expression for the database's clock in Unix
// milliseconds. Leases use the database clock so that relays on machines
// with skewed clocks still agree.
func (d *Dialect) NowMillis() string { return d.nowMillis }

// InsertIgnore returns an INSERT of one row into table that does nothing
// when the row conflicts with an existing key, with placeholders already in
// the dialect's form.
func (d *Dialect) InsertIgnore(table string, columns ...string) string {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ")
	return d.Rebind(fmt.Sprintf("%s %s (%s) VALUES (%s)%s", d.ignore[0], table, strings.Join(columns, ", "), marks, d.ignore[1]))
}

// Execer is what runs a statement: *sql.DB, *sql.Tx and *sql.Conn all are.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Querier runs queries: *sql.DB, *sql.Tx and *sql.Conn all are.
type Querier interface {
	Execer
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
