package sqldb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string // file name, e.g. 0001_courier.sql
	SQL     string
}

// Migrations returns the dialect's migrations in version order. They are
// the files under migrations/<dialect>/ in this package, for users who
// apply schema changes with their own tools.
func (d *Dialect) Migrations() ([]Migration, error) {
	dir := path.Join("migrations", d.name)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("sqldb: reading %s migrations: %w", d.name, err)
	}
	var out []Migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("sqldb: migration file %s is not named NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("sqldb: %w", err)
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// MigrationsTable records which migrations Migrate applied.
const MigrationsTable = "courier_schema_migrations"

// Migrate brings the Courier schema in db up to date, applying in order the
// migrations not yet recorded in MigrationsTable. It is idempotent; every
// statement is also written to be harmless when repeated.
func Migrate(ctx context.Context, db *sql.DB, d *Dialect) error {
	migrations, err := d.Migrations()
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+MigrationsTable+
		" (version INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)"); err != nil {
		return fmt.Errorf("sqldb: creating %s: %w", MigrationsTable, err)
	}
	applied := map[int]bool{}
	rows, err := db.QueryContext(ctx, "SELECT version FROM "+MigrationsTable)
	if err != nil {
		return fmt.Errorf("sqldb: reading %s: %w", MigrationsTable, err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("sqldb: reading %s: %w", MigrationsTable, err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqldb: reading %s: %w", MigrationsTable, err)
	}
	for _, m := range migrations {
		if applied[m.Version] {
			continue
		}
		for _, stmt := range d.statements(m.SQL) {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("sqldb: %s migration %s: %w", d.name, m.Name, err)
			}
		}
		if _, err := db.ExecContext(ctx, d.InsertIgnore(MigrationsTable, "version", "name", "applied_at"),
			m.Version, m.Name, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("sqldb: recording migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// statements splits a migration into what one Exec may run. PostgreSQL and
// SQLite take a whole script at once (PostgreSQL needs that for function
// bodies); MySQL's driver takes one statement per call unless the DSN sets
// multiStatements, so its scripts are split at line-ending semicolons.
func (d *Dialect) statements(script string) []string {
	if d != MySQL {
		return []string{script}
	}
	var out []string
	for _, part := range strings.Split(script, ";\n") {
		if stmt := strings.TrimSpace(stripComments(part)); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// ErrSchemaMissing means the Courier tables are absent or incomplete.
var ErrSchemaMissing = errors.New("sqldb: courier schema missing")

// CheckSchema reports whether db has the tables Courier uses, with the
// columns it reads. The error says how to create them.
func CheckSchema(ctx context.Context, db Querier, d *Dialect) error {
	checks := []struct{ table, columns string }{
		{"message", "id, destination, headers, payload, published, creation_time, seq"},
		{"received_messages", "consumer_id, message_id, creation_time"},
		{"courier_lease", "name, owner, token, expires_at, beats"},
	}
	for _, c := range checks {
		rows, err := db.QueryContext(ctx, "SELECT "+c.columns+" FROM "+c.table+" WHERE 1 = 0")
		if err == nil {
			err = rows.Close()
		}
		if err != nil {
			return fmt.Errorf("%w: table %s (columns %s) is not usable: %v; create the schema with sqldb.Migrate(ctx, db, sqldb.%s) or apply the files in sqldb/migrations/%s",
				ErrSchemaMissing, c.table, c.columns, err, exported(d), d.name)
		}
	}
	return nil
}

func exported(d *Dialect) string {
	switch d {
	case Postgres:
		return "Postgres"
	case MySQL:
		return "MySQL"
	}
	return "SQLite"
}
