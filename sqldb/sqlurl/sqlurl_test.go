package sqlurl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/sqldb"
)

func TestParse(t *testing.T) {
	cases := []struct {
		url     string
		dialect *sqldb.Dialect
		dsn     string
	}{
		{"postgres://u:p@h:5432/db?sslmode=disable", sqldb.Postgres, "postgres://u:p@h:5432/db?sslmode=disable"},
		{"mysql://u:p@h:3306/db?parseTime=true", sqldb.MySQL, "u:p@tcp(h:3306)/db?parseTime=true"},
		{"sqlite:///var/lib/app.db", sqldb.SQLite, "file:/var/lib/app.db?"},
		{"sqlite://data/app.db", sqldb.SQLite, "file:data/app.db?"},
	}
	for _, c := range cases {
		got, err := Parse(c.url)
		if err != nil || got.Dialect != c.dialect || !strings.HasPrefix(got.DSN, c.dsn) {
			t.Errorf("Parse(%q) = %+v, %v", c.url, got, err)
		}
	}
	for _, bad := range []string{"oracle://x", "sqlite://", "::", "sqlite:///var/lib/app.db?shardz=4", "sqlite:///app.db?_pragma=foreign_keys(1)"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	_, err := Parse("redis://user:secret@h")
	if !errors.Is(err, ErrUnsupported) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v must wrap ErrUnsupported and hide the password", err)
	}
}

// TestPasswordNeverShows checks that no error of Parse, Open or a Ping of
// the opened database shows the password: a malformed PostgreSQL URL,
// one percent-encoded otherwise than net/url would, unencoded reserved
// characters, a password in the query, a MySQL URL, an unknown scheme.
func TestPasswordNeverShows(t *testing.T) {
	for _, raw := range []string{
		"postgres://courier:s3cret@h:bad/db",
		"postgres://courier:s3cr%65t@127.0.0.1:1/db?sslmode=disable",
		"postgres://courier:s3cret@127.0.0.1:1/db?sslmode=bogus",
		"postgresql://courier:s3/cret@127.0.0.1:1/db?sslmode=disable",
		"postgres://127.0.0.1:1/db?user=courier&password=s3cret&sslmode=disable",
		"mysql://courier:s3cret@[::1/db",
		"mysql://courier:s3cr%65t@127.0.0.1:1/db",
		"sqlite://courier:s3cret@/tmp/x.db?shardz=1",
		"sqlite://courier:s3cret@/tmp/x.db",
		"redis://courier:s3cr%65t@h",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		db, _, err := Open(raw)
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
		}
		cancel()
		if err == nil {
			t.Errorf("Open(%q) and Ping succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "s3/cret") {
			t.Errorf("Open(%q): %v", raw, err)
		}
	}
}
