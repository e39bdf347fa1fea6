// Package connurl holds what the packages that open a connection from a
// URL (brokerurl, registryurl, sqlurl, the adapters) share: checking the
// URL's parameters against the known ones, reading TLS files named by
// parameters, and keeping its secrets out of error messages, logs and
// metrics (Redact, Redacted: the one redaction every package uses).
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
