// Command rpc shows the proxy-interface pattern end to end. Business code
// (quote) calls delivery.Estimator, a Go interface; two adapters implement
// it, REST (deliveryhttp) and gRPC (deliverygrpc over the protobuf IDL in
// delivery/deliverypb), and both are guarded by the same resilience
// policies. The kitchen service behind them is made to fail, then to hang,
// then to recover, and the trace shows the policies at work:
//
//	go run ./examples/rpc
//
// Regenerate the gRPC code after changing the IDL with scripts/genproto.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/courier-go/courier/examples/rpc/delivery"
	"github.com/courier-go/courier/examples/rpc/delivery/deliverygrpc"
	"github.com/courier-go/courier/examples/rpc/delivery/deliveryhttp"
	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/grpcx"
	"github.com/courier-go/courier/rpc/httpx"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rpc:", err)
		os.Exit(1)
	}
}

// Kitchen behaviours.
const (
	healthy int32 = iota
	failing
	hanging
)

// policies is the one policy configuration both adapters use; failure and
// retryable classify the transport's errors.
func policies(name string, failure, retryable func(error) bool) (*resilience.Chain, error) {
	return resilience.NewChain(
		resilience.WithName(name),
		resilience.WithLogger(slog.New(slog.DiscardHandler)),
		resilience.WithTimeout(250*time.Millisecond),
		resilience.WithBulkhead(32),
		resilience.WithCircuitBreaker(resilience.FailureCount(3, 3), resilience.OpenDelay(300*time.Millisecond), resilience.FailureIf(failure)),
		resilience.WithRetry(resilience.MaxAttempts(2), resilience.Backoff(5*time.Millisecond, 20*time.Millisecond), resilience.RetryIf(retryable)),
	)
}

// quote is the business code: it knows only the interface.
func quote(ctx context.Context, est delivery.Estimator, restaurant string) string {
	e, err := est.Estimate(ctx, delivery.EstimateRequest{RestaurantID: restaurant, Address: "1 Main St"})
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%d min (%s)", e.Minutes, e.Source)
}

type adapter struct {
	name  string
	est   delivery.Estimator
	chain *resilience.Chain
	key   string
}

func run(ctx context.Context, w io.Writer) error {
	var behaviour atomic.Int32
	var served atomic.Int64
	kitchen := &delivery.Kitchen{
		Minutes: map[string]int{"pizza-place": 25},
		Work: func(ctx context.Context) error {
			served.Add(1)
			switch behaviour.Load() {
			case failing:
				return errors.New("oven offline")
			case hanging:
				<-ctx.Done() // until the client's timeout cancels us
				return ctx.Err()
			}
			return nil
		},
	}

	// The servers, with the server-side guards.
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	h, err := httpx.Handler(deliveryhttp.Handler(kitchen), httpx.WithMaxConcurrent(64), httpx.WithRequestTimeout(5*time.Second))
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = httpSrv.Serve(httpLis) }()
	defer httpSrv.Close()

	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	limits, err := grpcx.NewLimits(grpcx.WithMaxConcurrent(64), grpcx.WithMaxDeadline(5*time.Second))
	if err != nil {
		return err
	}
	grpcSrv := grpc.NewServer(grpc.ChainUnaryInterceptor(limits.Unary()), grpc.ChainStreamInterceptor(limits.Stream()))
	deliverygrpc.Register(grpcSrv, kitchen)
	grpcx.RegisterHealth(grpcSrv)
	go func() { _ = grpcSrv.Serve(grpcLis) }()
	defer grpcSrv.Stop()

	// The two adapters, guarded by the same policies.
	httpChain, err := policies("delivery-http", httpx.Failure, httpx.Retryable)
	if err != nil {
		return err
	}
	httpClient, err := deliveryhttp.NewClient("http://"+httpLis.Addr().String(), httpChain, nil)
	if err != nil {
		return err
	}
	grpcChain, err := policies("delivery-grpc", grpcx.Failure, grpcx.Retryable)
	if err != nil {
		return err
	}
	grpcClient, err := deliverygrpc.NewClient(grpcLis.Addr().String(), grpcChain)
	if err != nil {
		return err
	}
	defer grpcClient.Close()
	adapters := []adapter{
		{"REST", httpClient, httpChain, httpLis.Addr().String()},
		{"gRPC", grpcClient, grpcChain, grpcLis.Addr().String()},
	}

	step := func(title string, calls int, restaurant string) {
		fmt.Fprintf(w, "\n%s\n", title)
		for _, a := range adapters {
			before := served.Load()
			var last string
			for range calls {
				last = quote(ctx, a.est, restaurant)
			}
			fmt.Fprintf(w, "  %-4s  %d calls -> %-28s kitchen saw %d, breaker %s\n",
				a.name, calls, last, served.Load()-before, a.chain.Breakers().State(a.key))
		}
	}

	step("kitchen healthy", 3, "pizza-place")
	step("unknown restaurant: the caller's mistake, no retry, no breaker", 3, "noodle-bar")
	behaviour.Store(failing)
	step("kitchen failing: a retry each, the breaker opens after 3 failed attempts and rejects, the fallback answers", 5, "pizza-place")
	behaviour.Store(hanging)
	time.Sleep(350 * time.Millisecond) // the open delay
	step("kitchen hanging, breaker half-open: the probe times out and reopens it", 2, "pizza-place")
	behaviour.Store(healthy)
	time.Sleep(350 * time.Millisecond) // the open delay
	step("kitchen recovered: the half-open probe succeeds and closes the breaker", 2, "pizza-place")
	return nil
}
