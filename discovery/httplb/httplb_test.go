package httplb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/balancer"
	"github.com/courier-go/courier/discovery/httplb"
	"github.com/courier-go/courier/discovery/memory"
)

// backend starts an HTTP server answering with its id and registers it.
func backend(t *testing.T, reg discovery.Registry, service, id string) (*httptest.Server, discovery.Lease) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", id, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	l, err := reg.Register(context.Background(), discovery.Instance{Service: service, ID: id,
		Address: strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	return srv, l
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func newClient(t *testing.T, reg discovery.Registry, opts ...httplb.Option) *http.Client {
	t.Helper()
	r, err := discovery.NewResolver(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	tr, err := httplb.New(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func TestBalancesAndFollowsRegistry(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	backend(t, reg, "orders", "a")
	_, lb := backend(t, reg, "orders", "b")
	c := newClient(t, reg)
	seen := map[string]int{}
	for range 10 {
		body, err := get(c, "http://orders/orders/42")
		if err != nil {
			t.Fatal(err)
		}
		id, path, _ := strings.Cut(body, " ")
		if path != "/orders/42" {
			t.Fatalf("path %q", path)
		}
		seen[id]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Fatalf("round robin spread %v, want 5 each", seen)
	}
	lb.Deregister(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for n := 0; n < 5; {
		body, err := get(c, "http://orders/x")
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(body, "b ") {
			n = 0
			if time.Now().After(deadline) {
				t.Fatal("still routed to a deregistered instance")
			}
			continue
		}
		n++
	}
}

func TestSkipsOpenBreakerAndUnhealthy(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	backend(t, reg, "orders", "a")
	backend(t, reg, "orders", "b")
	_, lc := backend(t, reg, "orders", "c")
	inst := lc.Instance()
	inst.Unhealthy = true
	if err := lc.Update(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	breakerOpen := discovery.HealthFunc(func(i discovery.Instance) bool { return i.ID != "a" })
	c := newClient(t, reg, httplb.WithHealth(breakerOpen), httplb.WithBalancer(balancer.LeastOutstanding()))
	for range 20 {
		body, err := get(c, "http://orders/")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(body, "b ") {
			t.Fatalf("routed to %q; only b is healthy with a closed breaker", body)
		}
	}
}

func TestErrorsNameTheService(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	c := newClient(t, reg)
	_, err := get(c, "http://payments/x")
	if !errors.Is(err, discovery.ErrUnknownService) || !strings.Contains(err.Error(), `"payments"`) {
		t.Fatalf("unknown service: %v", err)
	}
	if _, err := httplb.New(nil); err == nil {
		t.Fatal("nil resolver accepted")
	}
}

// TestForwardSendsTheRequestItself checks that Forward behaves as
// RoundTrip (instance address as URL host and Host header, InstanceFrom
// for the base, errors naming the service) while sending req itself.
func TestForwardSendsTheRequestItself(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", r.Host, r.URL.Path, r.Header.Get("X-Test"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if _, err := reg.Register(context.Background(), discovery.Instance{Service: "orders", ID: "a", Address: addr}); err != nil {
		t.Fatal(err)
	}
	dead, _ := backend(t, reg, "kitchen", "k")
	dead.Close()
	r, err := discovery.NewResolver(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var sent *http.Request
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		sent = req
		if inst, ok := httplb.InstanceFrom(req); !ok || inst.ID != "a" && inst.ID != "k" {
			t.Errorf("InstanceFrom: %v, %v", inst, ok)
		}
		return http.DefaultTransport.RoundTrip(req)
	})
	tr, err := httplb.New(r, httplb.WithBase(base))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://orders/orders/42", nil)
	req.Host = "front.example"
	req.Header.Set("X-Test", "kept")
	resp, err := tr.Forward(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := addr + " /orders/42 kept"; string(b) != want {
		t.Fatalf("instance saw %q, want %q", b, want)
	}
	if sent.URL != req.URL || req.URL.Host != addr {
		t.Fatalf("Forward sent a copy of the URL (%v, request's %v)", sent.URL, req.URL)
	}

	req, _ = http.NewRequest(http.MethodGet, "http://kitchen:8080/tickets?x=1", nil)
	_, err = tr.Forward(req)
	if err == nil || !strings.Contains(err.Error(), "GET http://kitchen:8080/tickets?x=1 via kitchen/k@") {
		t.Fatalf("error of a refused connection: %v, want it to name the service's URL and the instance", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestEjectorSkipsRefusingInstance(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	backend(t, reg, "orders", "a")
	dead, _ := backend(t, reg, "orders", "b")
	dead.Close() // registered, but refuses connections
	ej, err := balancer.NewEjector(1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, reg, httplb.WithEjector(ej))
	failures := 0
	for range 10 {
		if _, err := get(c, "http://orders/"); err != nil {
			failures++
		}
	}
	if failures != 1 {
		t.Fatalf("%d failed requests, want exactly 1 before b is ejected", failures)
	}
}

func Example() {
	ctx := context.Background()
	reg := memory.New()
	defer reg.Close()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "order %s", strings.TrimPrefix(r.URL.Path, "/orders/"))
	}))
	defer srv.Close()
	lease, err := reg.Register(ctx, discovery.Instance{Service: "orders", ID: "orders-1",
		Address: strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		panic(err)
	}
	defer lease.Deregister(ctx)

	resolver, _ := discovery.NewResolver(reg)
	defer resolver.Close()
	transport, _ := httplb.New(resolver, httplb.WithBalancer(balancer.LeastOutstanding()))
	client := &http.Client{Transport: transport}

	resp, err := client.Get("http://orders/orders/42") // "orders" is the service name
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: order 42
}
