package tracing

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// ScopeName is the instrumentation scope of Courier's spans.
const ScopeName = "github.com/courier-go/courier/observe/tracing"

// Attribute keys Courier adds to the messaging conventions' own.
const (
	// PartitionKeyKey is the message's partition key (PARTITION_ID).
	PartitionKeyKey = attribute.Key("messaging.courier.partition_key")
	// AttemptsKey counts the calls of the handler for a delivery.
	AttemptsKey = attribute.Key("messaging.courier.attempts")
	// ResultKey is what became of a delivered message
	// (broker.ResultHandled and the others).
	ResultKey = attribute.Key("messaging.courier.result")
)

// Tracing makes and reads the spans of Courier's messages. It is safe
// for concurrent use; one Tracing serves a whole process.
type Tracing struct {
	tp     trace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	system attribute.KeyValue
	links  bool
	// off is set when the provider records nothing (see New): the
	// wrappers then return what they wrap, and cost nothing.
	off bool
	// names caches the span names, "<operation> <channel>".
	names sync.Map
}

// Option configures a Tracing.
type Option func(*Tracing)

// WithTracerProvider makes the spans with tp (default: OpenTelemetry's
// global provider, a no-op one until the program sets another).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(t *Tracing) {
		if tp != nil {
			t.tp = tp
		}
	}
}

// WithPropagator writes and reads the trace context in the message
// headers with p (default: W3C trace context and baggage, whatever the
// global propagator is, so that messages carry the standard headers
// traceparent, tracestate and baggage).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(t *Tracing) {
		if p != nil {
			t.prop = p
		}
	}
}

// WithSystem sets the messaging.system attribute: the broker's name in
// OpenTelemetry's terms, such as "kafka", "rabbitmq" or "nats" (default
// "courier").
func WithSystem(name string) Option {
	return func(t *Tracing) {
		if name != "" {
			t.system = semconv.MessagingSystemKey.String(name)
		}
	}
}

// WithLinks starts each delivery's span as the root of a new trace with a
// link to the sender's span, instead of as its child: for consumers whose
// traces should not grow into the senders' (a channel read by many
// subscribers, a batch job). Baggage is carried over either way.
func WithLinks() Option {
	return func(t *Tracing) { t.links = true }
}

// New returns a Tracing.
//
// New finds out once whether the provider records anything: it starts a
// probe span under a sampled parent and looks whether it records. When it
// does not (OpenTelemetry's global provider before the program sets one,
// the noop package's provider, an SDK that samples nothing), the Tracing
// is off: Broker, Producer and Outbox return what they are given, and
// SubscribeOption adds no tracer, so that tracing wired in but not
// configured costs nothing per message, not even the trace headers. Make
// the Tracing after setting the global provider (otel.SetTracerProvider),
// or give the provider with WithTracerProvider.
func New(opts ...Option) *Tracing {
	t := &Tracing{
		tp:     otel.GetTracerProvider(),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		system: semconv.MessagingSystemKey.String("courier"),
	}
	for _, opt := range opts {
		opt(t)
	}
	t.tracer = t.tp.Tracer(ScopeName)
	t.off = !records(t.tracer)
	return t
}

// probeParent is the sampled remote parent of New's probe span: a span
// that a parent-based sampler follows, so that only a tracer that records
// nothing leaves the probe unrecorded.
var probeParent = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID:    trace.TraceID{0x43, 0x6f, 0x75, 0x72, 0x69, 0x65, 0x72, 1},
	SpanID:     trace.SpanID{0x70, 0x72, 0x6f, 0x62, 0x65, 1},
	TraceFlags: trace.FlagsSampled,
	Remote:     true,
})

// records reports whether tracer records a span under a sampled parent.
// The probe span is never ended, so that no processor or exporter sees it.
func records(tracer trace.Tracer) bool {
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), probeParent)
	_, span := tracer.Start(ctx, "courier.probe")
	return span.IsRecording()
}

// Enabled reports whether the Tracing makes spans: false when its
// provider records nothing (see New), and its wrappers are then no-ops.
func (t *Tracing) Enabled() bool { return !t.off }

// Inject writes the trace context of ctx into h, which must not be nil,
// for code that builds its messages' headers itself.
func (t *Tracing) Inject(ctx context.Context, h message.Headers) {
	t.prop.Inject(ctx, carrier(h))
}

// Extract returns ctx with the trace context and baggage that h carries.
func (t *Tracing) Extract(ctx context.Context, h message.Headers) context.Context {
	return t.prop.Extract(ctx, carrier(h))
}

// SubscribeOption follows each delivery of a subscription: it is
// broker.WithTracer(t.DeliveryTracer()), or an option that changes nothing
// when the Tracing is off (see New).
func (t *Tracing) SubscribeOption() broker.SubscribeOption {
	if t.off {
		return func(*broker.SubscribeConfig) error { return nil }
	}
	return broker.WithTracer(deliveryTracer{t})
}

// DeliveryTracer returns the broker.Tracer that starts a consumer span
// for each delivery.
func (t *Tracing) DeliveryTracer() broker.Tracer { return deliveryTracer{t} }

type deliveryTracer struct{ t *Tracing }

// StartDelivery starts the span "process <channel>". Its attributes are
// set only on a span that records, so that a no-op tracer costs no
// allocation for them.
func (d deliveryTracer) StartDelivery(ctx context.Context, info broker.DeliveryInfo, msg *message.Message) (context.Context, func(broker.DeliveryOutcome)) {
	t := d.t
	ctx = t.prop.Extract(ctx, carrier(msg.Headers))
	var span trace.Span
	if t.links {
		var links []trace.Link
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			links = []trace.Link{{SpanContext: sc}}
		}
		ctx, span = t.tracer.Start(ctx, t.spanName("process", info.Channel), trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithNewRoot(), trace.WithLinks(links...))
	} else {
		ctx, span = t.tracer.Start(ctx, t.spanName("process", info.Channel), trace.WithSpanKind(trace.SpanKindConsumer))
	}
	if !span.IsRecording() {
		return ctx, endNothing
	}
	span.SetAttributes(t.system,
		semconv.MessagingDestinationName(info.Channel),
		semconv.MessagingOperationName("process"),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingConsumerGroupName(info.SubscriberID),
		semconv.MessagingMessageID(msg.ID))
	if k := msg.Headers.Get(message.HeaderPartitionID); k != "" {
		span.SetAttributes(PartitionKeyKey.String(k))
	}
	return ctx, func(out broker.DeliveryOutcome) {
		span.SetAttributes(AttemptsKey.Int(out.Attempts), ResultKey.String(out.Result))
		if out.Err != nil {
			span.RecordError(out.Err)
			if out.Result != broker.ResultHandled {
				span.SetStatus(codes.Error, out.Err.Error())
			}
		}
		span.End()
	}
}

// endNothing ends a delivery whose span does not record.
func endNothing(broker.DeliveryOutcome) {}

// spanName returns "<operation> <channel>", made once per pair.
func (t *Tracing) spanName(op, channel string) string {
	key := spanKey{op, channel}
	if n, ok := t.names.Load(key); ok {
		return n.(string)
	}
	n := op + " " + channel
	t.names.Store(key, n)
	return n
}

type spanKey struct{ op, channel string }

// carrier reads and writes message headers for a propagator.
type carrier message.Headers

func (c carrier) Get(key string) string { return c[key] }
func (c carrier) Set(key, value string) { c[key] = value }
func (c carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// TracerProvider returns the provider the Tracing makes its spans with,
// for the instrumentation of REST and gRPC calls (httpx.WithTracing,
// grpcx.ClientTracing), so that one trace runs through every hop.
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.tp }

// Propagator returns the propagator the Tracing writes and reads the trace
// context with, for the same instrumentation.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.prop }
