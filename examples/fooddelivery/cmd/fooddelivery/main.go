// Command fooddelivery runs the food-delivery example: every service in
// this process on embedded defaults with a scripted scenario (the same as
// `courier demo`), or one service per process on PostgreSQL, MySQL/MariaDB
// or SQLite, a NATS (or other) broker and an etcd registry.
//
//	go run ./examples/fooddelivery/cmd/fooddelivery
//	go run ./examples/fooddelivery/cmd/fooddelivery -service order-service \
//	    -db postgres://... -broker nats://127.0.0.1:4222 -registry etcd://127.0.0.1:2379
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/courier-go/courier/examples/fooddelivery"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := fooddelivery.Main(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fooddelivery:", err)
		os.Exit(1)
	}
}
