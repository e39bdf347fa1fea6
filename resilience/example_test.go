package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/courier-go/courier/resilience"
)

// A client guarded by every policy: a remote lookup that fails, is retried,
// trips its breaker and ends on the fallback.
func Example() {
	chain, err := resilience.NewChain(
		resilience.WithName("prices"),
		resilience.WithLogger(slog.New(slog.DiscardHandler)),
		resilience.WithTimeout(time.Second),
		resilience.WithBulkhead(64),
		resilience.WithCircuitBreaker(resilience.FailureCount(3, 3), resilience.OpenDelay(time.Minute)),
		resilience.WithRetry(resilience.MaxAttempts(2), resilience.Backoff(time.Millisecond, 10*time.Millisecond)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	calls := 0
	lookup := func(ctx context.Context, sku string) (int, error) {
		calls++
		return 0, errors.New("connection refused")
	}
	price := resilience.Wrap(chain, resilience.Spec[string, int]{
		Key:        func(string) string { return "prices-1:8080" },
		Idempotent: func(string) bool { return true },
		Fallback:   resilience.StaticFallback[string](nil, 999),
	}, lookup)

	for range 3 {
		p, err := price(context.Background(), "sku-1")
		fmt.Println(p, err)
	}
	fmt.Println("network calls:", calls)
	fmt.Println("breaker:", chain.Breakers().State("prices-1:8080"))
	// Output:
	// 999 <nil>
	// 999 <nil>
	// 999 <nil>
	// network calls: 3
	// breaker: open
}

// Invalid settings are refused when the chain is built.
func ExampleNewChain_invalid() {
	_, err := resilience.NewChain(resilience.WithCircuitBreaker(resilience.FailureCount(-1, 10)))
	fmt.Println(err)
	// Output:
	// resilience: chain "default": resilience: FailureCount: failures must be at least 1, got -1
}

// A balancer skips instances whose breaker is open.
func ExampleBreakers_Allow() {
	breakers, _ := resilience.NewBreakers(resilience.BreakerLogger(slog.New(slog.DiscardHandler)))
	breakers.Get("10.0.0.2:8080").Open()
	for _, addr := range []string{"10.0.0.1:8080", "10.0.0.2:8080"} {
		fmt.Println(addr, breakers.Allow(addr), breakers.State(addr))
	}
	// Output:
	// 10.0.0.1:8080 true closed
	// 10.0.0.2:8080 false open
}
