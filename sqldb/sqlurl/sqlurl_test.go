package sqlurl

import (
	"errors"
	"strings"
	"testing"

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
