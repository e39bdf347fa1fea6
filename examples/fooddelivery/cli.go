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
)

// Main runs the example from command-line arguments; `courier demo` and
// the fooddelivery command both call it.
//
// Without -service or -scenario it runs the single-process demo. With
// -service it runs the named services (comma-separated, or "all") on the
// databases, broker and registry that -db, -broker and -registry name,
// until ctx ends. With -scenario it runs the scripted scenario as a client
// of services running elsewhere and checks the outcome.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dir        = fs.String("dir", "", "single process: directory for the SQLite files and the NATS store (default: a temporary one)")
		bulk       = fs.Int("bulk", 12, "orders placed at once in the last phase")
		verbose    = fs.Bool("v", false, "trace the last phase's messages too")
		kill       = fs.Bool("kill-kitchen", false, "single process: kill the kitchen service mid-scenario and restart it")
		services   = fs.String("service", "", "run these services (comma-separated, or all) until interrupted; needs -db, -broker and -registry")
		scenario   = fs.Bool("scenario", false, "run the scenario against services running in other processes; needs -db, -broker and -registry")
		dbURL      = fs.String("db", "", "database server: postgres://..., mysql://... (a schema or database per service) or sqlite:///dir")
		brokerURL  = fs.String("broker", "", "broker: nats://host:port or another broker URL")
		registry   = fs.String("registry", "", "registry: etcd://host:port")
		extRelay   = fs.Bool("external-relay", false, "leave the outboxes to `courier relay` processes instead of an in-process relay per service")
		logLevel   = fs.String("log-level", "", "log the services' own logs at this level (debug, info, warn, error) to stderr")
		runTimeout = fs.Duration("timeout", 2*time.Minute, "give up a scenario after this long")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *bulk < 1 || *bulk > 1000 {
		return fmt.Errorf("-bulk must be between 1 and 1000, got %d", *bulk)
	}
	var logger *slog.Logger
	if *logLevel != "" {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
			return fmt.Errorf("-log-level: %w", err)
		}
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	}
	distributed := *services != "" || *scenario
	if !distributed {
		ctx, cancel := context.WithTimeout(ctx, *runTimeout)
		defer cancel()
		_, err := RunDemo(ctx, DemoConfig{Dir: *dir, Out: stdout, Logger: logger, Bulk: *bulk, Verbose: *verbose, KillKitchen: *kill})
		return err
	}
	if *dbURL == "" || *brokerURL == "" || *registry == "" {
		return errors.New("-service and -scenario need -db, -broker and -registry")
	}
	if *services != "" && *scenario {
		return errors.New("-service and -scenario are exclusive: run the services and the scenario in separate processes")
	}
	env, closeEnv, err := URLEnv(ctx, *dbURL, *brokerURL, *registry)
	if err != nil {
		return err
	}
	defer closeEnv()
	env.Trace, env.Logger, env.ExternalRelay = NewTrace(stdout), logger, *extRelay
	if *scenario {
		ctx, cancel := context.WithTimeout(ctx, *runTimeout)
		defer cancel()
		rep, err := (&Scenario{Env: env, Bulk: *bulk}).Run(ctx)
		if err != nil {
			return err
		}
		rep.Print(stdout)
		return nil
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
