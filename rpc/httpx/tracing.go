package httpx

import (
	"errors"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// WithTracing sends each attempt in an OpenTelemetry client span, with
// the trace context in the request's headers, through OpenTelemetry's
// own HTTP instrumentation (otelhttp): retries show as spans of their
// own, side by side under the caller's span. opts configure otelhttp;
// pass otelhttp.WithTracerProvider and otelhttp.WithPropagators (see
// tracing.Tracing's TracerProvider and Propagator), or otelhttp uses
// OpenTelemetry's global ones. It applies to the base given with
// WithBase, whichever order the options come in.
func WithTracing(opts ...otelhttp.Option) TransportOption {
	return func(c *transportConfig) error {
		c.tracing = append([]otelhttp.Option{}, opts...)
		return nil
	}
}

// WithServerTracing serves each request in an OpenTelemetry server span
// named operation, a child of the caller's span whose context the
// request carries, through otelhttp. It is the outermost wrapper, so that
// requests refused by the concurrency limit or cut by the timeout are
// traced too. opts configure otelhttp, as for WithTracing.
func WithServerTracing(operation string, opts ...otelhttp.Option) ServerOption {
	return func(c *serverConfig) error {
		if operation == "" {
			return errors.New("httpx: WithServerTracing: empty operation")
		}
		c.operation = operation
		c.tracing = append([]otelhttp.Option{}, opts...)
		return nil
	}
}

// traced wraps rt with otelhttp if tracing was asked for.
func traced(rt http.RoundTripper, opts []otelhttp.Option) http.RoundTripper {
	if opts == nil {
		return rt
	}
	return otelhttp.NewTransport(rt, opts...)
}
