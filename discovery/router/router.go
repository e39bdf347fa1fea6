// Package router is server-side discovery: a reverse proxy that routes each
// request by host and path prefix to a logical service, resolves the
// service through the registry, balances among its available instances and
// ejects instances whose connections fail. It proxies REST (HTTP/1.1 and
// HTTP/2) and gRPC (HTTP/2, cleartext or TLS, streaming included); clients
// need to know only the router's address. A route may narrow its service
// to the instances whose registry metadata says they serve it
// (Route.Metadata): two major versions of an API side by side, each path
// prefix sent to the instances that serve its version.
package router

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/balancer"
	"github.com/courier-go/courier/discovery/httplb"
)

// Upstream protocols of a route.
const (
	// ProtocolHTTP speaks HTTP/1.1 to instances (REST).
	ProtocolHTTP = "http"
	// ProtocolH2C speaks HTTP/2 over cleartext to instances (gRPC).
	ProtocolH2C = "h2c"
	// ProtocolHTTPS speaks HTTP/2 or HTTP/1.1 over TLS to instances (REST
	// or gRPC with TLS).
	ProtocolHTTPS = "https"
)

// Route sends matching requests to a service.
type Route struct {
	// Host, when set, must equal the request's host (port ignored).
	Host string `json:"host,omitempty"`
	// Prefix, when set, must prefix the request's path, e.g. "/orders/" or
	// "/orders.v1.Orders/" for a gRPC service. Longer prefixes win; routes
	// with a Host win over routes without.
	Prefix string `json:"prefix,omitempty"`
	// Service is the logical service name to resolve.
	Service string `json:"service"`
	// Protocol is the upstream protocol (default ProtocolHTTP).
	Protocol string `json:"protocol,omitempty"`
	// StripPrefix removes Prefix from the path before proxying.
	StripPrefix bool `json:"strip_prefix,omitempty"`
	// Metadata, when set, narrows the route to the instances of Service
	// whose registry metadata has each key, with the value given, or with
	// any value where the value given is empty: the instances that serve
	// /v2/ of an API beside those that serve only /v1/, say
	// ({"api.v2": ""}).
	Metadata map[string]string `json:"metadata,omitempty"`
}

func (r Route) String() string {
	s := fmt.Sprintf("%s%s -> %s (%s)", r.Host, r.Prefix, r.Service, r.Protocol)
	if len(r.Metadata) > 0 {
		keys := slices.Sorted(maps.Keys(r.Metadata))
		for i, k := range keys {
			if r.Metadata[k] != "" {
				keys[i] = k + "=" + r.Metadata[k]
			}
		}
		s += " [" + strings.Join(keys, ",") + "]"
	}
	return s
}

// serves reports whether inst has the route's metadata.
func (r Route) serves(inst discovery.Instance) bool {
	for k, want := range r.Metadata {
		if v, ok := inst.Metadata[k]; !ok || want != "" && v != want {
			return false
		}
	}
	return true
}

// Router is an http.Handler proxying to registry-resolved instances. It is
// safe for concurrent use.
type Router struct {
	routes      []*route
	ejector     *balancer.Ejector
	health      []discovery.Health
	newBalancer func() balancer.Balancer
	tlsConfig   *tls.Config
	log         *slog.Logger
}

type route struct {
	Route
	proxy *httputil.ReverseProxy
}

// Option configures a Router.
type Option func(*Router) error

// WithBalancer sets the balancer kind per route (balancer.ByName; default
// least-outstanding).
func WithBalancer(name string) Option {
	return func(r *Router) error {
		if _, err := balancer.ByName(name); err != nil {
			return fmt.Errorf("router: %w", err)
		}
		r.newBalancer = func() balancer.Balancer { b, _ := balancer.ByName(name); return b }
		return nil
	}
}

// WithEjection ejects an instance for d after failures consecutive
// connection failures (default 1 failure, 10s).
func WithEjection(failures int, d time.Duration) Option {
	return func(r *Router) error {
		e, err := balancer.NewEjector(failures, d)
		if err != nil {
			return fmt.Errorf("router: %w", err)
		}
		r.ejector = e
		return nil
	}
}

// WithHealth adds a check instances must pass, e.g. their circuit breaker.
func WithHealth(h discovery.Health) Option {
	return func(r *Router) error {
		if h == nil {
			return errors.New("router: nil health")
		}
		r.health = append(r.health, h)
		return nil
	}
}

// WithUpstreamTLS sets the TLS configuration for ProtocolHTTPS routes
// (default: system roots).
func WithUpstreamTLS(c *tls.Config) Option {
	return func(r *Router) error {
		if c == nil {
			return errors.New("router: nil TLS config")
		}
		r.tlsConfig = c
		return nil
	}
}

// WithLogger sets the logger of proxy errors (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(r *Router) error {
		if l == nil {
			return errors.New("router: nil logger")
		}
		r.log = l
		return nil
	}
}

// New returns a Router for routes, resolving services through res.
func New(res *discovery.Resolver, routes []Route, opts ...Option) (*Router, error) {
	if res == nil {
		return nil, errors.New("router: nil resolver")
	}
	if len(routes) == 0 {
		return nil, errors.New("router: no routes")
	}
	rt := &Router{log: slog.Default(), newBalancer: func() balancer.Balancer { return balancer.LeastOutstanding() }}
	rt.ejector, _ = balancer.NewEjector(1, 10*time.Second)
	for _, o := range opts {
		if err := o(rt); err != nil {
			return nil, err
		}
	}
	bases := map[string]http.RoundTripper{}
	for i, r := range routes {
		if err := discovery.ValidateServiceName(r.Service); err != nil {
			return nil, fmt.Errorf("router: route %d: %w", i, err)
		}
		if r.Host == "" && r.Prefix == "" {
			r.Prefix = "/"
		}
		if r.Prefix != "" && !strings.HasPrefix(r.Prefix, "/") {
			return nil, fmt.Errorf("router: route %d: prefix %q must start with '/'", i, r.Prefix)
		}
		if r.Protocol == "" {
			r.Protocol = ProtocolHTTP
		}
		if bases[r.Protocol] == nil {
			base, err := rt.transport(r.Protocol)
			if err != nil {
				return nil, fmt.Errorf("router: route %d: %w", i, err)
			}
			bases[r.Protocol] = base
		}
		opts := []httplb.Option{httplb.WithBase(bases[r.Protocol]), httplb.WithBalancer(rt.newBalancer()), httplb.WithEjector(rt.ejector)}
		for _, h := range rt.health {
			opts = append(opts, httplb.WithHealth(h))
		}
		if len(r.Metadata) > 0 {
			opts = append(opts, httplb.WithHealth(discovery.HealthFunc(r.serves)))
		}
		lb, err := httplb.New(res, opts...)
		if err != nil {
			return nil, fmt.Errorf("router: route %d: %w", i, err)
		}
		rt.routes = append(rt.routes, &route{Route: r, proxy: rt.proxy(r, lb)})
	}
	// Most specific first: with a host, then by prefix length.
	slices.SortStableFunc(rt.routes, func(a, b *route) int {
		if (a.Host != "") != (b.Host != "") {
			if a.Host != "" {
				return -1
			}
			return 1
		}
		return len(b.Prefix) - len(a.Prefix)
	})
	return rt, nil
}

func (rt *Router) transport(protocol string) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	t.Protocols = new(http.Protocols)
	switch protocol {
	case ProtocolHTTP:
		t.Protocols.SetHTTP1(true)
	case ProtocolH2C:
		t.Protocols.SetUnencryptedHTTP2(true)
	case ProtocolHTTPS:
		t.Protocols.SetHTTP1(true)
		t.Protocols.SetHTTP2(true)
		if rt.tlsConfig != nil {
			t.TLSClientConfig = rt.tlsConfig.Clone()
		}
	default:
		return nil, fmt.Errorf("unknown protocol %q (want %s, %s or %s)", protocol, ProtocolHTTP, ProtocolH2C, ProtocolHTTPS)
	}
	return t, nil
}

func (rt *Router) proxy(r Route, lb *httplb.Transport) *httputil.ReverseProxy {
	scheme := "http"
	if r.Protocol == ProtocolHTTPS {
		scheme = "https"
	}
	target := &url.URL{Scheme: scheme, Host: r.Service}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			if r.StripPrefix && r.Prefix != "" {
				pr.Out.URL.Path = "/" + strings.TrimPrefix(strings.TrimPrefix(pr.In.URL.Path, r.Prefix), "/")
				pr.Out.URL.RawPath = ""
			}
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport:  forwarder{lb},
		BufferPool: bufferPool{},
		// FlushInterval stays 0: ReverseProxy itself flushes each write of
		// a streamed response (of unknown length, as gRPC's, or server-sent
		// events), and responses of known length are spared a timer and a
		// flush per write.
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			status := http.StatusBadGateway
			if errors.Is(err, discovery.ErrUnknownService) || errors.Is(err, discovery.ErrNoAvailableInstance) {
				status = http.StatusServiceUnavailable
			}
			rt.log.Warn("router: proxy failed", "route", r.String(), "path", req.URL.Path, "error", err)
			writeError(w, req, status, err)
		},
	}
}

// forwarder sends the proxy's outbound requests, which ReverseProxy builds
// afresh for each call, without httplb copying them again.
type forwarder struct{ *httplb.Transport }

func (f forwarder) RoundTrip(req *http.Request) (*http.Response, error) { return f.Forward(req) }

// bufferPool lends ReverseProxy the buffers it copies response bodies with,
// instead of its allocating 32 KiB per request.
type bufferPool struct{}

const bufferSize = 32 << 10

var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

func (bufferPool) Get() []byte { return buffers.Get().(*[bufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if len(b) == bufferSize {
		buffers.Put((*[bufferSize]byte)(b))
	}
}

// isGRPC reports whether req is a gRPC call.
func isGRPC(req *http.Request) bool {
	return req.ProtoMajor == 2 && strings.HasPrefix(req.Header.Get("Content-Type"), "application/grpc")
}

// writeError answers a gRPC call with status UNAVAILABLE (or UNIMPLEMENTED
// for 404) in a trailers-only response, and anything else with the HTTP
// status and the error as text.
func writeError(w http.ResponseWriter, req *http.Request, status int, err error) {
	if isGRPC(req) {
		code := 14 // UNAVAILABLE
		if status == http.StatusNotFound {
			code = 12 // UNIMPLEMENTED
		}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", strconv.Itoa(code))
		w.Header().Set("Grpc-Message", url.PathEscape(err.Error()))
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Error(w, err.Error(), status)
}

// ErrNoRoute is answered (404) when no route matches a request.
var ErrNoRoute = errors.New("router: no route")

// ServeHTTP routes req to its service.
func (rt *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	host := req.Host
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.Contains(h, "[") {
		host = h
	}
	for _, r := range rt.routes {
		if r.Host != "" && !strings.EqualFold(r.Host, host) {
			continue
		}
		if r.Prefix != "" && !strings.HasPrefix(req.URL.Path, r.Prefix) {
			continue
		}
		r.proxy.ServeHTTP(w, req)
		return
	}
	writeError(w, req, http.StatusNotFound, fmt.Errorf("%w for host %q and path %q", ErrNoRoute, req.Host, req.URL.Path))
}

// Ejected lists the instances ejected now, as "service/id@address".
func (rt *Router) Ejected() []string { return rt.ejector.Ejected() }

// Routes returns the routes, most specific first.
func (rt *Router) Routes() []Route {
	out := make([]Route, len(rt.routes))
	for i, r := range rt.routes {
		out[i] = r.Route
	}
	return out
}

// NewServer returns an http.Server serving h over HTTP/1.1 and HTTP/2, with
// TLS (when started with ServeTLS) and over cleartext with prior knowledge,
// as gRPC clients without TLS connect.
func NewServer(addr string, h http.Handler) *http.Server {
	s := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	s.Protocols.SetHTTP1(true)
	s.Protocols.SetHTTP2(true)
	s.Protocols.SetUnencryptedHTTP2(true)
	return s
}
