package grpcx_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/grpcx"
)

// A call through the policies with ClientTracing, to a server with
// ServerTracing, is a client span under the caller's and a server span
// under it, in one trace; a retried call shows each attempt.
func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prop := propagation.TraceContext{}
	var (
		mu          sync.Mutex
		serverSpans []trace.SpanContext
	)
	// The first call fails with Unavailable, to be retried.
	srv := startServer(t, grpcx.ServerTracing(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop)),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			mu.Lock()
			serverSpans = append(serverSpans, trace.SpanContextFromContext(ctx))
			first := len(serverSpans) == 1
			mu.Unlock()
			if first {
				return nil, status.Error(codes.Unavailable, "warming up")
			}
			return h(ctx, req)
		}))
	chain, err := resilience.NewChain(resilience.WithLogger(quiet()), resilience.WithRetry(resilience.RetryIf(grpcx.Retryable),
		resilience.Backoff(time.Millisecond, time.Millisecond), resilience.MaxAttempts(3)))
	if err != nil {
		t.Fatal(err)
	}
	unary, err := grpcx.UnaryClientInterceptor(chain, grpcx.WithIdempotentMethods(testpb.TestService_UnaryCall_FullMethodName))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(unary), grpcx.ClientTracing(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	ctx, root := tp.Tracer("test").Start(context.Background(), "request")
	if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	root.End()
	var clients, servers []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindClient:
			clients = append(clients, s)
		case trace.SpanKindServer:
			servers = append(servers, s)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(clients) != 2 || len(servers) != 2 || len(serverSpans) != 2 {
		t.Fatalf("%d client spans, %d server spans, %d calls handled; want 2 of each, one per attempt", len(clients), len(servers), len(serverSpans))
	}
	for i, c := range clients {
		if c.Parent().SpanID() != root.SpanContext().SpanID() || c.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("client span %d is not under the request's span", i)
		}
		if !slicesContainsChild(servers, c) {
			t.Errorf("client span %d has no server span under it", i)
		}
	}
	for _, sc := range serverSpans {
		if sc.TraceID() != root.SpanContext().TraceID() {
			t.Error("the handler does not run in the request's trace")
		}
	}
}

func slicesContainsChild(spans []sdktrace.ReadOnlySpan, parent sdktrace.ReadOnlySpan) bool {
	for _, s := range spans {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() {
			return true
		}
	}
	return false
}
