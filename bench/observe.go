package bench

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/metrics"
	"github.com/courier-go/courier/observe/tracing"
)

// observeSuite measures what tracing and metrics cost, side by side in
// one run: Courier's memory broker and embedded NATS plain, with
// tracing wired but no tracer configured (OpenTelemetry's no-op
// provider), and with every message traced (the SDK, sampling all,
// batching spans to an exporter that drops them) and every consumer
// metric of broker/metrics recorded.
func observeSuite() Suite {
	return BrokerSuite{
		ID: "observe",
		Systems: func() []System {
			var out []System
			for _, base := range []struct {
				label string
				open  func(context.Context) (brokerCloser, error)
			}{{"courier-memory", newCourierMemory}, {"courier-natsjs", newCourierEmbeddedNATS}} {
				out = append(out,
					CourierBroker{Label: base.label, Open: base.open},
					CourierBroker{Label: base.label + "-otel-noop", Open: traced(base.open, false)},
					CourierBroker{Label: base.label + "-otel-traced", Open: traced(base.open, true)},
					CourierBroker{Label: base.label + "-otel-sampled", Open: tracedWith(base.open, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)))},
				)
			}
			return out
		},
		FullMessages:  100_000,
		QuickMessages: 2_000,
		Rounds:        3,
		Checks: []Check{
			{System: "courier-memory-otel-noop", Peer: "courier-memory", Min: 0.99, Goal: "issue 22: no-op tracer wired, >= 99% (memory)"},
			{System: "courier-memory-otel-traced", Peer: "courier-memory", Min: 0.90, Goal: "issue 22: traced and measured, >= 90% (memory)"},
			{System: "courier-natsjs-otel-noop", Peer: "courier-natsjs", Min: 0.99, Goal: "issue 22: no-op tracer wired, >= 99% (NATS)"},
			{System: "courier-natsjs-otel-traced", Peer: "courier-natsjs", Min: 0.90, Goal: "issue 22: traced and measured, >= 90% (NATS)"},
			{System: "courier-memory-otel-sampled", Peer: "courier-memory", Min: 0.90, Goal: "1% of messages traced, all measured, >= 90% (memory)"},
			{System: "courier-natsjs-otel-sampled", Peer: "courier-natsjs", Min: 0.90, Goal: "1% of messages traced, all measured, >= 90% (NATS)"},
		},
	}
}

// traced opens a broker with open and wraps it with tracing: with the
// no-op tracer provider, or, if record, with the SDK's, every span
// sampled and batched to an exporter that drops them, and the consumer
// metrics of broker/metrics on every subscription.
func traced(open func(context.Context) (brokerCloser, error), record bool) func(context.Context) (brokerCloser, error) {
	if record {
		return tracedWith(open, sdktrace.AlwaysSample())
	}
	return func(ctx context.Context) (brokerCloser, error) {
		b, err := open(ctx)
		if err != nil {
			return b, err
		}
		tr := tracing.New(tracing.WithTracerProvider(noop.NewTracerProvider()))
		return brokerCloser{Broker: tr.Broker(b.Broker), after: b.after}, nil
	}
}

// tracedWith opens a broker with open and wraps it with tracing through
// the SDK with the given sampler, spans batched to an exporter that drops
// them, and the consumer metrics of broker/metrics on every subscription.
func tracedWith(open func(context.Context) (brokerCloser, error), sampler sdktrace.Sampler) func(context.Context) (brokerCloser, error) {
	return func(ctx context.Context) (brokerCloser, error) {
		b, err := open(ctx)
		if err != nil {
			return b, err
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(dropExporter{}))
		obs, err := metrics.NewObserver(prometheus.NewRegistry())
		if err != nil {
			return b, err
		}
		tb := tracing.New(tracing.WithTracerProvider(tp)).Broker(b.Broker)
		return brokerCloser{Broker: observed{Broker: tb, obs: obs}, after: func(ctx context.Context) error {
			err := tp.Shutdown(ctx)
			if b.after != nil {
				err = errors.Join(err, b.after(ctx))
			}
			return err
		}}, nil
	}
}

// observed subscribes with a metrics observer.
type observed struct {
	broker.Broker
	obs *metrics.Observer
}

func (o observed) Subscribe(ctx context.Context, id string, channels []string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	return o.Broker.Subscribe(ctx, id, channels, h, append([]broker.SubscribeOption{broker.WithObserver(o.obs)}, opts...)...)
}

// dropExporter exports spans nowhere: the cost measured is making,
// recording and batching them.
type dropExporter struct{}

func (dropExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (dropExporter) Shutdown(context.Context) error                             { return nil }
