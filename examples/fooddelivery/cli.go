package fooddelivery

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// usage is the help text before the flags.
const usage = `usage: fooddelivery [flags]    (the same as: courier demo [flags])

Runs the food-delivery example in one of three ways:

  without -service or -scenario
      every service in this process on embedded defaults (SQLite files,
      a NATS server, an in-memory registry), then the traced scenario
  -service NAMES -db URL -broker URL -registry URL
      these services until interrupted; with -external-relay, courier relay
      processes publish their outboxes
  -scenario -db URL -broker URL -registry URL
      the scenario as a client of services running in other processes;
      with -order-url it reaches the order service through a reverse proxy
      such as courier router
  -write-contracts DIR
      write every service's API documents (AsyncAPI, OpenAPI, .proto) into
      DIR, to compare them with the released ones:
      courier api check -baseline examples/fooddelivery/api DIR

Services:%s

One process per service, with courier relay and courier router, step by
step: go doc github.com/courier-go/courier/examples/fooddelivery

flags:
`

// UsageError is an error in how Main was called: a flag that is not
// defined or does not parse, or stray arguments. A command exits with
// status 2 for it, as the flag package does.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usage reports true: the caller, not the system, made the mistake.
func (e UsageError) Usage() bool { return true }

// Main runs the example from command-line arguments; `courier demo` and
// the fooddelivery command both call it.
//
// Without -service or -scenario it runs the single-process demo. With
// -service it runs the named services (comma-separated, or "all") on the
// databases, broker and registry that -db, -broker and -registry name,
// until ctx ends. With -scenario it runs the scripted scenario as a client
// of services running elsewhere and checks the outcome; -order-url sends
// its REST calls to a reverse proxy (`courier router`) instead of
// resolving the order service itself.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("fooddelivery", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		var list strings.Builder
		line := 0
		for i, name := range Services {
			if line+len(name) > 72 {
				list.WriteString("\n ")
				line = 0
			}
			list.WriteString(" " + name)
			if i < len(Services)-1 {
				list.WriteString(",")
			}
			line += len(name) + 2
		}
		fmt.Fprintf(stderr, usage, list.String())
		fs.PrintDefaults()
	}
	var (
		dir        = fs.String("dir", "", "single process: directory for the SQLite files and the NATS store (default: a temporary one)")
		bulk       = fs.Int("bulk", 12, "orders placed at once in the last phase")
		verbose    = fs.Bool("v", false, "trace the last phase's messages too")
		kill       = fs.Bool("kill-kitchen", false, "single process: kill the kitchen service mid-scenario and restart it")
		services   = fs.String("service", "", "run these services (comma-separated, or all) until interrupted; needs -db, -broker and -registry")
		scenario   = fs.Bool("scenario", false, "run the scenario against services running in other processes; needs -db, -broker and -registry")
		dbURL      = fs.String("db", "", "database server: postgres://... or mysql://... (a schema or database per service: fd_order, fd_kitchen, ...; a schema_prefix=P parameter replaces fd_) or sqlite:///dir (a file per service)")
		brokerURL  = fs.String("broker", "", "broker: nats://host:port or another broker URL")
		registry   = fs.String("registry", "", "registry: etcd://[user:pass@]host:port[,host:port...], or memory:// for services all in this process")
		extRelay   = fs.Bool("external-relay", false, "with -service: leave the outboxes to courier relay processes, one per service database, instead of an in-process relay per service")
		orderURL   = fs.String("order-url", "", "with -scenario: reach the order service's REST API at this `URL` (http://host:port, e.g. a courier router routing /v1/orders to order-service) instead of resolving it in the registry")
		logLevel   = fs.String("log-level", "", "log the services' own logs at this level (debug, info, warn, error) to stderr")
		runTimeout = fs.Duration("timeout", 2*time.Minute, "give up a scenario after this long")
		connect    = fs.Duration("connect-timeout", DefaultConnectTimeout, "with -service or -scenario: how long the database, the broker and the registry may take to answer when connecting, and the registry each request")
		contracts  = fs.String("write-contracts", "", "write every service's API documents into this `directory` and exit")
		traceTo    = fs.String("trace", "", "export the OpenTelemetry spans of every service (each its own service.name) and of the scenario's client to `where`: stdout or file:PATH (JSON), or otlp://host:port (OTLP over gRPC without TLS, e.g. an OpenTelemetry Collector on :4317)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError{err}
	}
	if fs.NArg() > 0 {
		return UsageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	var target traceTarget
	if *traceTo != "" {
		if *contracts != "" {
			return UsageError{errors.New("-trace does not go with -write-contracts")}
		}
		if target, err = parseTraceTarget(*traceTo); err != nil {
			return UsageError{err}
		}
	}
	if *contracts != "" {
		if *services != "" || *scenario {
			return errors.New("-write-contracts goes alone")
		}
		return WriteContracts(*contracts)
	}
	if *bulk < 1 || *bulk > 1000 {
		return fmt.Errorf("-bulk must be between 1 and 1000, got %d", *bulk)
	}
	if *orderURL != "" {
		if !*scenario {
			return errors.New("-order-url goes with -scenario")
		}
		if _, err := orderBaseURL(*orderURL); err != nil {
			return err
		}
	}
	var logger *slog.Logger
	if *logLevel != "" {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
			return fmt.Errorf("-log-level: %w", err)
		}
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	}
	var tracerProvider func(service string) trace.TracerProvider
	if *traceTo != "" {
		export, xerr := newTraceExport(ctx, target, stdout)
		if xerr != nil {
			return xerr
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			err = errors.Join(err, export.shutdown(ctx))
		}()
		tracerProvider = export.provider
	}
	distributed := *services != "" || *scenario
	if !distributed {
		ctx, cancel := context.WithTimeout(ctx, *runTimeout)
		defer cancel()
		_, err := RunDemo(ctx, DemoConfig{Dir: *dir, Out: stdout, Logger: logger, Bulk: *bulk, Verbose: *verbose, KillKitchen: *kill,
			TracerProvider: tracerProvider})
		return err
	}
	if *dbURL == "" || *brokerURL == "" || *registry == "" {
		return errors.New("-service and -scenario need -db, -broker and -registry")
	}
	if *services != "" && *scenario {
		return errors.New("-service and -scenario are exclusive: run the services and the scenario in separate processes")
	}
	if *connect <= 0 {
		return fmt.Errorf("-connect-timeout must be positive, got %v", *connect)
	}
	env, closeEnv, err := URLEnv(ctx, *dbURL, *brokerURL, *registry, WithConnectTimeout(*connect))
	if err != nil {
		return err
	}
	defer closeEnv()
	env.Trace, env.Logger, env.ExternalRelay, env.TracerProvider = NewTrace(stdout), logger, *extRelay, tracerProvider
	if *scenario {
		ctx, cancel := context.WithTimeout(ctx, *runTimeout)
		defer cancel()
		rep, err := (&Scenario{Env: env, Bulk: *bulk, OrderURL: *orderURL}).Run(ctx)
		if rep != nil {
			rep.Print(stdout) // says which values disagree, if any
		}
		return err
	}
	var names []string
	if *services != "all" {
		names = strings.Split(*services, ",")
	}
	sys, err := Start(ctx, env, names...)
	if err != nil {
		return err
	}
	env.Trace.Printf("demo", "running %s; interrupt to stop", *services)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return sys.Stop(stopCtx)
}
