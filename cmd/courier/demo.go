package main

import (
	"context"
	"io"

	"github.com/courier-go/courier/examples/fooddelivery"
)

// runDemo runs `courier demo`: the food-delivery example, every service in
// this process on embedded defaults with a traced scenario, or with
// -service / -scenario one service per process on PostgreSQL or
// MySQL/MariaDB, a NATS broker and an etcd registry. `courier demo -h`
// lists the flags.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fooddelivery.Main(ctx, args, stdout, stderr)
}
