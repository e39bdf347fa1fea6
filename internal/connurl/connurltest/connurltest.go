// Package connurltest checks, for the tests of the packages that open
// connections from URLs, that errors keep the URLs' secrets hidden.
package connurltest

import (
	"net/url"
	"strings"
	"testing"

	"github.com/courier-go/courier/internal/connurl"
)

// CheckHidden fails the test if err shows the password of raw, or the
// user name given without a password (a NATS token). A secret of fewer
// than four bytes, or one that the mask contains, cannot be told from
// other text; a password that repeats the user name shows with the name:
// neither is checked.
func CheckHidden(t testing.TB, raw string, err error) {
	t.Helper()
	u, perr := url.Parse(raw)
	if err == nil || perr != nil || u.User == nil {
		return
	}
	secret, ok := u.User.Password()
	if !ok {
		secret = u.User.Username()
	}
	if len(secret) >= 4 && (!ok || secret != u.User.Username()) && !strings.Contains(connurl.Mask, secret) &&
		strings.Contains(err.Error(), secret) {
		t.Fatalf("%q: error %q shows %q", raw, err, secret)
	}
}
