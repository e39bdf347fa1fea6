package grpcx_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/grpcx"
)

func benchUnary(b *testing.B, client testpb.TestServiceClient) {
	ctx := context.Background()
	req := &testpb.SimpleRequest{}
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, err := client.UnaryCall(ctx, req); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
}

func fullChain(b *testing.B) *resilience.Chain {
	return chain(b, resilience.WithTimeout(5*time.Second), resilience.WithBulkhead(100),
		resilience.WithCircuitBreaker(resilience.FailureIf(grpcx.Failure)),
		resilience.WithRetry(resilience.RetryIf(grpcx.Retryable)))
}

// BenchmarkLoopbackBare is a plain grpc-go unary call on loopback.
func BenchmarkLoopbackBare(b *testing.B) {
	srv := startServer(b)
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	benchUnary(b, testpb.NewTestServiceClient(conn))
}

// BenchmarkLoopbackPolicies is the same call through the whole chain
// (fallback, retry of an idempotent method, breaker, bulkhead, timeout).
func BenchmarkLoopbackPolicies(b *testing.B) {
	srv := startServer(b)
	benchUnary(b, dial(b, srv.addr, fullChain(b), grpcx.WithIdempotentMethods(unaryMethod),
		grpcx.WithFallback(grpcx.StaticReplies(nil))))
}

// BenchmarkInterceptorPolicies is the cost of the interceptor and the whole
// chain around a unary call whose invoker answers at once, without a
// network: what the policies add to each call.
func BenchmarkInterceptorPolicies(b *testing.B) {
	in, err := grpcx.UnaryClientInterceptor(fullChain(b), grpcx.WithIdempotentMethods(unaryMethod),
		grpcx.WithFallback(grpcx.StaticReplies(nil)),
		grpcx.WithKey(func(context.Context, string, *grpc.ClientConn) string { return "orders:443" }))
	if err != nil {
		b.Fatal(err)
	}
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx, req, reply := context.Background(), &testpb.SimpleRequest{}, &testpb.SimpleResponse{}
	b.ReportAllocs()
	for b.Loop() {
		// With the call option generated stubs pass.
		if err := in(ctx, unaryMethod, req, reply, nil, invoker, grpc.StaticMethod()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejectedOpenBreaker is a unary call refused by an open breaker,
// through the interceptor: no network call.
func BenchmarkRejectedOpenBreaker(b *testing.B) {
	c := fullChain(b)
	benchRejected(b, c, func() { c.Breakers().Get("orders:443").Open() })
}

// BenchmarkRejectedFullBulkhead is a unary call refused by a full bulkhead.
func BenchmarkRejectedFullBulkhead(b *testing.B) {
	c := chain(b, resilience.WithBulkhead(1), resilience.WithTimeout(time.Second))
	benchRejected(b, c, func() { _ = c.Bulkhead().Acquire() })
}

func benchRejected(b *testing.B, c *resilience.Chain, reject func()) {
	in, err := grpcx.UnaryClientInterceptor(c, grpcx.WithKey(func(context.Context, string, *grpc.ClientConn) string { return "orders:443" }))
	if err != nil {
		b.Fatal(err)
	}
	reject()
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		b.Fatal("invoked")
		return nil
	}
	ctx, req, reply := context.Background(), &testpb.SimpleRequest{}, &testpb.SimpleResponse{}
	b.ReportAllocs()
	for b.Loop() {
		if err := in(ctx, unaryMethod, req, reply, nil, invoker); err == nil {
			b.Fatal("not rejected")
		}
	}
}

// BenchmarkLoopbackOverhead alternates a bare unary call and one through the
// whole chain to the same loopback server, so that both see the same
// machine load, and reports both medians and the added p50 latency in
// percent.
func BenchmarkLoopbackOverhead(b *testing.B) {
	srv := startServer(b)
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	clients := [2]testpb.TestServiceClient{testpb.NewTestServiceClient(conn),
		dial(b, srv.addr, fullChain(b), grpcx.WithIdempotentMethods(unaryMethod), grpcx.WithFallback(grpcx.StaticReplies(nil)))}
	ctx, req := context.Background(), &testpb.SimpleRequest{}
	var lat [2][]time.Duration
	i := 0
	for b.Loop() {
		for k := range 2 {
			which := (i + k) % 2
			start := time.Now()
			if _, err := clients[which].UnaryCall(ctx, req); err != nil {
				b.Fatal(err)
			}
			lat[which] = append(lat[which], time.Since(start))
		}
		i++
	}
	var p50 [2]float64
	for k := range 2 {
		slices.Sort(lat[k])
		p50[k] = float64(lat[k][len(lat[k])/2].Nanoseconds())
	}
	b.ReportMetric(p50[0], "p50-bare-ns")
	b.ReportMetric(p50[1], "p50-policies-ns")
	b.ReportMetric(100*(p50[1]-p50[0])/p50[0], "p50-added-%")
}
