package httpx_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/httpx"
)

// A REST client guarded by the policies, against a server that is down: the
// breaker opens after three failed responses and then answers without
// calling the server.
func ExampleNewTransport() {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		httpx.WriteProblem(w, httpx.Problem{Status: http.StatusServiceUnavailable, Detail: "database down"})
	}))
	defer srv.Close()

	chain, err := resilience.NewChain(
		resilience.WithName("kitchen"),
		resilience.WithLogger(slog.New(slog.DiscardHandler)),
		resilience.WithTimeout(2*time.Second),
		resilience.WithBulkhead(100),
		resilience.WithCircuitBreaker(resilience.FailureCount(3, 3), resilience.OpenDelay(time.Minute), resilience.FailureIf(httpx.Failure)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	transport, err := httpx.NewTransport(chain)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: transport}
	for range 4 {
		resp, err := client.Get(srv.URL + "/tickets/1")
		if err != nil {
			fmt.Println("error:", errors.Is(err, resilience.ErrBreakerOpen), resilience.Rejected(err))
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	fmt.Println("server hits:", hits)
	// Output:
	// 503 {"title":"Service Unavailable","status":503,"detail":"database down"}
	// 503 {"title":"Service Unavailable","status":503,"detail":"database down"}
	// 503 {"title":"Service Unavailable","status":503,"detail":"database down"}
	// error: true true
	// server hits: 3
}
