package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// Producer returns a producer that sends through p, each message in a
// producer span "send <channel>" whose context it writes into the
// message's headers before the Send (it sets an ID on a message without
// one first, as Send would). The span is a child of the span of ctx; if
// ctx has none, of the span whose context the message carries, if any:
// the outbox relay, whose context has no span, so continues the trace of
// the request that wrote each row. The spans end when p's Send returns,
// with its error.
//
// The returned producer sends dead letters as p does
// (broker.DeadLetterProducer). When the Tracing is off (see New), Producer
// returns p itself.
func (t *Tracing) Producer(p broker.Producer) broker.Producer {
	if t.off {
		return p
	}
	return &producer{t: t, p: p, op: "send", opType: semconv.MessagingOperationTypeSend}
}

// Outbox returns a producer that writes through p, an outbox writer's
// producer (outbox.Writer.Producer), each message in a producer span
// "create <channel>" that is a child of ctx's: the span of the request
// that wrote the row, ended when the row is written. The relay's traced
// producer then continues from it. When the Tracing is off (see New),
// Outbox returns p itself.
func (t *Tracing) Outbox(p broker.Producer) broker.Producer {
	if t.off {
		return p
	}
	return &producer{t: t, p: p, op: "create", opType: semconv.MessagingOperationTypeCreate}
}

type producer struct {
	t      *Tracing
	p      broker.Producer
	op     string
	opType attribute.KeyValue
}

// DeadLetterProducer traces the dead letters p sends.
func (p *producer) DeadLetterProducer() broker.Producer {
	return &producer{t: p.t, p: broker.DeadLetters(p.p), op: p.op, opType: p.opType}
}

// Send sends msgs through the wrapped producer, each in its own span.
func (p *producer) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	var one [1]trace.Span
	spans := one[:0]
	if len(msgs) > 1 {
		spans = make([]trace.Span, 0, len(msgs))
	}
	fromCtx := trace.SpanContextFromContext(ctx).IsValid()
	for _, m := range msgs {
		if m == nil {
			continue // the wrapped Send refuses it
		}
		if m.ID == "" {
			m.ID = message.NewID()
		}
		if m.Headers == nil {
			m.Headers = make(message.Headers, 3)
		}
		parent := ctx
		if !fromCtx {
			parent = p.t.prop.Extract(ctx, carrier(m.Headers))
		}
		sctx, span := p.t.tracer.Start(parent, p.t.spanName(p.op, channel), trace.WithSpanKind(trace.SpanKindProducer))
		p.t.prop.Inject(sctx, carrier(m.Headers))
		if !span.IsRecording() {
			continue // nothing to set or end: a no-op tracer costs no allocation here
		}
		span.SetAttributes(p.t.system, semconv.MessagingDestinationName(channel),
			semconv.MessagingOperationName(p.op), p.opType, semconv.MessagingMessageID(m.ID))
		if k := m.Headers.Get(message.HeaderPartitionID); k != "" {
			span.SetAttributes(PartitionKeyKey.String(k))
		}
		spans = append(spans, span)
	}
	err := p.p.Send(ctx, channel, msgs...)
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	return err
}
