// Command courier runs Courier's operational components:
//
//	courier relay     publish a service's outbox to the broker (polling or log tailing)
//	courier deadletter list, show, replay or purge a subscriber id's dead letters
//	courier registry  run a single-node etcd service registry for development
//	courier registrar register other processes' instances (third-party registration)
//	courier router    reverse proxy to registry-resolved instances (REST and gRPC)
//	courier console   serve the operations console: services, breakers, relays, consumers, dead letters
//	courier demo      run the example food-delivery system and its traced scenario
//	courier api       compare API documents (AsyncAPI, OpenAPI, .proto) and check them against a baseline
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
	"runtime/debug"
	"syscall"
)

// version may be set at build time with -ldflags "-X main.version=...";
// otherwise the module version in the build information is reported.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "courier:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is the process's exit status for run's error: 0 for none and
// for -h, 2 for a usage error (an unknown command or flag, a flag value
// that does not parse, stray arguments), 1 for any other failure.
func exitCode(err error) int {
	var usage interface{ Usage() bool }
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage) && usage.Usage():
		return 2
	}
	return 1
}

// usageError marks an error in how the command was called, recognised by
// its Usage method (as the demo's are) so that exitCode returns 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
func (e usageError) Usage() bool   { return true }

// buildVersion returns the version set at build time, or else the main
// module's version from the build information (with the commit, for a
// build from a checkout), or "(devel)".
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
		if s.Key == "vcs.modified" && s.Value == "true" {
			v += "+dirty"
		}
	}
	return v
}

const usage = `usage: courier <command> [flags]

commands:
  relay     publish a service's transactional outbox to the broker
  deadletter list, show, replay or purge a subscriber id's dead letters
  registry  run a single-node etcd service registry for development
  registrar health-check targets and register them on their behalf
  router    reverse proxy routing to registry-resolved instances (REST, gRPC)
  console   serve the operations console: services, breakers, relays, consumers, dead letters
  demo      run the example food-delivery system (examples/fooddelivery)
  api       compare API documents and check them against a baseline (diff, check)
  version   print the version

Run 'courier <command> -h' for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command given")}
	}
	switch args[0] {
	case "relay":
		return (&relayCommand{}).run(ctx, args[1:], stderr)
	case "deadletter":
		return (&deadLetterCommand{}).run(ctx, args[1:], stdout, stderr)
	case "registry":
		return (&registryCommand{}).run(ctx, args[1:], stdout, stderr)
	case "registrar":
		return (&registrarCommand{}).run(ctx, args[1:], stderr)
	case "router":
		return (&routerCommand{}).run(ctx, args[1:], stderr)
	case "console":
		return (&consoleCommand{}).run(ctx, args[1:], stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "api":
		return (&apiCommand{}).run(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "courier", buildVersion())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}
