// Package testserver restarts the local servers Courier's tests use
// (PostgreSQL, MariaDB and RabbitMQ, as the scripts under scripts/services
// start them), for the tests of what survives a restart, and installs
// certificates the tests make on them, for the tests of TLS (InstallTLS).
//
// A restart breaks the tests of other packages that run at the same time,
// so every restart here skips its test unless testenv.RestartEnv is set
// (the test script runs those tests on their own). A test that cannot
// restart its server (not local, not root, a tool missing) is skipped with
// the reason, or fails under CI, where it must run.
package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testenv"
	"github.com/courier-go/courier/sqldb"
)

// Restart restarts a server and returns once it accepts connections
// again, or when ctx ends.
type Restart func(ctx context.Context) error

// PostgresVersion and PostgresCluster name the cluster that
// scripts/services/postgres.sh runs.
const (
	PostgresVersion = "15"
	PostgresCluster = "main"
)

// Database returns the restart of db's server: PostgreSQL or MariaDB
// (see Postgres and MariaDB).
func Database(t testing.TB, db *testdb.DB) Restart {
	t.Helper()
	switch db.Dialect {
	case sqldb.Postgres:
		u, err := url.Parse(db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		return Postgres(t, u.Hostname())
	case sqldb.MySQL:
		cfg, err := mysql.ParseDSN(db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		host, _, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			t.Fatal(err)
		}
		return MariaDB(t, host)
	}
	t.Fatalf("no restart for %s", db.Dialect)
	return nil
}

// Postgres returns the restart of the local PostgreSQL cluster, whose
// address is host (the host of the tests' server URL).
func Postgres(t testing.TB, host string) Restart {
	t.Helper()
	testenv.RequireRestarts(t, "PostgreSQL")
	requireLocal(t, "PostgreSQL", host)
	requireTool(t, "pg_ctlcluster")
	return func(ctx context.Context) error {
		// pg_ctl waits until the server accepts connections again.
		return run(ctx, "pg_ctlcluster", PostgresVersion, PostgresCluster, "restart")
	}
}

// MariaDB returns the restart of the local MariaDB server, whose address
// is host: a shutdown through its socket, then scripts/services/mariadb.sh,
// which starts it and waits until it answers. It needs root.
func MariaDB(t testing.TB, host string) Restart {
	t.Helper()
	testenv.RequireRestarts(t, "MariaDB")
	requireLocal(t, "MariaDB", host)
	requireTool(t, "mariadb-admin")
	if os.Geteuid() != 0 {
		cannot(t, "restarting the local MariaDB needs root")
	}
	start := script(t, "mariadb.sh")
	return func(ctx context.Context) error {
		if err := run(ctx, "mariadb-admin", "--protocol=socket", "-uroot", "shutdown"); err != nil {
			return err
		}
		return run(ctx, start)
	}
}

// RabbitMQ returns the restart of the local RabbitMQ node's application
// (rabbitmqctl stop_app, start_app) that serves the AMQP URL u. If the
// test ends between the two, its cleanup starts the application again.
func RabbitMQ(t testing.TB, u string) Restart {
	t.Helper()
	testenv.RequireRestarts(t, "RabbitMQ")
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	requireLocal(t, "RabbitMQ", parsed.Hostname())
	requireTool(t, "rabbitmqctl")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, "rabbitmqctl", "-q", "status"); err != nil {
		cannot(t, "cannot control the local RabbitMQ node: %v", err)
	}
	var stopped atomic.Bool
	t.Cleanup(func() {
		if stopped.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_ = run(ctx, "rabbitmqctl", "-q", "start_app")
		}
	})
	return func(ctx context.Context) error {
		stopped.Store(true)
		if err := run(ctx, "rabbitmqctl", "-q", "stop_app"); err != nil {
			return err
		}
		if err := run(ctx, "rabbitmqctl", "-q", "start_app"); err != nil {
			return err
		}
		stopped.Store(false)
		return nil
	}
}

// AMQPEnv names the RabbitMQ server the tests use; AMQPDefault is the one
// scripts/services/rabbitmq.sh starts.
const (
	AMQPEnv     = "COURIER_AMQP_URL"
	AMQPDefault = "amqp://guest:guest@127.0.0.1:5672/"
)

// AMQPURL returns the URL of the tests' RabbitMQ server once its port
// accepts connections. When it does not, the test is skipped with how to
// start the server, or fails under CI.
func AMQPURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(AMQPEnv)
	if u == "" {
		u = AMQPDefault
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%s: %v", AMQPEnv, err)
	}
	host := parsed.Host
	if parsed.Port() == "" {
		host = net.JoinHostPort(parsed.Hostname(), "5672")
	}
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		cannot(t, "RabbitMQ at %s is unreachable (%v); start it with scripts/services/rabbitmq.sh (or set %s)", host, err, AMQPEnv)
	}
	conn.Close()
	return u
}

// cannot skips the test with the reason, or fails it under CI.
func cannot(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func requireLocal(t testing.TB, server, host string) {
	t.Helper()
	if host == "localhost" {
		return
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Skipf("%s at %s is not local: the test cannot restart it", server, host)
	}
}

func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		cannot(t, "%s not found, needed to restart the server: %v", name, err)
	}
}

// script returns the path of scripts/services/name, found from the
// test's working directory up.
func script(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "scripts", "services", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			cannot(t, "scripts/services/%s not found above the test's directory", name)
			return ""
		}
		dir = parent
	}
}

// run runs a command and returns an error with its output if it fails.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = errors.Join(err, ctxErr)
		}
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// ActiveMQEnv names the ActiveMQ server the tests use; ActiveMQDefault is
// the one scripts/services/activemq.sh starts.
const (
	ActiveMQEnv     = "COURIER_ACTIVEMQ_URL"
	ActiveMQDefault = "activemq://127.0.0.1:61613"
)

// ActiveMQURL returns the URL of the tests' ActiveMQ server once its STOMP
// port accepts connections. When it does not, the test is skipped with how
// to start the server, or fails under CI.
func ActiveMQURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(ActiveMQEnv)
	if u == "" {
		u = ActiveMQDefault
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%s: %v", ActiveMQEnv, err)
	}
	host := parsed.Host
	if parsed.Port() == "" {
		host = net.JoinHostPort(parsed.Hostname(), "61613")
	}
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		cannot(t, "ActiveMQ at %s is unreachable (%v); start it with scripts/services/activemq.sh (or set %s)", host, err, ActiveMQEnv)
	}
	conn.Close()
	return u
}

// ActiveMQ returns the restart of the local ActiveMQ broker that serves
// the URL u (scripts/services/activemq.sh restart: it stops the broker and
// starts it again). If the test ends between the two, its cleanup starts
// the broker again.
func ActiveMQ(t testing.TB, u string) Restart {
	t.Helper()
	testenv.RequireRestarts(t, "ActiveMQ")
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	requireLocal(t, "ActiveMQ", parsed.Hostname())
	if os.Geteuid() != 0 {
		cannot(t, "restarting ActiveMQ needs root")
	}
	path := script(t, "activemq.sh")
	var stopped atomic.Bool
	t.Cleanup(func() {
		if stopped.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_ = run(ctx, path)
		}
	})
	return func(ctx context.Context) error {
		stopped.Store(true)
		if err := run(ctx, path, "restart"); err != nil {
			return err
		}
		stopped.Store(false)
		return nil
	}
}
