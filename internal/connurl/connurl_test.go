package connurl_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/courier-go/courier/internal/connurl"
)

func TestQuery(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		known []string
		want  string // "" for no error
	}{
		{"x://h?a=1&b=2", []string{"a", "b"}, ""},
		{"x://h", nil, ""},
		{"x://h?shardz=4", []string{"shards"}, `unknown parameter "shardz" (known: shards)`},
		{"x://h?b=1&a=1", nil, `unknown parameter "a" (x:// takes none)`},
		{"x://h?a=1&a=2", []string{"a"}, `parameter "a" given 2 times`},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		_, err = connurl.Query(u, tc.known...)
		if (tc.want == "") != (err == nil) || (err != nil && err.Error() != tc.want) {
			t.Errorf("Query(%q, %q) = %v, want %q", tc.raw, tc.known, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ raw, msg, want string }{
		{"amqp://u:s3cret@h", "dial amqp://u:s3cret@h: refused", "dial amqp://u:xxxxx@h: refused"},
		{"amqp://u:s3cret@h", "auth s3cret refused", "auth xxxxx refused"},
		{"amqp://u:p%40ss@h", "dial amqp://u:p%40ss@h: p@ss refused", "dial amqp://u:xxxxx@h: xxxxx refused"},
		// A short password is hidden in URLs and DSNs only.
		{"amqp://u:p@h", "dial amqp://u:p@h: tcp refused", "dial amqp://u:xxxxx@h: tcp refused"},
		{"mysql://u:p@h/", "u:p@tcp(h:3306)/", "u:xxxxx@tcp(h:3306)/"},
		// A password that repeats the user name is hidden after it only.
		{"postgres://courier:courier@h/courier", "courier: dial postgres://courier:courier@h/courier", "courier: dial postgres://courier:xxxxx@h/courier"},
		// Unparseable: the user information goes.
		{"amqp://u:s3cret@h:bad:port", "amqp://u:s3cret@h:bad:port", "amqp://xxxxx@h:bad:port"},
		{"amqp://h", "dial amqp://h", "dial amqp://h"},
	} {
		base := errors.New(tc.msg)
		err := connurl.Redact(base, tc.raw)
		if err.Error() != tc.want || !errors.Is(err, base) {
			t.Errorf("Redact(%q, %q) = %q, want %q", tc.msg, tc.raw, err, tc.want)
		}
	}
	for raw, want := range map[string]string{
		"dns://?domain=x":             "dns://?domain=x",
		"etcd://u:s3cret@h:2379?a=b":  "etcd://u:xxxxx@h:2379?a=b",
		"amqp://u:p%40ss@h/":          "amqp://u:xxxxx@h/",
		"amqp://u:s3cret@h:bad:port/": "amqp://xxxxx@h:bad:port/",
		// A percent-encoding other than net/url's, a NATS token, a list.
		"nats://u:s3cr%65t@h:4222":             "nats://u:xxxxx@h:4222",
		"nats://t0ken@h:4222":                  "nats://xxxxx@h:4222",
		"nats://a:s3cret@h1,nats://b:0ther@h2": "nats://a:xxxxx@h1,nats://b:xxxxx@h2",
		// A malformed PostgreSQL URL; a password in the query.
		"postgres://u:s3cret@h:bad/db":                       "postgres://xxxxx@h:bad/db",
		"postgres://h/db?user=u&password=s3cret&x=y":         "postgres://h/db?user=u&password=xxxxx&x=y",
		"postgres://u:pa/ss@h/db":                            "postgres://xxxxx@h/db",
		"host=h user=u password='it\\'s a secret' port=5432": "host=h user=u password=xxxxx port=5432",
		// A MySQL DSN.
		"u:s3cret@tcp(h:3306)/db": "u:xxxxx@tcp(h:3306)/db",
	} {
		if got := connurl.Redacted(raw); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", raw, got, want)
		}
	}
	if connurl.Redact(nil, "amqp://u:p@h") != nil {
		t.Error("Redact(nil) is not nil")
	}
}
