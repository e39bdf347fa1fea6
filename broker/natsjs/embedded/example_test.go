package embedded_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/courier-go/courier/broker/natsjs/embedded"
)

// A service starts the server on a directory of its own, opens a Broker on
// it, and, to let other processes in, listens on a port.
func ExampleStart() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "courier-embedded-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	srv, err := embedded.Start(ctx, dir, embedded.WithListenPort(0))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	b, err := srv.Broker(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(ctx)
	fmt.Println(srv.Dir() == dir, srv.ClientURL() != "", b.Ping(ctx))
	// Output: true true <nil>
}
