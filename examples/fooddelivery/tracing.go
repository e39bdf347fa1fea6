package fooddelivery

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/observe/tracing"
	"github.com/courier-go/courier/rpc/grpcx"
	"github.com/courier-go/courier/rpc/httpx"
	"github.com/courier-go/courier/sqldb"
)

// ScenarioClient is the name Env.TracerProvider is asked for by the
// scenario's client of the order service: its requests are the roots of
// the orders' traces.
const ScenarioClient = "scenario"

// newTracing returns the service's Tracing from env.TracerProvider, or nil
// when tracing is off: no provider, or one that records nothing. A nil
// *tracing.Tracing leaves every hop as it is, so the services cost nothing
// more untraced.
func newTracing(env *Env, service string) *tracing.Tracing {
	if env.TracerProvider == nil {
		return nil
	}
	tp := env.TracerProvider(service)
	if tp == nil {
		return nil
	}
	t := tracing.New(tracing.WithTracerProvider(tp))
	if !t.Enabled() {
		return nil
	}
	return t
}

// outbox returns the producer that writes the node's messages into tx:
// each in a span "create <channel>" under the caller's when traced, whose
// context the row carries to the relay.
func (n *node) outbox(tx sqldb.Execer) broker.Producer {
	p := n.w.Producer(tx)
	if n.tr == nil {
		return p
	}
	return n.tr.Outbox(p)
}

// spanName names a REST server span after the route that served the
// request ("GET /consumers/{id}"), or its method and path until routed.
func spanName(_ string, r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return r.Method + " " + r.URL.Path
}

// otelHTTP configures otelhttp with the Tracing's provider and
// propagator.
func otelHTTP(tr *tracing.Tracing) []otelhttp.Option {
	return []otelhttp.Option{otelhttp.WithTracerProvider(tr.TracerProvider()), otelhttp.WithPropagators(tr.Propagator())}
}

// httpHandler serves h in a server span per request when the node is
// traced (httpx.WithServerTracing).
func (n *node) httpHandler(h http.Handler) (http.Handler, error) {
	if n.tr == nil {
		return h, nil
	}
	return httpx.Handler(h, httpx.WithLogger(n.env.Logger),
		httpx.WithServerTracing(n.name, append(otelHTTP(n.tr), otelhttp.WithSpanNameFormatter(spanName))...))
}

// httpTransport sends each request through rt in a client span when tr
// is not nil, with the trace context in its headers.
func httpTransport(tr *tracing.Tracing, rt http.RoundTripper) http.RoundTripper {
	if tr == nil {
		return rt
	}
	return otelhttp.NewTransport(rt, otelHTTP(tr)...)
}

// grpcServerOptions serve each call in a server span when the node is
// traced (grpcx.ServerTracing).
func (n *node) grpcServerOptions() []grpc.ServerOption {
	if n.tr == nil {
		return nil
	}
	return []grpc.ServerOption{grpcx.ServerTracing(otelGRPC(n.tr)...)}
}

// grpcDialOptions make each call a client span when tr is not nil
// (grpcx.ClientTracing).
func grpcDialOptions(tr *tracing.Tracing) []grpc.DialOption {
	if tr == nil {
		return nil
	}
	return []grpc.DialOption{grpcx.ClientTracing(otelGRPC(tr)...)}
}

func otelGRPC(tr *tracing.Tracing) []otelgrpc.Option {
	return []otelgrpc.Option{otelgrpc.WithTracerProvider(tr.TracerProvider()), otelgrpc.WithPropagators(tr.Propagator())}
}

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

type clientConfig struct {
	tp trace.TracerProvider
}

// WithClientTracing sends each request of the client in a client span made
// with tp, the trace context in its headers (W3C trace context and
// baggage): a request made without a span in its context starts a trace.
func WithClientTracing(tp trace.TracerProvider) ClientOption {
	return func(c *clientConfig) { c.tp = tp }
}

// tracing returns the client's Tracing, or nil when it is not traced.
func (c clientConfig) tracing() *tracing.Tracing {
	if c.tp == nil {
		return nil
	}
	t := tracing.New(tracing.WithTracerProvider(c.tp))
	if !t.Enabled() {
		return nil
	}
	return t
}
