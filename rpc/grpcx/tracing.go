package grpcx

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
)

// ClientTracing makes each call of a client connection an OpenTelemetry
// client span, with the trace context in the call's metadata, through
// OpenTelemetry's own gRPC instrumentation (otelgrpc's stats handler,
// which sees every attempt the interceptors make). opts configure
// otelgrpc; pass otelgrpc.WithTracerProvider and otelgrpc.WithPropagators
// (see tracing.Tracing's TracerProvider and Propagator), or otelgrpc uses
// OpenTelemetry's global ones.
func ClientTracing(opts ...otelgrpc.Option) grpc.DialOption {
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(opts...))
}

// ServerTracing serves each call in an OpenTelemetry server span, a child
// of the caller's span whose context the call's metadata carries, through
// otelgrpc. Calls the server's limits refuse are traced too.
func ServerTracing(opts ...otelgrpc.Option) grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(opts...))
}
