package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/router"
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
	certFile := fs.String("tls-cert", "", "TLS certificate file (with -tls-key: serve TLS)")
	keyFile := fs.String("tls-key", "", "TLS key file")
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
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("router: give both -tls-cert and -tls-key, or neither")
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
	rt, err := router.New(res, routes, router.WithBalancer(*bal), router.WithEjection(*ejectAfter, *ejectFor), router.WithLogger(log))
	if err != nil {
		return err
	}
	// A router whose registry cannot be reached would answer every request
	// with an error; it had better not start.
	if err := reg.Ping(ctx); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	srv := router.NewServer(*listen, rt)
	errc := make(chan error, 1)
	go func() {
		if *certFile != "" {
			errc <- srv.ServeTLS(l, *certFile, *keyFile)
		} else {
			errc <- srv.Serve(l)
		}
	}()
	log.Info("router: serving", "address", l.Addr().String(), "routes", len(routes), "tls", *certFile != "", "registry", reg.String())
	if c.ready != nil {
		c.ready <- l.Addr().String()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("router: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("router: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("router: %w", err)
	}
	return nil
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
