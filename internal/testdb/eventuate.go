package testdb

import (
	"context"
	"database/sql"
	"embed"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/courier-go/courier/sqldb"
)

// eventuateDDL holds Eventuate Tram's schema files for its outbox table
// (eventuate/README.md says where each comes from).
//
//go:embed eventuate/*.sql
var eventuateDDL embed.FS

// Eventuate creates, on db's server, a schema (a database, on MySQL) of
// the test's own with Eventuate Tram's outbox table, message, made by
// Eventuate's own schema files for application ids or, with dbIDs, for
// database ids, and returns its name, to be used where Eventuate writes
// "eventuate". It is dropped when the test ends.
func Eventuate(t testing.TB, db *DB, dbIDs bool) string {
	t.Helper()
	if db.Dialect != sqldb.Postgres && db.Dialect != sqldb.MySQL {
		t.Fatalf("Eventuate's outbox table is for PostgreSQL and MySQL/MariaDB, not %s", db.Dialect)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Eventuate applies the database-id file after the first one.
	files := []string{"eventuate/" + db.Dialect.Name() + ".sql"}
	if dbIDs {
		files = append(files, "eventuate/"+db.Dialect.Name()+"-db-id.sql")
	}
	var ddl string
	for _, f := range files {
		b, err := eventuateDDL.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ddl += string(b) + ";\n"
	}
	schema := "ev" + uniqueName()[1:]
	run := db.DB
	if db.Dialect == sqldb.Postgres {
		if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE") })
		ddl = strings.ReplaceAll(ddl, "eventuate.", schema+".")
	} else {
		if _, err := db.ExecContext(ctx, "CREATE DATABASE "+schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Exec("DROP DATABASE " + schema) })
		cfg, err := mysql.ParseDSN(db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DBName = schema
		if run, err = sql.Open("mysql", cfg.FormatDSN()); err != nil {
			t.Fatal(err)
		}
		defer run.Close()
		ddl = strings.ReplaceAll(ddl, "${EVENTUATE_OUTBOX_SUFFIX}", "")
	}
	for _, stmt := range strings.Split(ddl, ";\n") {
		if stmt = strings.TrimSpace(stmt); stmt != "" {
			if _, err := run.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("Eventuate's schema: %s: %v", stmt, err)
			}
		}
	}
	return schema
}
