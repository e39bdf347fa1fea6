package httpx_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/httpx"
)

// A request through a Transport with WithTracing, to a Handler with
// WithServerTracing, is a client span per attempt under the caller's span
// and a server span under each, in one trace.
func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otelOpts := []otelhttp.Option{otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{})}
	var calls atomic.Int32
	var handlerTrace atomic.Value
	h, err := httpx.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlerTrace.Store(trace.SpanContextFromContext(r.Context()).TraceID())
		if calls.Add(1) == 1 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}), httpx.WithServerTracing("orders", otelOpts...))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	chain, err := resilience.NewChain(resilience.WithLogger(quiet()), resilience.WithRetry(resilience.RetryIf(httpx.Retryable),
		resilience.Backoff(time.Millisecond, time.Millisecond), resilience.MaxAttempts(3)))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := httpx.NewTransport(chain, httpx.WithTracing(otelOpts...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := tp.Tracer("test").Start(context.Background(), "request")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/orders/1", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	root.End()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var clients, servers []sdktrace.ReadOnlySpan
	deadline := time.Now().Add(5 * time.Second)
	for len(servers) < 2 && time.Now().Before(deadline) {
		clients, servers = clients[:0], servers[:0]
		for _, s := range rec.Ended() {
			switch s.SpanKind() {
			case trace.SpanKindClient:
				clients = append(clients, s)
			case trace.SpanKindServer:
				servers = append(servers, s)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(clients) != 2 || len(servers) != 2 {
		t.Fatalf("%d client and %d server spans, want 2 of each: one per attempt", len(clients), len(servers))
	}
	for i, c := range clients {
		if c.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("client span %d is not under the request's span", i)
		}
		found := false
		for _, s := range servers {
			found = found || (s.Parent().SpanID() == c.SpanContext().SpanID() && s.SpanContext().TraceID() == root.SpanContext().TraceID())
		}
		if !found {
			t.Errorf("client span %d has no server span under it", i)
		}
	}
	if got := handlerTrace.Load(); got != root.SpanContext().TraceID() {
		t.Errorf("the handler ran in trace %v, want the request's", got)
	}
}
