// Package fdtest gives the tests that run the food-delivery example
// (examples/fooddelivery) one process per service what those processes
// share: a PostgreSQL schema per service, a NATS JetStream server and an
// etcd registry, served on loopback ports for the test alone.
package fdtest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver

	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/examples/fooddelivery"
	"github.com/courier-go/courier/internal/testdb"
)

// Servers are the servers of one test's system.
type Servers struct {
	// Server is the PostgreSQL server's URL.
	Server string
	// DB is Server with a schema_prefix of the test's own: the -db of the
	// services.
	DB string
	// Broker is the NATS server's URL.
	Broker string
	// Registry is the etcd registry's URL.
	Registry string
}

// Start starts the servers; the test's cleanup stops them and drops the
// services' schemas. Without a PostgreSQL server the test is skipped
// (under CI, it fails): see internal/testdb.
func Start(t *testing.T) *Servers {
	t.Helper()
	testdb.Postgres(t) // skips (or fails under CI) when the server is unreachable
	s := &Servers{Server: os.Getenv(testdb.PostgresEnv)}
	if s.Server == "" {
		s.Server = testdb.PostgresDefault
	}
	prefix := fmt.Sprintf("fdt%06x_", rand.Uint32()&0xffffff)
	u, err := url.Parse(s.Server)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("schema_prefix", prefix)
	u.RawQuery = q.Encode()
	s.DB = u.String()
	t.Cleanup(func() { s.dropSchemas() })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nats, err := embedded.Start(ctx, t.TempDir(), embedded.WithListenPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nats.Shutdown(context.Background()) })
	s.Broker = nats.ClientURL()
	etcdSrv, err := etcdserver.Start(ctx, etcdserver.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcdSrv.Close() })
	s.Registry = "etcd://" + strings.TrimPrefix(etcdSrv.Endpoint(), "http://")
	return s
}

// Args are the flags naming the servers: -db, -broker and -registry.
func (s *Servers) Args() []string {
	return []string{"-db", s.DB, "-broker", s.Broker, "-registry", s.Registry}
}

// ServiceDB is the URL of the service's own schema.
func (s *Servers) ServiceDB(t testing.TB, service string) string {
	u, err := fooddelivery.ServiceDBURL(s.DB, service)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// RunScenario runs sc as a client of the services running on the
// servers, and fails the test with the scenario's trace and logs() if it
// fails. Without the in-process System the scenario skips its phase 2
// (menu revision, stopped callees) and runs phase 3 (versions 1 and 2 of
// the orders API) on the current release alone: it places o-1 to o-4, o-9
// to o-11 and sc.Bulk orders.
func (s *Servers) RunScenario(t *testing.T, sc *fooddelivery.Scenario, logs func() string) *fooddelivery.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, closeEnv, err := fooddelivery.URLEnv(ctx, s.DB, s.Broker, s.Registry)
	if err != nil {
		t.Fatal(err)
	}
	defer closeEnv()
	var trace strings.Builder
	env.Trace = fooddelivery.NewTrace(&trace)
	sc.Env = env
	rep, err := sc.Run(ctx)
	if err != nil {
		t.Fatalf("%v\n--- scenario\n%s%s", err, trace.String(), logs())
	}
	if err := rep.Check(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Orders) != 7+sc.Bulk {
		t.Fatalf("%d orders, want %d", len(rep.Orders), 7+sc.Bulk)
	}
	return rep
}

// dropSchemas drops the services' schemas, ignoring failures.
func (s *Servers) dropSchemas() {
	db, err := sql.Open("pgx", s.Server)
	if err != nil {
		return
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, svc := range fooddelivery.Services {
		if su, err := fooddelivery.ServiceDBURL(s.DB, svc); err == nil {
			if u, err := url.Parse(su); err == nil {
				db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+u.Query().Get("search_path")+" CASCADE")
			}
		}
	}
}
