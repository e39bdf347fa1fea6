// Package testdb opens real databases for Courier's tests: a SQLite file, a
// fresh PostgreSQL schema or a fresh MySQL/MariaDB database per test, each
// with the Courier schema applied. When a server is unreachable the test is
// skipped with instructions, except under CI (CI=true), where it fails.
package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver
	_ "modernc.org/sqlite"             // registers the sqlite driver

	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/sqldb"
)

// Environment variables naming the servers, and their defaults (those the
// scripts under scripts/services start).
const (
	PostgresEnv     = "COURIER_POSTGRES_URL"
	PostgresDefault = "postgres://courier:courier@127.0.0.1:5432/courier?sslmode=disable"
	MySQLEnv        = "COURIER_MYSQL_DSN"
	MySQLDefault    = "courier:courier@tcp(127.0.0.1:3306)/"
)

// DB is an open test database.
type DB struct {
	*sql.DB
	Dialect *sqldb.Dialect
	// DSN opens the same database again, e.g. from a child process.
	DSN string
	// Driver is the database/sql driver name for DSN.
	Driver string
}

// Open returns a fresh database of the dialect with the Courier schema.
func Open(t testing.TB, d *sqldb.Dialect) *DB {
	t.Helper()
	switch d {
	case sqldb.Postgres:
		return Postgres(t)
	case sqldb.MySQL:
		return MySQL(t)
	}
	return SQLite(t)
}

// Dialects lists the dialects every SQL test runs on.
var Dialects = []*sqldb.Dialect{sqldb.SQLite, sqldb.Postgres, sqldb.MySQL}

func unavailable(t testing.TB, what, how string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is unreachable (%v); start it with %s", what, err, how)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func migrate(t testing.TB, db *DB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sqldb.Migrate(ctx, db.DB, db.Dialect); err != nil {
		t.Fatalf("migrate %s: %v", db.Dialect, err)
	}
	return db
}

// SQLiteDSN is the DSN Courier recommends for SQLite files: WAL journal,
// a busy timeout and transactions that take the write lock at BEGIN, so
// that concurrent writers wait instead of failing.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// SQLite opens a new SQLite file in a temporary directory.
func SQLite(t testing.TB) *DB {
	t.Helper()
	return migrate(t, open(t, sqldb.SQLite, "sqlite", SQLiteDSN(filepath.Join(t.TempDir(), "courier.db"))))
}

func uniqueName() string {
	return fmt.Sprintf("t_%d_%06x", time.Now().Unix()%100000, rand.Uint32()&0xffffff)
}

// Postgres creates a schema of its own on the server COURIER_POSTGRES_URL
// names and returns a database whose search_path is that schema.
func Postgres(t testing.TB) *DB {
	t.Helper()
	base := envOr(PostgresEnv, PostgresDefault)
	schema := own(t, "pgx", base, "PostgreSQL at "+connurl.Redacted(base), "scripts/services/postgres.sh (or set "+PostgresEnv+")",
		"CREATE SCHEMA %s", "DROP SCHEMA %s CASCADE")
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return migrate(t, open(t, sqldb.Postgres, "pgx", u.String()))
}

// MySQL creates a database of its own on the server COURIER_MYSQL_DSN names.
func MySQL(t testing.TB) *DB {
	t.Helper()
	base := envOr(MySQLEnv, MySQLDefault)
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("%s: %v", MySQLEnv, err)
	}
	cfg.DBName = ""
	cfg.DBName = own(t, "mysql", cfg.FormatDSN(), "MySQL/MariaDB at "+cfg.Addr, "scripts/services/mariadb.sh (or set "+MySQLEnv+")",
		"CREATE DATABASE %s", "DROP DATABASE %s")
	return migrate(t, open(t, sqldb.MySQL, "mysql", cfg.FormatDSN()))
}

// own creates, through the server adminDSN reaches, a schema or database
// of the test's own with the statement create (a format of its name), and
// drops it with drop when the test ends. If the server is unreachable, the
// test is skipped (failed under CI), naming the server and how to start it.
func own(t testing.TB, driver, adminDSN, server, how, create, drop string) string {
	t.Helper()
	admin, err := sql.Open(driver, adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		unavailable(t, server, how, err)
	}
	name := uniqueName()
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(create, name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open(driver, adminDSN); err == nil {
			db.Exec(fmt.Sprintf(drop, name))
			db.Close()
		}
	})
	return name
}

// open opens dsn, to be closed when the test ends (before own's drop).
func open(t testing.TB, d *sqldb.Dialect, driver, dsn string) *DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &DB{DB: db, Dialect: d, DSN: dsn, Driver: driver}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
