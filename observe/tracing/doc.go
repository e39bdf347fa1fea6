// Package tracing follows a request through Courier's messages with
// OpenTelemetry: a message sent inside a span carries the span's context
// in its headers (W3C traceparent and tracestate, and baggage, through an
// OpenTelemetry propagator), the context survives the outbox table and
// the relay, and the handler runs in a span that is a child of the
// sender's, or a new trace linked to it (WithLinks).
//
// Spans follow OpenTelemetry's messaging semantic conventions: a producer
// span "send <channel>" for each message sent to a broker, "create
// <channel>" for each message written into an outbox, and a consumer span
// "process <channel>" for each delivery, with the attributes
// messaging.system, messaging.destination.name, messaging.operation.name
// and messaging.operation.type, messaging.message.id,
// messaging.consumer.group.name (the subscriber id) and
// messaging.courier.partition_key; the consumer span also carries
// messaging.courier.attempts and messaging.courier.result (handled,
// dead_lettered, discarded or abandoned).
//
// The pieces wrap Courier's ports, so that nothing else imports
// OpenTelemetry:
//
//   - Tracing.Broker wraps a broker: Send starts a producer span and
//     injects its context, Subscribe follows each delivery
//     (broker.WithTracer). Commands, their replies and Caller's Call and
//     Gather sent through it join the caller's trace.
//   - Tracing.Producer wraps any producer, such as the relay's: a Send
//     whose context has no span continues the trace each message
//     carries, which is how the relay, whatever its source, links a row
//     to the request that wrote it.
//   - Tracing.Outbox wraps an outbox writer's producer (the "create" span).
//   - Tracing.SubscribeOption follows the deliveries of one subscription.
//
// REST and gRPC calls join the same traces through OpenTelemetry's own
// instrumentation: rpc/httpx's WithTracing and WithServerTracing
// (otelhttp), and rpc/grpcx's ClientTracing and ServerTracing (otelgrpc).
//
// A program that configures no tracing pays nothing: subscriptions
// without a tracer skip the hook, and a Tracing whose TracerProvider is
// OpenTelemetry's no-op one only reads and writes the trace headers (the
// figures are in BENCHMARKS.md).
package tracing
