// Command courier runs Courier's operational components:
//
//	courier relay     publish a service's outbox to the broker (polling or log tailing)
//	courier registry  run a single-node etcd service registry for development
//	courier registrar register other processes' instances (third-party registration)
//	courier router    reverse proxy to registry-resolved instances (REST and gRPC)
//	courier demo      run the example food-delivery system and its traced scenario
//	courier version   print the version
//
// Every flag can also come from an environment variable (COURIER_ and the
// flag's name in upper case, dashes as underscores) or from a JSON config
// file given with -config; flags win over the environment, which wins over
// the file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "courier:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: courier <command> [flags]

commands:
  relay     publish a service's transactional outbox to the broker
  registry  run a single-node etcd service registry for development
  registrar health-check targets and register them on their behalf
  router    reverse proxy routing to registry-resolved instances (REST, gRPC)
  demo      run the example food-delivery system (examples/fooddelivery)
  version   print the version

Run 'courier <command> -h' for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "relay":
		return (&relayCommand{}).run(ctx, args[1:], stderr)
	case "registry":
		return (&registryCommand{}).run(ctx, args[1:], stdout, stderr)
	case "registrar":
		return (&registrarCommand{}).run(ctx, args[1:], stderr)
	case "router":
		return (&routerCommand{}).run(ctx, args[1:], stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "courier", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
