package fooddelivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/rpc/httpx"
)

// endpoint is a REST or gRPC server of a service, registered in the
// registry under the service's name while it runs.
type endpoint struct {
	addr  string
	lease discovery.Lease
	stopF func(ctx context.Context) error
	once  sync.Once
	err   error
}

// listen opens a loopback listener on a free port.
func listen() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return l, nil
}

// register self-registers the endpoint: a lease with a short TTL, so that
// a crashed instance leaves the registry within seconds. Its metadata says
// which protocol it speaks ("protocol": "http" or "grpc"), and what else
// metadata adds; version is the service's API version, if known.
func register(ctx context.Context, reg discovery.Registry, service, protocol, addr, version string, metadata map[string]string) (discovery.Lease, error) {
	md := map[string]string{metaProtocol: protocol}
	maps.Copy(md, metadata)
	inst := discovery.Instance{Service: service, ID: strings.NewReplacer(":", "-", ".", "-").Replace(addr), Address: addr,
		Version: version, Metadata: md}
	lease, err := reg.Register(ctx, inst, discovery.WithTTL(3*time.Second))
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", inst, err)
	}
	return lease, nil
}

// health serves liveness (/healthz) and readiness (/readyz) on mux for
// the node: ready while its database and its broker answer, so that a
// load balancer or an orchestrator stops sending it requests while either
// is unreachable.
func (n *node) health(mux *http.ServeMux) error {
	h, err := httpx.NewHealth(2 * time.Second)
	if err != nil {
		return err
	}
	if err := h.AddCheck("database", n.db.PingContext); err != nil {
		return err
	}
	if p, ok := n.b.(broker.Pinger); ok {
		if err := h.AddCheck("broker", p.Ping); err != nil {
			return err
		}
	}
	h.Register(mux)
	return nil
}

// metaProtocol is the registry metadata that says which protocol an
// endpoint speaks: a service may register a gRPC and an HTTP endpoint
// under its name, and its clients pick those they speak.
const metaProtocol = "protocol"

// speaks selects the instances that speak protocol.
func speaks(protocol string) discovery.Health {
	return discovery.HealthFunc(func(i discovery.Instance) bool { return i.Metadata[metaProtocol] == protocol })
}

// serveAPI adds the node's health checks, its API documents and its
// metrics (/metrics) to mux, which holds its REST routes if it has any,
// serves it and registers it as the service, with the API's metadata and
// where its metrics are (discovery.MetadataMetrics).
func (n *node) serveAPI(ctx context.Context, mux *http.ServeMux, api *serviceAPI) (*endpoint, error) {
	if err := n.health(mux); err != nil {
		return nil, err
	}
	api.register(mux)
	// The metrics are for operators' tools, not the service's clients:
	// the endpoint is in the registration, not in the OpenAPI document.
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{}))
	md := api.metadata()
	md[discovery.MetadataMetrics] = "/metrics"
	h, err := n.httpHandler(mux)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.name, err)
	}
	e, err := serveHTTP(ctx, n.env.Registry, n.name, h, api.spec.Version(), md)
	if err != nil {
		return nil, err
	}
	n.web = e
	n.onStop(e.stop)
	return e, nil
}

// serveHTTP serves h and registers it as service, with the service's
// version and metadata.
func serveHTTP(ctx context.Context, reg discovery.Registry, service string, h http.Handler, version string, metadata map[string]string) (*endpoint, error) {
	l, err := listen()
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l) // returns when the server is shut down
	}()
	e := &endpoint{addr: l.Addr().String()}
	e.stopF = func(ctx context.Context) error {
		// Shutdown counts a connection that sent nothing yet as busy for
		// 5s; a second is plenty for the example's short requests.
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close() // requests still running are cut short
		}
		<-done
		return nil
	}
	if e.lease, err = register(ctx, reg, service, "http", e.addr, version, metadata); err != nil {
		_ = e.stop(ctx)
		return nil, err
	}
	return e, nil
}

// serveGRPC serves the gRPC services that add registers on a new server
// made with opts, and registers the server as service.
func serveGRPC(ctx context.Context, reg discovery.Registry, service string, add func(*grpc.Server), opts ...grpc.ServerOption) (*endpoint, error) {
	l, err := listen()
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(opts...)
	add(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l) // returns when the server stops
	}()
	e := &endpoint{addr: l.Addr().String()}
	e.stopF = func(ctx context.Context) error {
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			srv.Stop()
			<-stopped
		}
		<-done
		return nil
	}
	if e.lease, err = register(ctx, reg, service, "grpc", e.addr, "", nil); err != nil {
		_ = e.stop(ctx)
		return nil, err
	}
	return e, nil
}

// stop stops the server. When ctx is already done (a crash), the
// registration is abandoned and expires with its lease; otherwise it is
// removed first, so that clients stop sending requests, and the requests
// under way are finished.
func (e *endpoint) stop(ctx context.Context) error {
	e.once.Do(func() {
		if e.lease == nil {
			e.err = e.stopF(ctx)
			return
		}
		if ctx.Err() != nil {
			// A crash: stop the heartbeats where the registry allows it,
			// and let the registration expire.
			e.err = e.stopF(ctx)
			if a, ok := e.lease.(interface{ Abandon() }); ok {
				a.Abandon()
			}
			return
		}
		e.err = errors.Join(e.lease.Deregister(ctx), e.stopF(ctx))
	})
	return e.err
}

// stopServing stops the server but leaves its registration in place, as a
// hung or crashed process would: clients still find it and their calls
// fail, which is what circuit breakers and fallbacks are for.
func (e *endpoint) stopServing(context.Context) error {
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	return e.stopF(dead) // at once, as a crash
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
