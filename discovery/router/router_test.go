package router_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/discovery/router"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func register(t testing.TB, reg discovery.Registry, service, id, addr string) discovery.Lease {
	t.Helper()
	l, err := reg.Register(context.Background(), discovery.Instance{Service: service, ID: id, Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// restInstance serves "<id> <path>" and registers itself.
func restInstance(t testing.TB, reg discovery.Registry, service, id string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", id, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	register(t, reg, service, id, strings.TrimPrefix(srv.URL, "http://"))
	return srv
}

// grpcInstance serves the gRPC health service over h2c and registers itself.
func grpcInstance(t testing.TB, reg discovery.Registry, service, id string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus(id, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	register(t, reg, service, id, l.Addr().String())
}

func newRouter(t testing.TB, reg discovery.Registry, routes []router.Route, opts ...router.Option) *router.Router {
	t.Helper()
	res, err := discovery.NewResolver(reg, discovery.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	rt, err := router.New(res, routes, append([]router.Option{router.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// serve runs rt on a loopback listener (h2c and HTTP/1.1) and returns its address.
func serve(t testing.TB, rt http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := router.NewServer("", rt)
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

func get(t testing.TB, c *http.Client, url, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRESTRoutesByPrefixAndHost(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	restInstance(t, reg, "orders", "o1")
	restInstance(t, reg, "orders", "o2")
	restInstance(t, reg, "kitchen", "k1")
	addr := serve(t, newRouter(t, reg, []router.Route{
		{Prefix: "/orders/", Service: "orders"},
		{Prefix: "/kitchen/", Service: "kitchen", StripPrefix: true},
		{Host: "kitchen.example", Service: "kitchen"},
		{Prefix: "/payments/", Service: "payments"},
	}))
	c := &http.Client{Timeout: 5 * time.Second}
	seen := map[string]bool{}
	for range 4 {
		code, body := get(t, c, "http://"+addr+"/orders/42", "")
		if code != 200 || !strings.HasSuffix(body, " /orders/42") {
			t.Fatalf("orders: %d %q", code, body)
		}
		seen[strings.Fields(body)[0]] = true
	}
	if !seen["o1"] || !seen["o2"] {
		t.Fatalf("orders instances reached: %v, want both", seen)
	}
	if code, body := get(t, c, "http://"+addr+"/kitchen/tickets/1", ""); code != 200 || body != "k1 /tickets/1" {
		t.Fatalf("kitchen by prefix: %d %q", code, body)
	}
	if code, body := get(t, c, "http://"+addr+"/anything", "kitchen.example:80"); code != 200 || body != "k1 /anything" {
		t.Fatalf("kitchen by host: %d %q", code, body)
	}
	if code, body := get(t, c, "http://"+addr+"/payments/1", ""); code != 503 || !strings.Contains(body, `unknown service "payments"`) {
		t.Fatalf("unknown service: %d %q", code, body)
	}
	if code, _ := get(t, c, "http://"+addr+"/nowhere", ""); code != 404 {
		t.Fatalf("no route: %d", code)
	}
}

// TestRoutesByInstanceMetadata: two versions of an API side by side; the
// instances say in the registry which versions they serve, and each
// version's route reaches only those that serve it.
func TestRoutesByInstanceMetadata(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	for id, md := range map[string]map[string]string{
		"old": {"api.v1": "1.4.0"},
		"new": {"api.v1": "1.4.0", "api.v2": "2.0.0"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", id, r.URL.Path)
		}))
		t.Cleanup(srv.Close)
		inst := discovery.Instance{Service: "orders", ID: id, Address: strings.TrimPrefix(srv.URL, "http://"), Metadata: md}
		if _, err := reg.Register(context.Background(), inst); err != nil {
			t.Fatal(err)
		}
	}
	routes := []router.Route{
		{Prefix: "/v1/", Service: "orders", Metadata: map[string]string{"api.v1": ""}},
		{Prefix: "/v2/", Service: "orders", Metadata: map[string]string{"api.v2": ""}},
		{Prefix: "/v2.1/", Service: "orders", Metadata: map[string]string{"api.v2": "2.1.0"}},
	}
	rt := newRouter(t, reg, routes)
	if got := rt.Routes()[2].String(); got != "/v2/ -> orders (http) [api.v2]" {
		t.Errorf("route %q", got)
	}
	addr := serve(t, rt)
	c := &http.Client{Timeout: 5 * time.Second}
	seen := map[string]bool{}
	for range 8 {
		code, body := get(t, c, "http://"+addr+"/v1/orders/1", "")
		if code != 200 {
			t.Fatalf("/v1/: %d %q", code, body)
		}
		seen[strings.Fields(body)[0]] = true
		if code, body := get(t, c, "http://"+addr+"/v2/orders/1", ""); code != 200 || body != "new /v2/orders/1" {
			t.Fatalf("/v2/: %d %q, want the instance that serves v2", code, body)
		}
	}
	if !seen["old"] || !seen["new"] {
		t.Errorf("/v1/ reached %v, want both instances", seen)
	}
	if code, body := get(t, c, "http://"+addr+"/v2.1/orders/1", ""); code != 503 || !strings.Contains(body, "no available instance") {
		t.Errorf("/v2.1/, which no instance serves: %d %q", code, body)
	}
}

// TestStreamsResponses checks that the parts of a streamed response (of
// unknown length, or server-sent events) reach the client as the instance
// flushes them, not when the response ends.
func TestStreamsResponses(t *testing.T) {
	for _, contentType := range []string{"application/x-ndjson", "text/event-stream"} {
		t.Run(contentType, func(t *testing.T) {
			reg := memory.New()
			defer reg.Close()
			next := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentType)
				io.WriteString(w, "first\n")
				w.(http.Flusher).Flush()
				select {
				case <-next: // the client has read the first part
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "second\n")
			}))
			defer srv.Close()
			register(t, reg, "events", "e1", strings.TrimPrefix(srv.URL, "http://"))
			addr := serve(t, newRouter(t, reg, []router.Route{{Service: "events"}}))
			c := &http.Client{Timeout: 5 * time.Second}
			resp, err := c.Get("http://" + addr + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			buf := make([]byte, len("first\n"))
			if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first\n" {
				t.Fatalf("first part: %q, %v", buf, err)
			}
			close(next)
			if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "second\n" {
				t.Fatalf("second part: %q, %v", rest, err)
			}
		})
	}
}

func TestEjectsFailingInstance(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	restInstance(t, reg, "orders", "live")
	dead := restInstance(t, reg, "orders", "dead")
	dead.Close()
	rt := newRouter(t, reg, []router.Route{{Service: "orders"}}, router.WithBalancer("round-robin"))
	addr := serve(t, rt)
	c := &http.Client{Timeout: 5 * time.Second}
	failures := 0
	for range 10 {
		if code, _ := get(t, c, "http://"+addr+"/x", ""); code == http.StatusBadGateway {
			failures++
		}
	}
	if failures != 1 {
		t.Fatalf("%d requests failed, want 1 before the dead instance is ejected", failures)
	}
	if ej := rt.Ejected(); len(ej) != 1 || !strings.Contains(ej[0], "orders/dead@") {
		t.Fatalf("ejected: %v", ej)
	}
}

func checkGRPC(t testing.TB, conn *grpc.ClientConn, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: id})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC through the router: %v, %v", resp, err)
	}
}

func TestGRPCOverH2CAndTLS(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	grpcInstance(t, reg, "health", "h1")
	rt := newRouter(t, reg, []router.Route{{Prefix: "/grpc.health.v1.Health/", Service: "health", Protocol: router.ProtocolH2C},
		{Prefix: "/grpc.reflection.", Service: "missing", Protocol: router.ProtocolH2C}})

	// Cleartext HTTP/2 from the client.
	conn, err := grpc.NewClient(serve(t, rt), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	checkGRPC(t, conn, "h1")

	// Server streaming works through the proxy.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.Recv(); err != nil || msg.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("stream: %v, %v", msg, err)
	}

	// A route to an unknown service answers UNAVAILABLE naming it.
	err = conn.Invoke(ctx, "/grpc.reflection.v1.ServerReflection/Nope", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), `unknown service "missing"`) {
		t.Fatalf("unknown service over gRPC: %v", err)
	}

	// TLS from the client.
	ts := httptest.NewUnstartedServer(rt)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	tconn, err := grpc.NewClient(strings.TrimPrefix(ts.URL, "https://"),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer tconn.Close()
	checkGRPC(t, tconn, "h1")
}

func TestBadConfiguration(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	res, _ := discovery.NewResolver(reg)
	defer res.Close()
	for name, routes := range map[string][]router.Route{
		"no routes":    nil,
		"bad service":  {{Prefix: "/", Service: "a b"}},
		"bad prefix":   {{Prefix: "orders", Service: "orders"}},
		"bad protocol": {{Prefix: "/", Service: "orders", Protocol: "ftp"}},
	} {
		if _, err := router.New(res, routes); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := router.New(res, []router.Route{{Service: "orders"}}, router.WithBalancer("fastest")); err == nil {
		t.Error("unknown balancer accepted")
	}
	rt, _ := router.New(res, []router.Route{{Prefix: "/a/", Service: "a"}, {Prefix: "/a/b/", Service: "b"}, {Host: "h", Service: "c"}})
	var order []string
	for _, r := range rt.Routes() {
		order = append(order, r.Service)
	}
	if !slices.Equal(order, []string{"c", "b", "a"}) {
		t.Fatalf("route order %v, want host first then longest prefix", order)
	}
}
