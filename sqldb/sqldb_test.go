package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/sqldb"
)

func TestMigrateIsIdempotentAndCheckSchemaPasses(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d) // migrated once already
			ctx := context.Background()
			if err := sqldb.Migrate(ctx, db.DB, d); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if err := sqldb.CheckSchema(ctx, db.DB, d); err != nil {
				t.Fatal(err)
			}
			migrations, err := d.Migrations()
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+sqldb.MigrationsTable).Scan(&n); err != nil || n != len(migrations) {
				t.Fatalf("recorded migrations: %d of %d, %v", n, len(migrations), err)
			}
		})
	}
}

// Each dialect numbers its migrations on its own: versions start at 1 and
// have no gaps, whatever the other dialects have.
func TestMigrationVersions(t *testing.T) {
	for _, d := range testdb.Dialects {
		migrations, err := d.Migrations()
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range migrations {
			if m.Version != i+1 {
				t.Errorf("%s: migration %s has version %d, want %d", d, m.Name, m.Version, i+1)
			}
		}
	}
}

// PostgreSQL's version 2 drops the LISTEN/NOTIFY trigger version 1 created
// (pgnotify.Install creates it on demand), on new schemas and on schemas
// that were at version 1.
func TestPostgresMigrationDropsTheNotifyTrigger(t *testing.T) {
	db := testdb.Postgres(t)
	ctx := context.Background()
	triggers := func() int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'message'::regclass AND NOT tgisinternal").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := triggers(); n != 0 {
		t.Fatalf("a new schema has %d triggers on message", n)
	}
	migrations, err := sqldb.Postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// Back to version 1.
	if _, err := db.ExecContext(ctx, migrations[0].SQL); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM "+sqldb.MigrationsTable+" WHERE version > 1"); err != nil {
		t.Fatal(err)
	}
	if n := triggers(); n != 1 {
		t.Fatalf("version 1 has %d triggers on message, want its notify trigger", n)
	}
	if err := sqldb.Migrate(ctx, db.DB, sqldb.Postgres); err != nil {
		t.Fatal(err)
	}
	if n := triggers(); n != 0 {
		t.Fatalf("after the upgrade from version 1, %d triggers on message", n)
	}
	var fns int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_proc WHERE proname = 'courier_outbox_notify' AND pronamespace = current_schema()::regnamespace").Scan(&fns); err != nil || fns != 0 {
		t.Fatalf("after the upgrade from version 1, %d notify functions, %v", fns, err)
	}
}

func TestCheckSchemaSaysHowToCreateIt(t *testing.T) {
	db, err := sql.Open("sqlite", testdb.SQLiteDSN(filepath.Join(t.TempDir(), "empty.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = sqldb.CheckSchema(context.Background(), db, sqldb.SQLite)
	if !errors.Is(err, sqldb.ErrSchemaMissing) || !strings.Contains(err.Error(), "sqldb.Migrate(ctx, db, sqldb.SQLite)") {
		t.Fatalf("CheckSchema on an empty database = %v", err)
	}
}

func TestRebindAndInsertIgnore(t *testing.T) {
	if got := sqldb.Postgres.Rebind("SELECT ? , ?"); got != "SELECT $1 , $2" {
		t.Fatalf("Rebind = %q", got)
	}
	if got := sqldb.MySQL.Rebind("SELECT ?"); got != "SELECT ?" {
		t.Fatalf("Rebind = %q", got)
	}
	want := map[*sqldb.Dialect]string{
		sqldb.Postgres: "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT DO NOTHING",
		sqldb.MySQL:    "INSERT IGNORE INTO t (a, b) VALUES (?, ?)",
		sqldb.SQLite:   "INSERT OR IGNORE INTO t (a, b) VALUES (?, ?)",
	}
	for d, w := range want {
		if got := d.InsertIgnore("t", "a", "b"); got != w {
			t.Errorf("%s: %q, want %q", d, got, w)
		}
	}
	if _, err := sqldb.ByName("oracle"); err == nil {
		t.Fatal("ByName accepted an unknown dialect")
	}
	for _, n := range []string{"pgx", "mariadb", "sqlite3"} {
		if _, err := sqldb.ByName(n); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNowMillisUsesTheDatabaseClock(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			var ms int64
			if err := db.QueryRow("SELECT " + d.NowMillis()).Scan(&ms); err != nil {
				t.Fatal(err)
			}
			if ms < 1.7e12 || ms > 4e12 {
				t.Fatalf("NowMillis = %d, not a Unix time in milliseconds", ms)
			}
		})
	}
}
