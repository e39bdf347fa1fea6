package main

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/examples/fooddelivery"
	"github.com/courier-go/courier/internal/fdtest"
	"github.com/courier-go/courier/internal/testproc"
)

// TestMain lets the test binary run as the courier command, or as one of
// TestChaos's programs (see internal/testproc and runTestChild).
func TestMain(m *testing.M) { testproc.Main(m, runTestChild) }

// TestOneProcessPerServiceWithCourierRelayAndRouter runs the food-delivery
// example as its package documentation says: each service in a process
// of its own (courier demo -service NAME -external-relay) with its own
// PostgreSQL schema, a courier relay process per service publishing its
// outbox (the order service's tailing PostgreSQL's log where the server
// allows it, the others polling), and a courier router in front of the
// order service, through which the scenario places and polls its orders.
// The order service's relay is killed with SIGKILL while orders are in
// flight and started again: every order still reaches its final state,
// with nothing lost and nothing applied twice.
func TestOneProcessPerServiceWithCourierRelayAndRouter(t *testing.T) {
	srv := fdtest.Start(t)
	dbs := map[string]string{}
	for _, name := range fooddelivery.Services {
		dbs[name] = srv.ServiceDB(t, name)
	}
	tail := canTail(t, srv.Server)
	// The slot and publication of the order service's relay are named
	// after its schema, which is the test's own.
	u, err := url.Parse(dbs[fooddelivery.OrderService])
	if err != nil {
		t.Fatal(err)
	}
	slot := u.Query().Get("search_path")
	if tail {
		t.Cleanup(func() { dropSlot(t, srv.Server, slot) }) // after the relays stop
	}
	procs := testproc.NewGroup(t)

	// With the outboxes left to courier relay, nothing is published
	// before the relays start: the services may start in any order.
	parallel(t, fooddelivery.Services, func(name string) error {
		_, err := procs.Start(name, append([]string{"demo", "-service", name, "-external-relay"}, srv.Args()...), "running "+name)
		return err
	})
	relay := func(service string) string { return "relay " + service }
	parallel(t, fooddelivery.Services, func(name string) error {
		args := []string{"relay", "-db", dbs[name], "-broker", srv.Broker + "?shards=4",
			"-listen", "127.0.0.1:0", "-lease-ttl", "2s", "-poll-interval", "20ms"}
		ready := "relay starting"
		if name == fooddelivery.OrderService && tail {
			// The slot must exist before the orders are written.
			args = append(args, "-mode", "tail", "-slot", slot, "-publication", slot, "-heartbeat", "1s")
			ready = "is now the leader"
		}
		_, err := procs.Start(relay(name), args, ready)
		return err
	})
	router, err := procs.Start("router", []string{"router", "-registry", srv.Registry,
		"-routes", "/v1/orders=" + fooddelivery.OrderService + ",/v2/orders=" + fooddelivery.OrderService, "-listen", "127.0.0.1:0"}, "router: serving")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`address=(\S+)`).FindStringSubmatch(router.Ready)
	if m == nil {
		t.Fatalf("no address in %q", router.Ready)
	}

	var restarted *testproc.Proc
	srv.RunScenario(t, &fooddelivery.Scenario{Bulk: 10, OrderURL: "http://" + m[1], Midway: func(ctx context.Context) error {
		time.Sleep(50 * time.Millisecond)
		p, err := procs.Crash(relay(fooddelivery.OrderService))
		restarted = p
		return err
	}}, procs.Logs)

	// The orders' later steps went out through the restarted relay.
	m = regexp.MustCompile(`relay endpoints" addr=(\S+)`).FindStringSubmatch(restarted.Output())
	if m == nil {
		t.Fatalf("the restarted relay logged no address:\n%s", restarted.Output())
	}
	published := regexp.MustCompile(`(?m)^courier_relay_published_total(?:\{[^}]*\})? (\d+)`).FindStringSubmatch(get(t, "http://"+m[1]+"/metrics"))
	if published == nil || published[1] == "0" {
		t.Fatalf("the restarted relay published nothing:\n%s", restarted.Output())
	}
}

// canTail reports whether the server allows a log-tailing relay: logical
// replication, and a role allowed to replicate.
func canTail(t *testing.T, server string) bool {
	db, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var level string
	var replication bool
	if err := db.QueryRow("SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT rolreplication FROM pg_roles WHERE rolname = current_user").Scan(&replication); err != nil {
		t.Fatal(err)
	}
	if level != "logical" || !replication {
		t.Logf("wal_level is %s, replication %v: every relay polls", level, replication)
		return false
	}
	return true
}

// dropSlot drops the replication slot, which would otherwise hold WAL
// back for good, and its publication. The server may hold the slot for
// the relay that used it for a moment after it exits.
func dropSlot(t *testing.T, server, slot string) {
	db, err := sql.Open("pgx", server)
	if err != nil {
		t.Error(err)
		return
	}
	defer db.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := db.Exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("replication slot %s: %v", slot, err)
			break
		}
	}
	if _, err := db.Exec("DROP PUBLICATION IF EXISTS " + slot); err != nil {
		t.Error(err)
	}
}

// parallel runs f for every name at once and fails the test if any fails.
func parallel(t *testing.T, names []string, f func(name string) error) {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = f(name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
