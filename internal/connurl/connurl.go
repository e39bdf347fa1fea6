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

// redactedError hides secrets in the text of the error it wraps.
type redactedError struct {
	err      error
	replacer *strings.Replacer
}

func (r redactedError) Error() string { return r.replacer.Replace(r.err.Error()) }
func (r redactedError) Unwrap() error { return r.err }

// minBare is the length from which a password is hidden wherever it
// shows; a shorter one is hidden only between ':' and '@', as in a URL or
// a DSN, lest every 'p' of a message become "xxxxx".
const minBare = 4

// Redact returns err with raw's password (or, if raw does not parse, its
// user information) replaced by "xxxxx" in its text; errors.Is and
// errors.As see err unchanged.
func Redact(err error, raw string) error {
	if err == nil {
		return nil
	}
	if r := replacer(raw); r != nil {
		return redactedError{err, r}
	}
	return err
}

// Redacted returns raw as it was written, with its password (or, if raw
// does not parse, its user information) replaced by "xxxxx". Unlike
// url.URL.Redacted it keeps "//" before an empty host, as in dns://.
func Redacted(raw string) string {
	if r := replacer(raw); r != nil {
		return r.Replace(raw)
	}
	return raw
}

// replacer returns what hides raw's secrets, nil if it has none.
func replacer(raw string) *strings.Replacer {
	var secrets []string
	if u, perr := url.Parse(raw); perr == nil {
		if u.User != nil {
			if pass, ok := u.User.Password(); ok && pass != "" {
				secrets = append(secrets, pass)
				if esc := url.UserPassword("", pass).String()[1:]; esc != pass {
					secrets = append(secrets, esc) // percent-encoded, as in the URL
				}
			}
		}
	} else if i, j := strings.Index(raw, "://"), strings.LastIndex(raw, "@"); i >= 0 && j > i+3 {
		secrets = append(secrets, raw[i+3:j])
	}
	var pairs []string
	for _, s := range secrets {
		pairs = append(pairs, ":"+s+"@", ":xxxxx@")
	}
	for _, s := range secrets {
		if len(s) >= minBare {
			pairs = append(pairs, s, "xxxxx")
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	return strings.NewReplacer(pairs...)
}
