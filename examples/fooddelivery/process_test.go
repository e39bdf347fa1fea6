package fooddelivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/examples/fooddelivery"
	"github.com/courier-go/courier/internal/fdtest"
	"github.com/courier-go/courier/internal/testproc"
)

// TestMain lets the test binary run as one of the services (see
// internal/testproc).
func TestMain(m *testing.M) { testproc.Main(m, fooddelivery.Main) }

// TestOneProcessPerServiceOnPostgres runs every service in a process of
// its own, each with its own PostgreSQL schema and in-process outbox
// relay, over a NATS JetStream server and an etcd registry that the test
// serves on loopback ports; the scenario runs in the test's process. The
// kitchen is killed with SIGKILL while orders are in flight and started
// again: every order still reaches its final state, with nothing lost and
// nothing applied twice.
func TestOneProcessPerServiceOnPostgres(t *testing.T) {
	srv := fdtest.Start(t)
	children := testproc.NewGroup(t)
	for _, name := range fooddelivery.Services { // consumers before producers
		if _, err := children.Start(name, append([]string{"-service", name}, srv.Args()...), "running "+name); err != nil {
			t.Fatal(err)
		}
	}
	rep := srv.RunScenario(t, &fooddelivery.Scenario{Bulk: 10, Midway: func(ctx context.Context) error {
		time.Sleep(50 * time.Millisecond)
		_, err := children.Crash(fooddelivery.KitchenService)
		return err
	}}, children.Logs)
	for _, o := range rep.Orders {
		if want, ok := wantStates[o.ID]; ok && o.State != want || !ok && o.State != fooddelivery.Approved {
			t.Errorf("order %s is %s (%s)", o.ID, o.State, o.Reason)
		}
	}
}

// ServiceDBURL is what `courier relay -db` takes for a service's outbox.
func TestServiceDBURL(t *testing.T) {
	for _, c := range []struct{ db, service, want string }{
		{"postgres://u:p@h:5432/db?sslmode=disable", fooddelivery.OrderService, "postgres://u:p@h:5432/db?search_path=fd_order&sslmode=disable"},
		{"postgresql://h/db?schema_prefix=x1_", fooddelivery.KitchenService, "postgresql://h/db?search_path=x1_kitchen"},
		{"mysql://u:p@h:3306/?schema_prefix=t_", fooddelivery.AccountingService, "mysql://u:p@h:3306/t_accounting"},
		{"sqlite:///var/fd", fooddelivery.OrderService, "sqlite:///var/fd/order-service.db"},
	} {
		if got, err := fooddelivery.ServiceDBURL(c.db, c.service); err != nil || got != c.want {
			t.Errorf("ServiceDBURL(%q, %q) = %q, %v; want %q", c.db, c.service, got, err, c.want)
		}
	}
	for _, c := range [][2]string{
		{"postgres://h/db", "billing-service"},
		{"oracle://h/db", fooddelivery.OrderService},
		{"postgres://h/db?schema_prefix=Fd-", fooddelivery.OrderService},
	} {
		if got, err := fooddelivery.ServiceDBURL(c[0], c[1]); err == nil {
			t.Errorf("ServiceDBURL(%q, %q) = %q, want an error", c[0], c[1], got)
		}
	}
}

func TestOrderURLFlag(t *testing.T) {
	servers := []string{"-db", "sqlite:///nowhere", "-broker", "nats://127.0.0.1:1", "-registry", "etcd://127.0.0.1:1"}
	for _, args := range [][]string{
		{"-order-url", "http://127.0.0.1:8080"},                                                // without -scenario
		append([]string{"-service", "all", "-order-url", "http://127.0.0.1:8080"}, servers...), // with -service
		append([]string{"-scenario", "-order-url", "127.0.0.1:8080"}, servers...),              // not a URL
		append([]string{"-scenario", "-order-url", "http://127.0.0.1:8080/?x=1"}, servers...),  // a query
	} {
		var out strings.Builder
		if err := fooddelivery.Main(context.Background(), args, &out, &out); err == nil || !strings.Contains(err.Error(), "order") {
			t.Errorf("Main(%q) = %v, want an error about -order-url", args, err)
		}
	}
	if _, err := fooddelivery.NewClientURL("http://127.0.0.1:8080/api/"); err != nil {
		t.Error(err)
	}
}
