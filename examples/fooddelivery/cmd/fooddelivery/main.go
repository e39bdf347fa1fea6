// Command fooddelivery runs the food-delivery example: every service in
// this process on embedded defaults with a scripted scenario (the same as
// `courier demo`), or one service per process on PostgreSQL, MySQL/MariaDB
// or SQLite, a NATS (or other) broker and an etcd registry, with
// `courier relay` publishing the outboxes and `courier router` in front of
// the order service if wished (see the package documentation for the
// commands).
//
//	go run ./examples/fooddelivery/cmd/fooddelivery
//	go run ./examples/fooddelivery/cmd/fooddelivery -service order-service \
//	    -db postgres://... -broker nats://127.0.0.1:4222 -registry etcd://127.0.0.1:2379
//	go run ./examples/fooddelivery/cmd/fooddelivery -h
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/courier-go/courier/examples/fooddelivery"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := fooddelivery.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		// -h printed the usage.
	case err != nil:
		fmt.Fprintln(os.Stderr, "fooddelivery:", err)
		os.Exit(1)
	}
}
