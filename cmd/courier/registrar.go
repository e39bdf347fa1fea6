package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/registrar"
)

// registrarCommand registers targets on their behalf (third-party
// registration).
type registrarCommand struct{}

func (c *registrarCommand) run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("registrar", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: courier registrar -targets FILE | -dns-services a,b [flags]

Health-checks targets and registers them in the registry on their behalf:
a target whose check fails is marked unhealthy (clients skip it), a target
that leaves the source is deregistered, and every target is deregistered
when the registrar stops.

-targets is a JSON file, read again every -interval:
  [{"service":"orders","id":"orders-1","address":"10.0.0.7:8080","check":"http://10.0.0.7:8080/healthz"}]
(without "check", the check is a TCP connection to the address).
-dns-services reads the services' SRV records (see -dns) instead.

`)
		fs.PrintDefaults()
	}
	var df discoveryFlags
	df.register(fs)
	targets := fs.String("targets", "", "JSON file of targets")
	dnsServices := fs.String("dns-services", "", "comma-separated services whose DNS SRV records are the targets")
	dnsURL := fs.String("dns", "dns://", "DNS source for -dns-services, as a dns:// registry URL")
	interval := fs.Duration("interval", 2*time.Second, "how often to read the source and check targets")
	ttl := fs.Duration("ttl", discovery.DefaultTTL, "lease TTL of the registrations")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := df.logger(stderr)
	if err != nil {
		return err
	}
	var source registrar.Source
	switch {
	case *targets != "" && *dnsServices != "":
		return errors.New("registrar: give -targets or -dns-services, not both")
	case *targets != "":
		source = registrar.FileSource(*targets)
	case *dnsServices != "":
		if !strings.HasPrefix(*dnsURL, "dns:") {
			return fmt.Errorf("registrar: -dns %q is not a dns:// URL", *dnsURL)
		}
		src, err := df.open(ctx, *dnsURL, log)
		if err != nil {
			return fmt.Errorf("registrar: -dns: %w", err)
		}
		defer src.Close()
		if err := src.Ping(ctx); err != nil {
			return fmt.Errorf("registrar: -dns: %w", err)
		}
		source = registrar.RegistrySource(src, strings.Split(*dnsServices, ",")...)
	default:
		return errors.New("registrar: give -targets FILE or -dns-services a,b")
	}
	reg, err := df.open(ctx, df.registry, log)
	if err != nil {
		return fmt.Errorf("registrar: %w", err)
	}
	defer reg.Close()
	r, err := registrar.New(reg, source, registrar.WithInterval(*interval), registrar.WithLogger(log),
		registrar.WithRegisterOptions(discovery.WithTTL(*ttl)))
	if err != nil {
		return err
	}
	if err := reg.Ping(ctx); err != nil {
		return fmt.Errorf("registrar: %w", err)
	}
	log.Info("registrar: running", "registry", reg.String(), "interval", *interval)
	return r.Run(ctx)
}
