package tracing_test

import (
	"context"
	"fmt"
	"log"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/observe/tracing"
)

// A message sent inside a span is handled in a child of its send span,
// in the same trace.
func ExampleTracing_Broker() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tracing.New(tracing.WithTracerProvider(tp))
	raw, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	b := tr.Broker(raw)
	defer b.Close(ctx)

	handled := make(chan trace.SpanContext, 1)
	sub, err := b.Subscribe(ctx, "kitchen", []string{"orders"}, broker.HandlerFunc(func(ctx context.Context, _ *message.Message) error {
		handled <- trace.SpanContextFromContext(ctx)
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	reqCtx, req := tp.Tracer("example").Start(ctx, "POST /orders")
	if err := b.Send(reqCtx, "orders", message.New([]byte(`{"id":"o-1"}`))); err != nil {
		log.Fatal(err)
	}
	req.End()
	sc := <-handled
	if err := sub.Close(ctx); err != nil { // the process span ends with the delivery
		log.Fatal(err)
	}
	fmt.Println("same trace:", sc.TraceID() == req.SpanContext().TraceID())
	names := map[trace.SpanID]string{}
	for _, s := range rec.Ended() {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	for _, name := range []string{"send orders", "process orders"} {
		for _, s := range rec.Ended() {
			if s.Name() == name {
				fmt.Printf("%s (%s), child of %s\n", s.Name(), s.SpanKind(), names[s.Parent().SpanID()])
			}
		}
	}
	// Output:
	// same trace: true
	// send orders (producer), child of POST /orders
	// process orders (consumer), child of send orders
}
