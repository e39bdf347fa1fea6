package grpcx_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/grpcx"
)

// A gRPC client guarded by the policies, calling a server that is gone: two
// refused connections open the breaker, and the third call is rejected
// without touching the network.
func ExampleUnaryClientInterceptor() {
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := lis.Addr().String()
	lis.Close() // nobody listens any more

	chain, err := resilience.NewChain(
		resilience.WithName("accounting"),
		resilience.WithLogger(slog.New(slog.DiscardHandler)),
		resilience.WithTimeout(time.Second),
		resilience.WithCircuitBreaker(resilience.FailureCount(2, 2), resilience.OpenDelay(time.Minute), resilience.FailureIf(grpcx.Failure)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	unary, err := grpcx.UnaryClientInterceptor(chain)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithChainUnaryInterceptor(unary))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for range 3 {
		_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{})
		fmt.Println(status.Code(err), errors.Is(err, resilience.ErrBreakerOpen))
	}
	fmt.Println("breaker:", chain.Breakers().State(addr))
	// Output:
	// Unavailable false
	// Unavailable false
	// Unavailable true
	// breaker: open
}
