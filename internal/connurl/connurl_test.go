package connurl_test

import (
	"errors"
	"net/url"
	"strings"
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
	base := errors.New("dial amqp://u:s3cret@h: refused")
	for _, raw := range []string{"amqp://u:s3cret@h", "amqp://u:s3cret@h:bad:port"} {
		err := connurl.Redact(base, raw)
		if strings.Contains(err.Error(), "s3cret") || !errors.Is(err, base) {
			t.Errorf("Redact(%q) = %v", raw, err)
		}
	}
	if err := connurl.Redact(base, "amqp://h"); err != base {
		t.Errorf("Redact without a password = %v", err)
	}
	if connurl.Redact(nil, "amqp://u:p@h") != nil {
		t.Error("Redact(nil) is not nil")
	}
}
