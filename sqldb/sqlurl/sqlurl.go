// Package sqlurl opens a Courier database from a URL, for commands and
// configuration files that name databases by URL:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   (also postgresql://)
//	mysql://user:pass@host:3306/db                      (MySQL and MariaDB)
//	sqlite:///var/lib/app/app.db                        (sqlite://relative/path too)
//
// Importing it links all three drivers; programs that use one database can
// open it with database/sql directly.
package sqlurl

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"

	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/sqldb"
)

// Target is a parsed database URL.
type Target struct {
	Dialect *sqldb.Dialect
	// Driver is the database/sql driver name.
	Driver string
	// DSN is the driver's data source name.
	DSN string
}

// ErrUnsupported means the URL's scheme names no supported database.
var ErrUnsupported = errors.New("sqlurl: unsupported database URL")

// Parse turns a database URL into a Target.
func Parse(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("sqlurl: %w", connurl.Redact(err, raw))
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		return Target{Dialect: sqldb.Postgres, Driver: "pgx", DSN: raw}, nil
	case "mysql", "mariadb":
		cfg := mysql.NewConfig()
		cfg.Net = "tcp"
		cfg.Addr = u.Host
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
		for k, v := range u.Query() {
			if cfg.Params == nil {
				cfg.Params = map[string]string{}
			}
			cfg.Params[k] = v[0]
		}
		return Target{Dialect: sqldb.MySQL, Driver: "mysql", DSN: cfg.FormatDSN()}, nil
	case "sqlite", "sqlite3", "file":
		// PostgreSQL and MySQL parameters go to their drivers, and the
		// servers refuse unknown ones when they connect; SQLite takes
		// none here, so one would be silently ignored.
		if _, err := connurl.Query(u); err != nil {
			return Target{}, fmt.Errorf("sqlurl: %q: %w", connurl.Redacted(raw), err)
		}
		if u.User != nil {
			return Target{}, fmt.Errorf("sqlurl: %q: a SQLite file takes no user or password", connurl.Redacted(raw))
		}
		path := u.Host + u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if path == "" {
			return Target{}, fmt.Errorf("%w: %q names no file", ErrUnsupported, connurl.Redacted(raw))
		}
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		return Target{Dialect: sqldb.SQLite, Driver: "sqlite", DSN: dsn}, nil
	}
	return Target{}, fmt.Errorf("%w: %q (use postgres://, mysql:// or sqlite://)", ErrUnsupported, connurl.Redacted(raw))
}

// Open parses raw and opens the database. It does not connect: use
// PingContext to check the server is reachable. Its errors, as Parse's,
// never show the URL's password.
func Open(raw string) (*sql.DB, Target, error) {
	t, err := Parse(raw)
	if err != nil {
		return nil, t, err
	}
	db, err := sql.Open(t.Driver, t.DSN)
	if err != nil {
		return nil, t, fmt.Errorf("sqlurl: %w", err)
	}
	return db, t, nil
}
