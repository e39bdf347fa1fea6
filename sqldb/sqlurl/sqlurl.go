// Package sqlurl opens a Courier database from a URL, for commands and
// configuration files that name databases by URL:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   (also postgresql://)
//	mysql://user:pass@host:3306/db                      (MySQL and MariaDB)
//	sqlite:///var/lib/app/app.db                        (sqlite://relative/path too)
//
// PostgreSQL URLs take pgx's parameters, TLS included:
// sslmode=verify-full&sslrootcert=ca.pem verifies the server with a CA of
// your own, sslcert=client.pem&sslkey=client-key.pem presents a client
// certificate. MySQL URLs take go-sql-driver/mysql's (tls=true for the
// system's roots), and Courier's TLS parameters for files:
// cacertfile=ca.pem verifies the server with a CA of your own,
// certfile=client.pem&keyfile=client-key.pem presents a client
// certificate, server_name_indication=H verifies the server's
// certificate for H instead of the host. The relay's binary log stream
// (package outbox/mysqlcdc) uses the same TLS as its queries.
//
// Importing it links all three drivers; programs that use one database can
// open it with database/sql directly.
package sqlurl

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
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
		q := u.Query()
		name, err := mysqlTLS(q, u.Hostname())
		if err != nil {
			return Target{}, fmt.Errorf("sqlurl: %q: %w", connurl.Redacted(raw), err)
		}
		cfg.TLSConfig = name
		for k, v := range q {
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

// mysqlTLS registers with the MySQL driver the TLS configuration that the
// TLS parameters of q ask for, with files, and removes them from q; it
// returns the configuration's name, or "" when they name no file.
func mysqlTLS(q url.Values, host string) (string, error) {
	tq := url.Values{}
	files := false
	for _, p := range connurl.TLSParams {
		if v, ok := q[p]; ok {
			tq[p] = v
			files = files || p != "tls"
		}
	}
	if !files {
		return "", nil // tls=true and the driver's other values go to it
	}
	if len(tq["tls"]) > 0 && tq.Get("tls") != "true" {
		return "", fmt.Errorf("parameter tls=%q does not go with TLS files: leave it out or write tls=true", tq.Get("tls"))
	}
	tc, err := connurl.TLS(tq)
	if err != nil {
		return "", err
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	sum := sha256.Sum256([]byte(tq.Encode() + "\x00" + host))
	name := "courier-" + hex.EncodeToString(sum[:8])
	if err := mysql.RegisterTLSConfig(name, tc); err != nil {
		return "", err
	}
	for p := range tq {
		q.Del(p)
	}
	return name, nil
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
