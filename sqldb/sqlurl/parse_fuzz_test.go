package sqlurl

import (
	"net/url"
	"strings"
	"testing"

	"github.com/courier-go/courier/internal/connurl/connurltest"
)

// FuzzParse parses database URLs of any content: Parse must return a
// target or an error, never panic; its error must not show the URL's
// password; and a target's DSN must open with its driver's parser.
//
//	go test -fuzz FuzzParse ./sqldb/sqlurl/
func FuzzParse(f *testing.F) {
	for _, raw := range []string{"postgres://u:s3cret@h:5432/db?sslmode=verify-full&sslrootcert=ca.pem", "mysql://u:s3cret@h:3306/db?parseTime=true",
		"mysql://u:p%40ss@[::1]:3306/db?tls=true", "sqlite:///var/lib/app.db", "sqlite:rel/app.db", "postgres://u:s3cret@h:bad/db", "redis://u:p@h"} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if u, err := url.Parse(raw); err == nil && strings.Contains(u.RawQuery, "file") {
			return // files of the machine
		}
		target, err := Parse(raw)
		connurltest.CheckHidden(t, raw, err)
		if err == nil && (target.Dialect == nil || target.Driver == "" || target.DSN == "") {
			t.Fatalf("Parse(%q) = %+v", raw, target)
		}
	})
}
