package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/courier-go/courier/internal/console"
	"github.com/courier-go/courier/internal/tlsconfig"
)

// consoleCommand is `courier console`.
type consoleCommand struct {
	// ready, when set, receives the listening address (for tests).
	ready chan<- string
}

const consoleUsage = `usage: courier console [flags]

Serves the operations console: a page that shows, refreshed every
-interval, the services registered in -registry and their instances with
their health; each process's circuit breakers with their state and
rejections; the outbox relays, which one leads, their lag and throughput;
the consumers' rates; and the dead letters of each subscriber id with the
command that replays them. /api/state serves the same as JSON.

It reads the registry, and scrapes the Prometheus endpoints that the
instances' registrations name (metadata "metrics": a URL, or a path on
the instance's address) and those -metrics names, such as courier relay's:
  -metrics 'orders-relay=http://10.0.0.7:9464/metrics,kitchen-relay=https://10.0.0.8:9464/metrics'
-registry '' reads no registry. A dns:// registry cannot list its
services: name them with -services.

The console serves on -listen (127.0.0.1 by default) over TLS with
-tls-cert and -tls-key, to clients with a certificate -tls-client-ca
signed, with a bearer token (-auth-token-file) or a password
(-auth-basic-file) when asked, as courier relay and courier router do.
It scrapes over TLS with -scrape-ca (and a client certificate with
-scrape-cert and -scrape-key), and with the token in -scrape-token-file;
it sends them to every endpoint the registry names, so give
registrations to trusted writers only.

flags:
`

func (c *consoleCommand) run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, consoleUsage); fs.PrintDefaults() }
	var df discoveryFlags
	df.register(fs)
	var ef endpointFlags
	ef.register(fs)
	listen := fs.String("listen", "127.0.0.1:9470", "address to serve the console on")
	services := fs.String("services", "", "comma-separated services to show (default: every service the registry lists)")
	metricsFlag := fs.String("metrics", "", "comma-separated NAME=URL metrics endpoints to scrape besides the registered ones")
	interval := fs.Duration("interval", console.DefaultInterval, "how often to read the registry and scrape the endpoints")
	brokerURL := fs.String("broker", "", "the broker URL the replay commands show (its password hidden)")
	scrapeCA := fs.String("scrape-ca", "", "CA file (PEM) that verifies the metrics endpoints' certificates (default: the system's roots)")
	scrapeCert := fs.String("scrape-cert", "", "client certificate file (PEM) the console presents to the metrics endpoints")
	scrapeKey := fs.String("scrape-key", "", "key file (PEM) of -scrape-cert")
	scrapeToken := fs.String("scrape-token-file", "", "file holding a token the console sends to the metrics endpoints as 'Authorization: Bearer <token>'")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := df.logger(stderr)
	if err != nil {
		return err
	}
	if *interval < 100*time.Millisecond {
		return usageError{fmt.Errorf("console: -interval %v: want 100ms or more", *interval)}
	}
	targets, err := parseTargets(*metricsFlag)
	if err != nil {
		return usageError{err}
	}
	var names []string
	if *services != "" {
		names = strings.Split(*services, ",")
	}
	if err := ef.check(); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	client, auth, err := scrapeClient(*interval, *scrapeCA, *scrapeCert, *scrapeKey, *scrapeToken)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	cfg := console.Config{Services: names, Targets: targets, Client: client, Auth: auth, Interval: *interval,
		ReplayBroker: *brokerURL, Logger: log}
	if err := cfg.Check(); err != nil {
		return usageError{err}
	}
	if df.registry != "" {
		reg, err := df.open(ctx, df.registry, log)
		if err != nil {
			return fmt.Errorf("console: %w", err)
		}
		defer reg.Close()
		if len(names) == 0 {
			if _, err := reg.Services(ctx); errors.Is(err, errors.ErrUnsupported) {
				return usageError{fmt.Errorf("console: %w: name the services with -services", err)}
			}
		}
		// A console that cannot read its registry would show nothing;
		// it had better not start.
		if err := reg.Ping(ctx); err != nil {
			return fmt.Errorf("console: %w", err)
		}
		cfg.Registry, cfg.RegistryName = reg, reg.String()
	}
	con, err := console.New(cfg)
	if err != nil {
		return usageError{err}
	}
	h, err := ef.guard(con.Handler())
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	l, err := ef.listen(*listen)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	done := make(chan struct{})
	go func() {
		defer close(done)
		con.Run(runCtx) //nolint:errcheck // returns nil when runCtx ends
	}()
	defer func() { stopRun(); <-done }()
	log.Info("console: serving", "address", l.Addr().String(), "tls", ef.tls(), "registry", cfg.RegistryName, "endpoints", len(targets))
	return serve(ctx, "console", srv, l, c.ready, 5*time.Second)
}

// parseTargets parses -metrics: NAME=URL,...
func parseTargets(s string) ([]console.Target, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var targets []console.Target
	for _, item := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("console: -metrics %q: want NAME=URL", item)
		}
		targets = append(targets, console.Target{Name: name, URL: u})
	}
	return targets, nil
}

// scrapeClient returns the client that scrapes the metrics endpoints,
// each request bounded by interval, over TLS as the flags ask, and the
// function that adds the token to each request, if any.
func scrapeClient(interval time.Duration, ca, cert, key, tokenFile string) (*http.Client, func(*http.Request), error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the endpoints are the system's own
	if ca != "" || cert != "" || key != "" {
		tc, err := tlsconfig.Client(ca, cert, key, "")
		if err != nil {
			return nil, nil, fmt.Errorf("-scrape-*: %w", err)
		}
		tr.TLSClientConfig = tc
	}
	client := &http.Client{Timeout: interval, Transport: tr,
		// A redirect would take the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if tokenFile == "" {
		return client, nil, nil
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, nil, fmt.Errorf("-scrape-token-file: %w", err)
	}
	if token = bytes.TrimSpace(token); len(token) == 0 {
		return nil, nil, fmt.Errorf("-scrape-token-file %s is empty", tokenFile)
	}
	header := "Bearer " + string(token)
	return client, func(r *http.Request) { r.Header.Set("Authorization", header) }, nil
}
