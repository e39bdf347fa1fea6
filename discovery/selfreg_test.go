package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/memory"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// waitFor polls the registry until cond holds on the service's instances.
func waitFor(t *testing.T, reg discovery.Registry, service, what string, cond func([]discovery.Instance) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		insts, _ := reg.Instances(context.Background(), service)
		if cond(insts) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s; instances: %+v", what, insts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSelfRegistrarLifecycle(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	var failing atomic.Bool
	check := func(ctx context.Context) error {
		if failing.Load() {
			return errors.New("database unreachable")
		}
		return nil
	}
	inst := discovery.Instance{Service: "orders", ID: "o1", Address: "127.0.0.1:8080"}
	sr, err := discovery.NewSelfRegistrar(reg, inst, discovery.WithCheck(check, 20*time.Millisecond),
		discovery.WithRegisterOptions(discovery.WithTTL(time.Second)), discovery.WithRetryInterval(10*time.Millisecond),
		discovery.WithSelfLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sr.Run(ctx) }()
	<-sr.Registered()
	waitFor(t, reg, "orders", "registered healthy", func(i []discovery.Instance) bool { return len(i) == 1 && i[0].Healthy() })

	failing.Store(true)
	waitFor(t, reg, "orders", "marked unhealthy", func(i []discovery.Instance) bool { return len(i) == 1 && !i[0].Healthy() })
	failing.Store(false)
	waitFor(t, reg, "orders", "healthy again", func(i []discovery.Instance) bool { return len(i) == 1 && i[0].Healthy() })

	// Another registration of the same ID takes the lease away; the
	// registrar registers itself again.
	impostor, err := reg.Register(context.Background(), discovery.Instance{Service: "orders", ID: "o1", Address: "127.0.0.1:9999"})
	if err != nil {
		t.Fatal(err)
	}
	defer impostor.Deregister(context.Background())
	waitFor(t, reg, "orders", "re-registered", func(i []discovery.Instance) bool { return len(i) == 1 && i[0].Address == inst.Address })

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := reg.Instances(context.Background(), "orders"); !errors.Is(err, discovery.ErrUnknownService) {
		t.Fatalf("after shutdown: %v, want the instance deregistered", err)
	}
}

func TestSelfRegistrarRefusesBadInstance(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	_, err := discovery.NewSelfRegistrar(reg, discovery.Instance{Service: "orders", ID: "o1", Address: "orders:port"})
	if !errors.Is(err, discovery.ErrInvalidInstance) || !strings.Contains(err.Error(), `"orders:port"`) {
		t.Fatalf("malformed address: %v", err)
	}
	if _, err := discovery.NewSelfRegistrar(reg, discovery.Instance{Service: "orders", ID: "o1", Address: "127.0.0.1:1"},
		discovery.WithCheck(nil, time.Second)); err == nil {
		t.Fatal("nil check accepted")
	}
	if _, err := discovery.NewSelfRegistrar(reg, discovery.Instance{Service: "orders", ID: "o1", Address: "127.0.0.1:1"},
		discovery.WithRegisterOptions(discovery.WithTTL(0))); err == nil {
		t.Fatal("zero TTL accepted")
	}
}

func TestChecks(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer srv.Close()
	ctx := context.Background()
	if err := discovery.HTTPCheck(nil, srv.URL)(ctx); err != nil {
		t.Fatal(err)
	}
	status.Store(503)
	if err := discovery.HTTPCheck(nil, srv.URL)(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503: %v", err)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := discovery.TCPCheck(addr)(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := discovery.TCPCheck(addr)(ctx); err == nil {
		t.Fatal("TCP check of a closed port passed")
	}
}

func TestResolverKeepsLastKnownWhenWatchFails(t *testing.T) {
	reg := &flakyRegistry{Registry: memory.New()}
	defer reg.Registry.Close()
	if _, err := reg.Register(context.Background(), discovery.Instance{Service: "s", ID: "a", Address: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	r, err := discovery.NewResolver(reg, discovery.WithRetry(time.Millisecond, 5*time.Millisecond), discovery.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.Instances(context.Background(), "s"); err != nil || len(got) != 1 {
		t.Fatalf("Instances = %v, %v", got, err)
	}
	reg.down.Store(true) // open watches fail and new ones cannot be opened
	time.Sleep(50 * time.Millisecond)
	if got, err := r.Instances(context.Background(), "s"); err != nil || len(got) != 1 {
		t.Fatalf("during the outage: %v, %v; want the last known instance", got, err)
	}
	reg.down.Store(false)
	if _, err := reg.Register(context.Background(), discovery.Instance{Service: "s", ID: "b", Address: "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := r.Instances(context.Background(), "s")
		if len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("resolver did not catch up after the outage")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A registry that never answered gives its error, naming the service.
	reg.down.Store(true)
	_, err = r.Instances(context.Background(), "other")
	if err == nil || !strings.Contains(err.Error(), `"other"`) {
		t.Fatalf("unreachable registry: %v", err)
	}
}

// flakyRegistry fails watches while down.
type flakyRegistry struct {
	*memory.Registry
	down atomic.Bool
}

var errDown = errors.New("registry unreachable")

func (f *flakyRegistry) Watch(ctx context.Context, service string) (discovery.Watcher, error) {
	if f.down.Load() {
		return nil, errDown
	}
	w, err := f.Registry.Watch(ctx, service)
	if err != nil {
		return nil, err
	}
	return &flakyWatcher{Watcher: w, f: f}, nil
}

type flakyWatcher struct {
	discovery.Watcher
	f *flakyRegistry
}

func (w *flakyWatcher) Next(ctx context.Context) ([]discovery.Instance, error) {
	for {
		if w.f.down.Load() {
			return nil, errDown
		}
		nctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		insts, err := w.Watcher.Next(nctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return insts, err
		}
	}
}

func ExampleSelfRegistrar() {
	reg := memory.New()
	defer reg.Close()
	ctx, shutdown := context.WithCancel(context.Background())

	inst := discovery.Instance{Service: "orders", ID: "orders-1", Address: "127.0.0.1:8080", Version: "1.4.2"}
	sr, err := discovery.NewSelfRegistrar(reg, inst,
		discovery.WithCheck(func(ctx context.Context) error { return nil }, 5*time.Second),
		discovery.WithSelfLogger(quiet))
	if err != nil {
		panic(err)
	}
	done := make(chan error)
	go func() { done <- sr.Run(ctx) }()
	<-sr.Registered()

	insts, _ := reg.Instances(context.Background(), "orders")
	fmt.Println(insts[0], insts[0].Healthy())

	shutdown() // e.g. on SIGTERM: deregisters before returning
	<-done
	_, err = reg.Instances(context.Background(), "orders")
	fmt.Println(err)
	// Output:
	// orders/orders-1@127.0.0.1:8080 true
	// discovery: unknown service "orders": no instance registered
}
