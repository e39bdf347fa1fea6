package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/testnet"
)

// TestCommandsReportAnUnreachableRegistry runs router, registrar and demo
// -service against an etcd registry that cannot be reached, at a closed
// port and at a port that accepts connections and never answers: each must
// fail within seconds with an error naming the registry's address, and
// never show its password.
func TestCommandsReportAnUnreachableRegistry(t *testing.T) {
	targets := filepath.Join(t.TempDir(), "targets.json")
	if err := os.WriteFile(targets, []byte(`[{"service":"kitchen","id":"k1","address":"127.0.0.1:1"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	commands := []struct {
		name string
		args []string
	}{
		{"router", []string{"router", "-routes", "/kitchen/=kitchen", "-listen", "127.0.0.1:0", "-registry-timeout", "500ms"}},
		{"registrar", []string{"registrar", "-targets", targets, "-interval", "100ms", "-registry-timeout", "500ms"}},
		{"demo", []string{"demo", "-service", "kitchen-service", "-db", "sqlite://" + t.TempDir(), "-broker", "memory://",
			"-connect-timeout", "500ms"}},
	}
	// With a user and password, the etcd client authenticates at once;
	// without, the first request is the registry's check.
	for _, c := range commands {
		for _, p := range testnet.Unreachable {
			for auth, user := range map[string]string{"anonymous": "", "password": "courier:s3cret@"} {
				t.Run(c.name+"/"+p.Name+"/"+auth, func(t *testing.T) {
					addr := p.Addr(t)
					stderr, err := runBriefly(t, slices.Concat(c.args, []string{"-registry", "etcd://" + user + addr}))
					if !strings.Contains(err.Error(), addr) {
						t.Errorf("courier %s: the error does not name %s: %v", c.name, addr, err)
					}
					if out := err.Error() + stderr; strings.Contains(out, "s3cret") {
						t.Errorf("courier %s: the password shows:\n%s", c.name, out)
					}
				})
			}
		}
	}
}

// runBriefly runs the command args, which must fail within 10 seconds, and
// returns what it wrote to stderr and its error.
func runBriefly(t *testing.T, args []string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- run(ctx, args, &syncBuffer{}, &stderr) }()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		cancel()
		select {
		case <-errc:
		case <-time.After(10 * time.Second):
		}
		t.Fatalf("courier %s: no report within 10s; stderr:\n%s", args[0], stderr.String())
	}
	t.Logf("courier %s reported in %v: %v", args[0], time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		t.Fatalf("courier %s: exited without an error; stderr:\n%s", args[0], stderr.String())
	}
	return stderr.String(), err
}

// TestDemoReportsAnUnreachableDatabaseOrBroker runs demo -service with a
// database server or broker that cannot be reached, at a closed port and at
// a port that never answers: it must fail within seconds with an error
// naming the address, and never show the password.
func TestDemoReportsAnUnreachableDatabaseOrBroker(t *testing.T) {
	dir := t.TempDir()
	for _, dep := range []struct{ name, db, broker string }{
		{"postgres", "postgres://courier:s3cret@%s/courier?sslmode=disable", "memory://"},
		{"mysql", "mysql://courier:s3cret@%s/", "memory://"},
		{"nats", "sqlite://" + dir, "nats://courier:s3cret@%s"},
		{"amqp", "sqlite://" + dir, "amqp://courier:s3cret@%s/"},
		{"kafka", "sqlite://" + dir, "kafka://courier:s3cret@%s"},
	} {
		for _, p := range testnet.Unreachable {
			t.Run(dep.name+"/"+p.Name, func(t *testing.T) {
				addr := p.Addr(t)
				db, broker := strings.Replace(dep.db, "%s", addr, 1), strings.Replace(dep.broker, "%s", addr, 1)
				stderr, err := runBriefly(t, []string{"demo", "-service", "kitchen-service", "-db", db, "-broker", broker,
					"-registry", "memory://", "-connect-timeout", "500ms"})
				if !strings.Contains(err.Error(), addr) {
					t.Errorf("the error does not name %s: %v", addr, err)
				}
				if out := err.Error() + stderr; strings.Contains(out, "s3cret") {
					t.Errorf("the password shows:\n%s", out)
				}
			})
		}
	}
}

// TestUnknownURLParametersAreRefused checks that each command refuses, at
// start and naming it, a parameter that its database, broker or registry
// URL does not know.
func TestUnknownURLParametersAreRefused(t *testing.T) {
	dir := t.TempDir()
	demo := func(db, broker, registry string) []string {
		return []string{"demo", "-service", "kitchen-service", "-db", db, "-broker", broker, "-registry", registry}
	}
	for _, args := range [][]string{
		{"router", "-routes", "/kitchen/=kitchen", "-registry", "etcd://127.0.0.1:2379?shardz=4"},
		{"router", "-routes", "/kitchen/=kitchen", "-registry", "dns://?shardz=4"},
		{"registrar", "-targets", "t.json", "-registry", "etcd://127.0.0.1:2379?shardz=4"},
		{"registrar", "-dns-services", "kitchen", "-dns", "dns://?shardz=4"},
		demo("sqlite://"+dir+"?shardz=4", "memory://", "memory://"),
		demo("sqlite://"+dir, "memory://?shardz=4", "memory://"),
		demo("sqlite://"+dir, "nats://127.0.0.1:4222?shardz=4", "memory://"),
		demo("sqlite://"+dir, "memory://", "memory://?shardz=4"),
		demo("sqlite://"+dir, "memory://", "etcd://127.0.0.1:2379?shardz=4"),
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, err := runBriefly(t, args)
			if !strings.Contains(err.Error(), `unknown parameter "shardz"`) {
				t.Errorf("courier %v: %v, want an error naming the parameter", args, err)
			}
		})
	}
}
