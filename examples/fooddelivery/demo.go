package fooddelivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
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
}

// RunDemo starts every service in this process on the embedded defaults
// (a SQLite file per service, an embedded NATS JetStream server, an
// in-process registry), runs the scenario with a trace, prints the
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
	env.Trace, env.Logger = NewTrace(cfg.Out), cfg.Logger
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = closeEnv(ctx)
	}()
	sys, err := Start(ctx, env)
	if err != nil {
		return nil, err
	}
	env.Trace.Printf("scenario", "%d services started: a SQLite file each, embedded NATS JetStream, in-process registry", len(Services))
	sc := &Scenario{Env: env, System: sys, Bulk: cfg.Bulk, Verbose: cfg.Verbose}
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
