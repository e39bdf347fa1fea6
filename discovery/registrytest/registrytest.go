// Package registrytest is the conformance suite every discovery.Registry
// adapter that takes registrations must pass: leases, expiry after the
// heartbeats stop, watches, updates, deregistration and bad input.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
)

// Abandoner is implemented by leases that can stop heartbeating without
// deregistering, as a crashed process does. The expiry test needs it.
type Abandoner interface {
	Abandon()
}

// Config describes the registry under test.
type Config struct {
	// New returns the registry; it is shared by the subtests, which use
	// distinct service names.
	New func(t *testing.T) discovery.Registry
	// TTL is the lease TTL the expiry test uses (default 2s).
	TTL time.Duration
}

var seq atomic.Int64

var nonName = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// Service returns a service name unique to the test.
func Service(t testing.TB) string {
	return fmt.Sprintf("%s-%d", strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-"), seq.Add(1))
}

// Run runs the suite.
func Run(t *testing.T, cfg Config) {
	if cfg.TTL == 0 {
		cfg.TTL = 2 * time.Second
	}
	reg := cfg.New(t)
	t.Run("RegisterListWatchDeregister", func(t *testing.T) { testLifecycle(t, reg) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, reg) })
	t.Run("ExpiryAfterHeartbeatsStop", func(t *testing.T) { testExpiry(t, reg, cfg.TTL) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, reg) })
	t.Run("Resolver", func(t *testing.T) { testResolver(t, reg) })
	if l, ok := reg.(discovery.ServiceLister); ok {
		t.Run("Services", func(t *testing.T) { testServices(t, reg, l) })
	}
}

// testServices checks that a registry that lists its services lists a
// service while it has an instance, healthy or not, and not after its
// last instance left.
func testServices(t *testing.T, reg discovery.Registry, l discovery.ServiceLister) {
	a, b := Service(t), Service(t)
	has := slices.Contains[[]string]
	la := register(t, reg, a, "a1", "127.0.0.1:9001")
	register(t, reg, a, "a2", "127.0.0.1:9002")
	lb := register(t, reg, b, "b1", "127.0.0.1:9003")
	sick := lb.Instance()
	sick.Unhealthy = true
	if err := lb.Update(ctxT(t, 10*time.Second), sick); err != nil {
		t.Fatal(err)
	}
	names, err := l.Services(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !has(names, a) || !has(names, b) {
		t.Fatalf("Services = %v, want %s and %s among them", names, a, b)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Fatalf("Services = %v: not sorted, or a name twice", names)
		}
	}
	if err := la.Deregister(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := lb.Deregister(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	names, err = l.Services(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !has(names, a) || has(names, b) {
		t.Fatalf("Services = %v after %s's only instance left: want %s (one instance left) and not %s", names, b, a, b)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// IDs returns the instances' IDs.
func IDs(insts []discovery.Instance) []string {
	ids := make([]string, len(insts))
	for i, inst := range insts {
		ids[i] = inst.ID
	}
	return ids
}

func register(t *testing.T, reg discovery.Registry, service, id, addr string, opts ...discovery.RegisterOption) discovery.Lease {
	t.Helper()
	l, err := reg.Register(ctxT(t, 10*time.Second), discovery.Instance{Service: service, ID: id, Address: addr,
		Version: "1.0", Metadata: map[string]string{"zone": "a"}}, opts...)
	if err != nil {
		t.Fatalf("register %s/%s: %v", service, id, err)
	}
	t.Cleanup(func() { l.Deregister(context.Background()) })
	return l
}

// next reads the watcher until the IDs equal want.
func next(t *testing.T, w discovery.Watcher, want string, within time.Duration) []discovery.Instance {
	t.Helper()
	ctx := ctxT(t, within)
	var got []string
	for {
		insts, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("watch: want [%s], last saw %v: %v", want, got, err)
		}
		got = IDs(insts)
		if strings.Join(got, ",") == want {
			return insts
		}
	}
}

func testLifecycle(t *testing.T, reg discovery.Registry) {
	svc := Service(t)
	w, err := reg.Watch(ctxT(t, 5*time.Second), svc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	next(t, w, "", 5*time.Second)
	b := register(t, reg, svc, "b", "127.0.0.1:8002")
	a := register(t, reg, svc, "a", "127.0.0.1:8001")
	insts := next(t, w, "a,b", 5*time.Second)
	if insts[0].Address != "127.0.0.1:8001" || insts[0].Version != "1.0" || insts[0].Metadata["zone"] != "a" || !insts[0].Healthy() {
		t.Fatalf("watched instance %+v lost fields", insts[0])
	}
	got, err := reg.Instances(ctxT(t, 5*time.Second), svc)
	if err != nil || strings.Join(IDs(got), ",") != "a,b" {
		t.Fatalf("Instances = %v, %v; want a,b", IDs(got), err)
	}
	if err := a.Deregister(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
		if a.Err() != nil {
			t.Fatalf("deregistered lease Err = %v, want nil", a.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after Deregister")
	}
	if err := a.Deregister(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("second Deregister: %v", err)
	}
	next(t, w, "b", 5*time.Second)
	if err := b.Deregister(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	next(t, w, "", 5*time.Second)
	_, err = reg.Instances(ctxT(t, 5*time.Second), svc)
	var unknown *discovery.UnknownServiceError
	if !errors.As(err, &unknown) || unknown.Service != svc {
		t.Fatalf("Instances after deregistering all = %v, want UnknownServiceError naming %q", err, svc)
	}
}

func testUpdate(t *testing.T, reg discovery.Registry) {
	svc := Service(t)
	l := register(t, reg, svc, "a", "127.0.0.1:8001")
	w, err := reg.Watch(ctxT(t, 5*time.Second), svc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	next(t, w, "a", 5*time.Second)
	inst := l.Instance()
	inst.Unhealthy = true
	inst.Version = "1.1"
	if err := l.Update(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	got := next(t, w, "a", 5*time.Second)
	if got[0].Healthy() || got[0].Version != "1.1" {
		t.Fatalf("after update: %+v, want unhealthy version 1.1", got[0])
	}
	moved := inst
	moved.Address = "127.0.0.1:9999"
	if err := l.Update(ctxT(t, 5*time.Second), moved); err == nil {
		t.Fatal("Update changing the address succeeded")
	}
}

func testExpiry(t *testing.T, reg discovery.Registry, ttl time.Duration) {
	svc := Service(t)
	register(t, reg, svc, "stays", "127.0.0.1:8001", discovery.WithTTL(ttl))
	crashed := register(t, reg, svc, "crashes", "127.0.0.1:8002", discovery.WithTTL(ttl))
	ab, ok := crashed.(Abandoner)
	if !ok {
		t.Skipf("%T cannot stop heartbeating without deregistering", crashed)
	}
	w, err := reg.Watch(ctxT(t, 5*time.Second), svc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	next(t, w, "crashes,stays", 5*time.Second)
	// Heartbeats keep a lease alive well past its TTL.
	time.Sleep(ttl + ttl/2)
	if got, err := reg.Instances(ctxT(t, 5*time.Second), svc); err != nil || len(got) != 2 {
		t.Fatalf("after 1.5 TTL with heartbeats: %v, %v; want both instances", IDs(got), err)
	}
	start := time.Now()
	ab.Abandon()
	next(t, w, "stays", 2*ttl+time.Second)
	if d := time.Since(start); d > 2*ttl {
		t.Fatalf("abandoned instance disappeared after %v, want within 2x TTL (%v)", d, 2*ttl)
	}
}

func testBadInput(t *testing.T, reg discovery.Registry) {
	svc := Service(t)
	for _, addr := range []string{"", "localhost", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", ":8080", "http://x:80", "a b:80"} {
		_, err := reg.Register(ctxT(t, 5*time.Second), discovery.Instance{Service: svc, ID: "x", Address: addr})
		if !errors.Is(err, discovery.ErrInvalidInstance) {
			t.Errorf("Register with address %q: err = %v, want ErrInvalidInstance", addr, err)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", addr)) {
			t.Errorf("error %q does not name the address %q", err, addr)
		}
	}
	for _, inst := range []discovery.Instance{
		{Service: "", ID: "x", Address: "127.0.0.1:80"},
		{Service: "has space", ID: "x", Address: "127.0.0.1:80"},
		{Service: svc, ID: "", Address: "127.0.0.1:80"},
		{Service: svc, ID: "a/b", Address: "127.0.0.1:80"},
	} {
		if _, err := reg.Register(ctxT(t, 5*time.Second), inst); !errors.Is(err, discovery.ErrInvalidInstance) {
			t.Errorf("Register(%+v): err = %v, want ErrInvalidInstance", inst, err)
		}
	}
	_, err := reg.Instances(ctxT(t, 5*time.Second), "no-such-"+svc)
	if !errors.Is(err, discovery.ErrUnknownService) || !strings.Contains(err.Error(), `"no-such-`+svc+`"`) {
		t.Fatalf("Instances of an unknown service: %v; want ErrUnknownService naming it", err)
	}
	if _, err := reg.Register(ctxT(t, 5*time.Second), discovery.Instance{Service: svc, ID: "x", Address: "127.0.0.1:80"},
		discovery.WithTTL(time.Millisecond)); err == nil {
		t.Fatal("Register with a 1ms TTL succeeded")
	}
}

func testResolver(t *testing.T, reg discovery.Registry) {
	svc := Service(t)
	r, err := discovery.NewResolver(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Instances(ctxT(t, 5*time.Second), svc)
	if !errors.Is(err, discovery.ErrUnknownService) || !strings.Contains(err.Error(), svc) {
		t.Fatalf("resolving an unknown service: %v; want ErrUnknownService naming it", err)
	}
	updates := make(chan []discovery.Instance, 100)
	stop, err := r.Subscribe(svc, func(insts []discovery.Instance, err error) {
		if err == nil {
			updates <- insts
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	register(t, reg, svc, "a", "127.0.0.1:8001")
	deadline := time.After(5 * time.Second)
	for {
		select {
		case insts := <-updates:
			if strings.Join(IDs(insts), ",") != "a" {
				continue
			}
			got, err := r.Instances(ctxT(t, 5*time.Second), svc)
			if err != nil || strings.Join(IDs(got), ",") != "a" {
				t.Fatalf("Instances = %v, %v; want a", IDs(got), err)
			}
			return
		case <-deadline:
			t.Fatal("subscriber never saw the registration")
		}
	}
}
