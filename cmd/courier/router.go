package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/router"
	"github.com/courier-go/courier/internal/tlsconfig"
)

// routerCommand runs the discovery-aware reverse proxy (server-side
// discovery).
type routerCommand struct {
	// ready, when set, receives the listening address (for tests).
	ready chan<- string
}

func (c *routerCommand) run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: courier router -routes ROUTES [flags]

A reverse proxy routing requests by host or path prefix to the instances of
a service resolved in the registry, for REST and gRPC clients (HTTP/1.1,
HTTP/2 over TLS with -tls-cert/-tls-key, and HTTP/2 cleartext).

It sends traffic to whatever the registry lists: give registrations to
authenticated writers only (courier registry -users, etcd users), open the
registry as a read-only user, and with https routes and -upstream-ca have
the router accept only instances whose certificate your CA signed for
their address. -tls-client-ca, -auth-token-file and -auth-basic-file make
the router itself require client certificates, a token or a password.

-routes is a comma-separated list of MATCH=SERVICE[:PROTOCOL][:strip]:
  MATCH     /path/prefix/, host, or host/path/prefix/
  PROTOCOL  http (default, REST), h2c (gRPC without TLS), https (TLS upstream)
  strip     remove the prefix before proxying
e.g. -routes '/orders/=orders,/orders.v1.Orders/=orders-grpc:h2c,kitchen.example=kitchen'

`)
		fs.PrintDefaults()
	}
	var df discoveryFlags
	df.register(fs)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on")
	routesFlag := fs.String("routes", "", "routes (see above)")
	bal := fs.String("balancer", "least-outstanding", "balancer: round-robin, random or least-outstanding")
	ejectAfter := fs.Int("eject-after", 1, "consecutive connection failures that eject an instance")
	ejectFor := fs.Duration("eject-for", 10*time.Second, "how long an ejected instance gets no traffic")
	var ef endpointFlags
	ef.register(fs)
	upCA := fs.String("upstream-ca", "", "CA file (PEM) that verifies the instances of https routes (default: the system's roots)")
	upCert := fs.String("upstream-cert", "", "client certificate file (PEM) the router presents to the instances of https routes")
	upKey := fs.String("upstream-key", "", "key file (PEM) of -upstream-cert")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := df.logger(stderr)
	if err != nil {
		return err
	}
	routes, err := parseRoutes(*routesFlag)
	if err != nil {
		return err
	}
	ropts := []router.Option{router.WithBalancer(*bal), router.WithEjection(*ejectAfter, *ejectFor), router.WithLogger(log)}
	if *upCA != "" || *upCert != "" || *upKey != "" {
		tc, err := tlsconfig.Client(*upCA, *upCert, *upKey, "")
		if err != nil {
			return fmt.Errorf("router: -upstream-*: %w", err)
		}
		ropts = append(ropts, router.WithUpstreamTLS(tc))
	}
	if err := ef.check(); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	reg, err := df.open(ctx, df.registry, log)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	defer reg.Close()
	res, err := discovery.NewResolver(reg, discovery.WithLogger(log))
	if err != nil {
		return err
	}
	defer res.Close()
	rt, err := router.New(res, routes, ropts...)
	if err != nil {
		return err
	}
	h, err := ef.guard(rt)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	// A router whose registry cannot be reached would answer every request
	// with an error; it had better not start.
	if err := reg.Ping(ctx); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	l, err := ef.listen(*listen)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	srv := router.NewServer(*listen, h)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	log.Info("router: serving", "address", l.Addr().String(), "routes", len(routes), "tls", ef.tls(), "registry", reg.String())
	return serve(ctx, "router", srv, l, c.ready, 10*time.Second)
}

// parseRoutes parses the -routes syntax.
func parseRoutes(s string) ([]router.Route, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("router: -routes is required")
	}
	var routes []router.Route
	for _, item := range strings.Split(s, ",") {
		match, target, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || match == "" || target == "" {
			return nil, fmt.Errorf("router: route %q: want MATCH=SERVICE[:PROTOCOL][:strip]", item)
		}
		var r router.Route
		if strings.HasPrefix(match, "/") {
			r.Prefix = match
		} else if host, path, ok := strings.Cut(match, "/"); ok {
			r.Host, r.Prefix = host, "/"+path
		} else {
			r.Host = match
		}
		parts := strings.Split(target, ":")
		r.Service = parts[0]
		if err := discovery.ValidateServiceName(r.Service); err != nil {
			return nil, fmt.Errorf("router: route %q: %w", item, err)
		}
		for _, p := range parts[1:] {
			switch p {
			case "strip":
				r.StripPrefix = true
			case router.ProtocolHTTP, router.ProtocolH2C, router.ProtocolHTTPS:
				r.Protocol = p
			default:
				return nil, fmt.Errorf("router: route %q: unknown option %q", item, p)
			}
		}
		routes = append(routes, r)
	}
	return routes, nil
}
