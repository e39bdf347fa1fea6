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
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+sqldb.MigrationsTable).Scan(&n); err != nil || n != 1 {
				t.Fatalf("recorded migrations: %d, %v", n, err)
			}
		})
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
