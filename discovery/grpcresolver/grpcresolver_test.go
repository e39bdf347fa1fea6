package grpcresolver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/grpcresolver"
	"github.com/courier-go/courier/discovery/memory"
)

// serve starts a gRPC server with the health service and registers it.
func serve(t *testing.T, reg discovery.Registry, service, id string) discovery.Lease {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(l)
	t.Cleanup(s.Stop)
	lease, err := reg.Register(context.Background(), discovery.Instance{Service: service, ID: id, Address: l.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	return lease
}

func dial(t *testing.T, reg discovery.Registry, target string) healthpb.HealthClient {
	t.Helper()
	r, err := discovery.NewResolver(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	b, err := grpcresolver.NewBuilder(r)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(target, grpc.WithResolvers(b), grpc.WithDefaultServiceConfig(grpcresolver.RoundRobin),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// peers calls n times and counts the servers that answered.
func peers(t *testing.T, c healthpb.HealthClient, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var p peer.Peer
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		seen[p.Addr.String()]++
	}
	return seen
}

func TestRoundRobinFollowsRegistry(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	a := serve(t, reg, "orders", "a")
	b := serve(t, reg, "orders", "b")
	c := dial(t, reg, "courier:///orders")
	deadline := time.Now().Add(5 * time.Second)
	for {
		seen := peers(t, c, 10)
		if seen[a.Instance().Address] == 5 && seen[b.Instance().Address] == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls spread %v, want 5 on each instance", seen)
		}
	}
	b.Deregister(context.Background())
	deadline = time.Now().Add(5 * time.Second)
	for {
		seen := peers(t, c, 10)
		if seen[a.Instance().Address] == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls after deregistering b: %v", seen)
		}
	}
	// Marking an instance unhealthy takes it out of rotation.
	serve(t, reg, "orders", "c")
	inst := a.Instance()
	inst.Unhealthy = true
	a.Update(context.Background(), inst)
	deadline = time.Now().Add(5 * time.Second)
	for {
		seen := peers(t, c, 10)
		if seen[inst.Address] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unhealthy instance still called: %v", seen)
		}
	}
}

func TestUnknownServiceNamed(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	c := dial(t, reg, "courier:///payments")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil || !strings.Contains(err.Error(), `unknown service "payments"`) {
		t.Fatalf("call to an unknown service: %v", err)
	}
	if _, err := grpcresolver.NewBuilder(nil); err == nil {
		t.Fatal("nil resolver accepted")
	}
	if !errors.Is(&discovery.UnknownServiceError{}, discovery.ErrUnknownService) {
		t.Fatal("UnknownServiceError does not wrap ErrUnknownService")
	}
}

func Example() {
	reg := memory.New()
	defer reg.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	defer srv.Stop()
	reg.Register(context.Background(), discovery.Instance{Service: "orders", ID: "orders-1", Address: l.Addr().String()})

	resolver, _ := discovery.NewResolver(reg)
	defer resolver.Close()
	builder, _ := grpcresolver.NewBuilder(resolver)
	conn, err := grpc.NewClient("courier:///orders", grpc.WithResolvers(builder),
		grpc.WithDefaultServiceConfig(grpcresolver.RoundRobin),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println(resp.GetStatus(), err)
	// Output: SERVING <nil>
}
