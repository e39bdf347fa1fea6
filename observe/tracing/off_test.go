package tracing_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/observe/tracing"
)

// A Tracing whose provider records nothing hands back what it wraps, so
// that tracing wired in but not configured costs nothing per message; a
// provider that records anything, if only under a sampled parent, turns it
// on.
func TestOffWhenNothingRecords(t *testing.T) {
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	parentBased := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
		sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	for _, tc := range []struct {
		name string
		tr   *tracing.Tracing
		on   bool
	}{
		// The global provider, before the program sets one.
		{"global default", tracing.New(), false},
		{"noop provider", tracing.New(tracing.WithTracerProvider(noop.NewTracerProvider())), false},
		{"SDK sampling nothing", tracing.New(tracing.WithTracerProvider(never)), false},
		{"SDK following sampled parents", tracing.New(tracing.WithTracerProvider(parentBased)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tr.Enabled() != tc.on {
				t.Fatalf("Enabled() = %v, want %v", tc.tr.Enabled(), tc.on)
			}
			b := newMemory(t)
			wrapped := tc.tr.Broker(b)
			if same := wrapped == broker.Broker(b); same == tc.on {
				t.Errorf("Broker returned the broker itself: %v, want %v", same, !tc.on)
			}
			p := broker.Producer(b)
			if same := tc.tr.Producer(p) == p && tc.tr.Outbox(p) == p; same == tc.on {
				t.Errorf("Producer and Outbox returned the producer itself: %v, want %v", same, !tc.on)
			}
			cfg := broker.SubscribeConfig{}
			if err := tc.tr.SubscribeOption()(&cfg); err != nil || (cfg.Tracer != nil) != tc.on {
				t.Errorf("SubscribeOption set a tracer: %v (%v), want %v", cfg.Tracer != nil, err, tc.on)
			}
			// Off, the messages carry no trace header.
			got := make(chan *message.Message, 1)
			sub, err := wrapped.Subscribe(context.Background(), "s", []string{"c"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
				got <- m
				return nil
			}), quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close(context.Background())
			if err := wrapped.Send(context.Background(), "c", message.NewBuilder([]byte("x")).Build()); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-got:
				if has := m.Headers.Get("traceparent") != ""; has != tc.on {
					t.Errorf("traceparent present: %v, want %v", has, tc.on)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no delivery")
			}
		})
	}
}
