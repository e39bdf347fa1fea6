package fooddelivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/router"
)

// DemoConfig configures RunDemo.
type DemoConfig struct {
	// Dir holds the SQLite files and the NATS store; a temporary
	// directory, removed afterwards, when empty.
	Dir string
	// Out receives the trace and the summary.
	Out io.Writer
	// Logger receives the services' own logs (default: discarded).
	Logger *slog.Logger
	// Bulk is the number of orders of the last phase (default 12).
	Bulk int
	// Verbose traces the last phase's messages too.
	Verbose bool
	// KillKitchen kills the kitchen service while the last phase's orders
	// are in flight and starts it again on the same database and broker.
	KillKitchen bool
	// TracerProvider, when set, traces the services and the scenario's
	// client (see Env.TracerProvider).
	TracerProvider func(service string) trace.TracerProvider
}

// RunDemo starts every service in this process on the embedded defaults
// (a SQLite file per service, an embedded NATS JetStream server, an
// in-process registry), the order service as its release 1
// (LegacyOrderService), and a router in front of the order service
// (OrderRoutes); runs the scenario with a trace through the router, which
// starts release 2 beside release 1 and retires release 1; prints the
// summary and stops everything. It fails if any service's copy of a value
// disagrees with its source (see Report.Check).
func RunDemo(ctx context.Context, cfg DemoConfig) (*Report, error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "courier-demo-")
		if err != nil {
			return nil, fmt.Errorf("fooddelivery: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	env, closeEnv, err := EmbeddedEnv(ctx, dir, -1)
	if err != nil {
		return nil, err
	}
	env.Trace, env.Logger, env.TracerProvider = NewTrace(cfg.Out), cfg.Logger, cfg.TracerProvider
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = closeEnv(ctx)
	}()
	names := slices.Clone(Services)
	names[slices.Index(names, OrderService)] = LegacyOrderService
	sys, err := Start(ctx, env, names...)
	if err != nil {
		return nil, err
	}
	routerURL, stopRouter, err := serveRouter(env)
	if err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return nil, errors.Join(err, sys.Stop(stopCtx))
	}
	defer stopRouter()
	env.Trace.Printf("scenario", "%d services started: a SQLite file each, embedded NATS JetStream, in-process registry; the order service is release 1, behind a router", len(Services))
	sc := &Scenario{Env: env, System: sys, Bulk: cfg.Bulk, Verbose: cfg.Verbose, OrderURL: routerURL}
	if cfg.KillKitchen {
		sc.Midway = func(ctx context.Context) error {
			time.Sleep(30 * time.Millisecond)
			if err := sys.Kill(KitchenService); err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			if err := sys.Restart(ctx, KitchenService); err != nil {
				return err
			}
			env.Trace.Printf(KitchenService, "restarted on the same database and broker")
			return nil
		}
	}
	rep, runErr := sc.Run(ctx)
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopErr := sys.Stop(stopCtx)
	if rep != nil {
		rep.Print(cfg.Out) // says which values disagree, if any
	}
	if runErr != nil {
		return rep, errors.Join(runErr, stopErr)
	}
	return rep, stopErr
}

// serveRouter serves a router with OrderRoutes on a loopback port, as
// `courier router` would, and returns its URL and the function that stops
// it.
func serveRouter(env *Env) (string, func(), error) {
	res, err := discovery.NewResolver(env.Registry, discovery.WithLogger(env.Logger))
	if err != nil {
		return "", nil, err
	}
	rt, err := router.New(res, OrderRoutes(), router.WithLogger(env.Logger))
	if err != nil {
		res.Close()
		return "", nil, fmt.Errorf("fooddelivery: %w", err)
	}
	l, err := listen()
	if err != nil {
		res.Close()
		return "", nil, err
	}
	srv := router.NewServer(l.Addr().String(), rt)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l) // returns when the server is shut down
	}()
	return "http://" + l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
		res.Close()
	}, nil
}
