// Package connurl holds what the packages that open a connection from a
// URL (brokerurl, registryurl) share: checking the URL's parameters against
// the known ones, and keeping its password out of error messages.
package connurl

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Query returns u's query parameters. It refuses, with an error naming the
// parameter and the known ones, a parameter not in known, and a parameter
// given more than once.
func Query(u *url.URL, known ...string) (url.Values, error) {
	q := u.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case !slices.Contains(known, k) && len(known) == 0:
			return nil, fmt.Errorf("unknown parameter %q (%s:// takes none)", k, u.Scheme)
		case !slices.Contains(known, k):
			return nil, fmt.Errorf("unknown parameter %q (known: %s)", k, strings.Join(known, ", "))
		case len(q[k]) > 1:
			return nil, fmt.Errorf("parameter %q given %d times", k, len(q[k]))
		}
	}
	return q, nil
}

// redactedError hides a secret in the text of the error it wraps.
type redactedError struct {
	err    error
	secret string
}

func (r redactedError) Error() string { return strings.ReplaceAll(r.err.Error(), r.secret, "xxxxx") }
func (r redactedError) Unwrap() error { return r.err }

// Redact returns err with raw's password (or, if raw does not parse, its
// user information) replaced by "xxxxx" in its text; errors.Is and
// errors.As see err unchanged.
func Redact(err error, raw string) error {
	secret := ""
	if u, perr := url.Parse(raw); perr == nil {
		if u.User != nil {
			secret, _ = u.User.Password()
		}
	} else if i, j := strings.Index(raw, "://"), strings.LastIndex(raw, "@"); i >= 0 && j > i+3 {
		secret = raw[i+3 : j]
	}
	if err == nil || secret == "" {
		return err
	}
	return redactedError{err, secret}
}
