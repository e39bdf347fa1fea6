package grpcx_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/grpcx"
)

type mode int32

const (
	healthy  mode = iota
	failing       // Unavailable, with a pushback when set
	hanging       // until the call's context ends
	invalid       // InvalidArgument: the caller's fault
	overload      // ResourceExhausted with a 1s pushback
)

// faultServer is a loopback gRPC test service whose behaviour the test
// switches.
type faultServer struct {
	testpb.UnimplementedTestServiceServer
	mode      atomic.Int32
	hits      atomic.Int64
	entered   chan struct{}
	cancelled chan error
	addr      string
}

func startServer(t testing.TB, opts ...grpc.ServerOption) *faultServer {
	t.Helper()
	s := &faultServer{entered: make(chan struct{}, 100), cancelled: make(chan error, 100)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(srv, s)
	grpcx.RegisterHealth(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	s.addr = lis.Addr().String()
	return s
}

func (s *faultServer) set(m mode) { s.mode.Store(int32(m)) }

func (s *faultServer) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.hits.Add(1)
	switch mode(s.mode.Load()) {
	case failing:
		return nil, status.Error(codes.Unavailable, "database down")
	case overload:
		_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", "300"))
		return nil, status.Error(codes.ResourceExhausted, "busy")
	case invalid:
		return nil, status.Error(codes.InvalidArgument, "bad request")
	case hanging:
		s.entered <- struct{}{}
		<-ctx.Done()
		s.cancelled <- ctx.Err()
		return nil, ctx.Err()
	}
	return &testpb.SimpleResponse{Username: "served"}, nil
}

func (s *faultServer) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	s.hits.Add(1)
	if mode(s.mode.Load()) == failing {
		return status.Error(codes.Unavailable, "database down")
	}
	for range 3 {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{}); err != nil {
			return err
		}
	}
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func dial(t testing.TB, addr string, chain *resilience.Chain, opts ...grpcx.ClientOption) testpb.TestServiceClient {
	t.Helper()
	unary, err := grpcx.UnaryClientInterceptor(chain, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := grpcx.StreamClientInterceptor(chain)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testpb.NewTestServiceClient(conn)
}

func chain(t testing.TB, opts ...resilience.Option) *resilience.Chain {
	t.Helper()
	c, err := resilience.NewChain(append([]resilience.Option{resilience.WithLogger(quiet())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const unaryMethod = "/grpc.testing.TestService/UnaryCall"

// TestBreakerKeyHidesTargetPassword calls through a connection whose
// target holds a password: the breaker's key, which logs and metric
// labels show, hides it.
func TestBreakerKeyHidesTargetPassword(t *testing.T) {
	srv := startServer(t)
	c := chain(t, resilience.WithCircuitBreaker(resilience.FailureCount(3, 3)))
	client := dial(t, "passthrough://courier:s3cret@/"+srv.addr, c)
	if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	keys := slices.Collect(maps.Keys(c.Breakers().Snapshot()))
	if len(keys) != 1 || strings.Contains(keys[0], "s3cret") || !strings.Contains(keys[0], srv.addr) {
		t.Fatalf("breaker keys %q, want the target without its password", keys)
	}
}

func TestBreakerAgainstFailingServer(t *testing.T) {
	srv := startServer(t)
	c := chain(t, resilience.WithCircuitBreaker(resilience.FailureCount(3, 3), resilience.OpenDelay(100*time.Millisecond),
		resilience.FailureIf(grpcx.Failure)))
	client := dial(t, srv.addr, c)
	ctx := context.Background()

	// The caller's own mistakes do not open the breaker.
	srv.set(invalid)
	for range 3 {
		if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("invalid: %v", err)
		}
	}
	if c.Breakers().State(srv.addr) != resilience.Closed {
		t.Fatal("InvalidArgument opened the breaker")
	}

	srv.set(failing)
	for range 3 {
		if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("failing: %v", err)
		}
	}
	if got := c.Breakers().State(srv.addr); got != resilience.Open {
		t.Fatalf("breaker %v, want open", got)
	}
	hits := srv.hits.Load()
	_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
	if !errors.Is(err, resilience.ErrBreakerOpen) || status.Code(err) != codes.Unavailable {
		t.Fatalf("call while open: %v (code %v)", err, status.Code(err))
	}
	if srv.hits.Load() != hits {
		t.Fatal("the open breaker let a call reach the server")
	}

	srv.set(healthy)
	time.Sleep(120 * time.Millisecond)
	if r, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil || r.Username != "served" {
		t.Fatalf("probe: %v %v", r, err)
	}
	if got := c.Breakers().State(srv.addr); got != resilience.Closed {
		t.Fatalf("breaker %v after the probe, want closed", got)
	}
}

func TestBulkheadRejectsExcessImmediately(t *testing.T) {
	srv := startServer(t)
	srv.set(hanging)
	c := chain(t, resilience.WithBulkhead(2))
	client := dial(t, srv.addr, c)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _ = client.UnaryCall(ctx, &testpb.SimpleRequest{}) })
	}
	<-srv.entered
	<-srv.entered
	start := time.Now()
	_, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
	if !errors.Is(err, resilience.ErrBulkheadFull) {
		t.Fatalf("third call: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("rejection took %v", d)
	}
	cancel()
	wg.Wait()
}

func TestTimeoutCancelsServerWork(t *testing.T) {
	srv := startServer(t)
	srv.set(hanging)
	client := dial(t, srv.addr, chain(t, resilience.WithTimeout(50*time.Millisecond)))
	_, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
	if !errors.Is(err, resilience.ErrTimeout) || status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err %v (code %v)", err, status.Code(err))
	}
	select {
	case err := <-srv.cancelled:
		if err == nil {
			t.Fatal("server context not ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server's context was not cancelled")
	}
}

func TestRetry(t *testing.T) {
	pushback := func(t *testing.T, methods []string, opts ...grpc.CallOption) {
		srv := startServer(t)
		srv.set(overload)
		client := dial(t, srv.addr, chain(t, resilience.WithRetry(resilience.MaxAttempts(2),
			resilience.Backoff(time.Millisecond, time.Millisecond), resilience.RetryIf(grpcx.Retryable))),
			grpcx.WithIdempotentMethods(methods...))
		go func() {
			for srv.hits.Load() < 1 {
				time.Sleep(time.Millisecond)
			}
			srv.set(healthy)
		}()
		start := time.Now()
		if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, opts...); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("retried after %v, before the 300ms pushback", d)
		}
		if srv.hits.Load() != 2 {
			t.Fatalf("hits %d", srv.hits.Load())
		}
	}
	t.Run("idempotent method, honouring pushback", func(t *testing.T) {
		pushback(t, []string{unaryMethod})
	})
	t.Run("call options of the caller, honouring pushback", func(t *testing.T) {
		var header metadata.MD
		pushback(t, nil, grpcx.Idempotent(), grpc.Header(&header))
		if header == nil {
			t.Fatal("the caller's own call option was not applied")
		}
	})
	t.Run("not idempotent", func(t *testing.T) {
		srv := startServer(t)
		srv.set(failing)
		client := dial(t, srv.addr, chain(t, resilience.WithRetry(resilience.Backoff(time.Millisecond, time.Millisecond))))
		_, _ = client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
		if srv.hits.Load() != 1 {
			t.Fatalf("sent %d times", srv.hits.Load())
		}
		// The call option makes one call idempotent.
		_, _ = client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpcx.Idempotent())
		if srv.hits.Load() != 4 {
			t.Fatalf("sent %d times in all, want 1+3", srv.hits.Load())
		}
	})
}

// resetListener accepts connections and resets them at once.
func resetListener(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			_ = conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	}()
	return lis.Addr().String()
}

func TestConnectionResetsOpenTheBreaker(t *testing.T) {
	addr := resetListener(t)
	c := chain(t, resilience.WithCircuitBreaker(resilience.FailureCount(2, 2), resilience.OpenDelay(time.Minute),
		resilience.FailureIf(grpcx.Failure)))
	client := dial(t, addr, c)
	for range 2 {
		if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("reset: %v", err)
		}
	}
	if got := c.Breakers().State(addr); got != resilience.Open {
		t.Fatalf("breaker %v", got)
	}
}

func TestFallbacks(t *testing.T) {
	srv := startServer(t)
	t.Run("static", func(t *testing.T) {
		srv.set(failing)
		client := dial(t, srv.addr, chain(t), grpcx.WithFallback(grpcx.StaticReplies(map[string]proto.Message{
			unaryMethod: &testpb.SimpleResponse{Username: "fallback"}})))
		r, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
		if err != nil || r.Username != "fallback" {
			t.Fatalf("%v %v", r, err)
		}
		srv.set(invalid)
		if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("caller errors must pass: %v", err)
		}
	})
	t.Run("last good", func(t *testing.T) {
		client := dial(t, srv.addr, chain(t), grpcx.WithLastGoodFallback(&grpcx.LastGood{}))
		srv.set(failing)
		if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("no good reply yet: %v", err)
		}
		srv.set(healthy)
		_, _ = client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
		srv.set(failing)
		if r, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil || r.Username != "served" {
			t.Fatalf("%v %v", r, err)
		}
	})
}

func TestStreams(t *testing.T) {
	srv := startServer(t)
	c := chain(t, resilience.WithTimeout(5*time.Second), resilience.WithBulkhead(4),
		resilience.WithCircuitBreaker(resilience.FailureCount(1, 1), resilience.OpenDelay(time.Minute)))
	client := dial(t, srv.addr, c)
	stream, err := client.StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := stream.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("received %d messages", n)
	}
	c.Breakers().Get(srv.addr).Open()
	if _, err := client.StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{}); !errors.Is(err, resilience.ErrBreakerOpen) {
		t.Fatalf("stream while open: %v", err)
	}
}

func TestServerLimits(t *testing.T) {
	limits, err := grpcx.NewLimits(grpcx.WithMaxConcurrent(1), grpcx.WithMaxDeadline(100*time.Millisecond), grpcx.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, grpc.ChainUnaryInterceptor(limits.Unary()), grpc.ChainStreamInterceptor(limits.Stream()))
	srv.set(hanging)
	client := dial(t, srv.addr, chain(t))
	done := make(chan error, 1)
	go func() {
		_, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
		done <- err
	}()
	<-srv.entered
	if limits.InUse() != 1 {
		t.Fatalf("InUse %d", limits.InUse())
	}
	var trailer metadata.MD
	_, err = client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	if status.Code(err) != codes.ResourceExhausted || len(trailer.Get("grpc-retry-pushback-ms")) != 1 {
		t.Fatalf("second call: %v, trailer %v", err, trailer)
	}
	// The first call had no deadline: the server gave it 100ms.
	if err := <-done; status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("first call: %v", err)
	}
	if err := <-srv.cancelled; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("server saw %v", err)
	}
}

func TestHealthService(t *testing.T) {
	srv := startServer(t)
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestOptionsAreValidated(t *testing.T) {
	c := chain(t)
	for name, opts := range map[string][]grpcx.ClientOption{
		"nil key":         {grpcx.WithKey(nil)},
		"bad method name": {grpcx.WithIdempotentMethods("UnaryCall")},
		"nil fallback":    {grpcx.WithFallback(nil)},
		"nil last good":   {grpcx.WithLastGoodFallback(nil)},
		"nil option":      {nil},
	} {
		if _, err := grpcx.UnaryClientInterceptor(c, opts...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := grpcx.UnaryClientInterceptor(nil); err == nil {
		t.Error("nil chain accepted")
	}
	if _, err := grpcx.StreamClientInterceptor(c, grpcx.WithFallback(grpcx.StaticReplies(nil))); err == nil {
		t.Error("stream fallback accepted")
	}
	for name, opts := range map[string][]grpcx.ServerOption{
		"none":          nil,
		"zero limit":    {grpcx.WithMaxConcurrent(0)},
		"zero deadline": {grpcx.WithMaxDeadline(0)},
		"zero pushback": {grpcx.WithMaxConcurrent(1), grpcx.WithPushback(0)},
		"nil logger":    {grpcx.WithLogger(nil)},
	} {
		if _, err := grpcx.NewLimits(opts...); err == nil {
			t.Errorf("limits %s: accepted", name)
		}
	}
}
