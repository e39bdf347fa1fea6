// Package brokerurl opens a broker from a URL, for commands and
// configuration that pick the broker by name:
//
//	memory://                      the in-process broker
//
// Importing it links every adapter it knows; programs that use one broker
// can call that adapter's constructor directly.
package brokerurl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
)

// ErrUnsupported means the URL's scheme names no known broker.
var ErrUnsupported = errors.New("brokerurl: unsupported broker URL")

// Open opens the broker raw names. Connection failures are reported within
// ctx's deadline.
func Open(ctx context.Context, raw string) (broker.Broker, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("brokerurl: %w", err)
	}
	switch u.Scheme {
	case "memory":
		var opts []memory.Option
		if s := u.Query().Get("shards"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("brokerurl: shards=%q: %w", s, err)
			}
			opts = append(opts, memory.WithShards(n))
		}
		return memory.New(opts...)
	}
	return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnsupported, u.Scheme, Schemes)
}

// Schemes lists the URL schemes Open understands.
const Schemes = "memory://"
