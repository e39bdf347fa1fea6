// Package events publishes and dispatches domain events, Eventuate style.
//
// An event belongs to an aggregate: it is published to the channel named
// after the aggregate type, with the aggregate id as partition key, so the
// events of one aggregate are consumed in order. Headers say what the event
// is: event-type, event-aggregate-type and event-aggregate-id.
//
// A Publisher sends through any broker.Producer; to publish in the same
// database transaction as the business change, give it the producer of an
// outbox.Writer bound to that transaction. A Dispatcher routes consumed
// events to typed handlers by aggregate type and event type.
//
// A Dispatcher's HandleTx is an inbox.TxHandler: subscribed through an
// inbox (ib.Handler(d.HandleTx)), each event is handled in the
// transaction the inbox opened for it, which the handler finds in
// Event.Tx; what it changes, and what it sends through an
// outbox.Writer's Producer(e.Tx), commits with the inbox's record of the
// event or not at all. The transaction is passed as a value, not through
// the context, for the reasons package commands gives.
//
// An event's type name is what its EventType() string method returns, or
// its Go type name (package.Type) when it has no such method. Give events
// shared with services in other languages an explicit EventType.
package events

import (
	"context"
	"fmt"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/codec"
	"github.com/courier-go/courier/internal/typename"
	"github.com/courier-go/courier/message"
)

// TypeName returns the event type name of T, as written in the event-type
// header.
func TypeName[T any]() string { return typename.For[T]("EventType") }

// Publisher publishes domain events. It is safe for concurrent use if its
// producer is.
type Publisher struct {
	p      broker.Producer
	codecs codec.Set
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithCodecs sets the codecs events are encoded with (default: protobuf for
// proto.Message values, JSON for the rest).
func WithCodecs(s codec.Set) PublisherOption { return func(p *Publisher) { p.codecs = s } }

// NewPublisher returns a Publisher that sends through p.
func NewPublisher(p broker.Producer, opts ...PublisherOption) *Publisher {
	pub := &Publisher{p: p}
	for _, opt := range opts {
		opt(pub)
	}
	return pub
}

// Publish publishes events, in order, for the aggregate aggregateType /
// aggregateID. The channel is the aggregate type.
func (p *Publisher) Publish(ctx context.Context, aggregateType, aggregateID string, events ...any) error {
	if aggregateID == "" {
		return fmt.Errorf("events: publish %s: empty aggregate id", aggregateType)
	}
	msgs := make([]*message.Message, 0, len(events))
	for _, e := range events {
		m, err := p.Message(aggregateType, aggregateID, e)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := p.p.Send(ctx, aggregateType, msgs...); err != nil {
		return fmt.Errorf("events: publish %d events of %s %s: %w", len(msgs), aggregateType, aggregateID, err)
	}
	return nil
}

// Message builds the message Publish would send for one event.
func (p *Publisher) Message(aggregateType, aggregateID string, event any) (*message.Message, error) {
	if event == nil {
		return nil, fmt.Errorf("events: nil event for %s %s", aggregateType, aggregateID)
	}
	payload, ct, err := p.codecs.Encode(event)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return message.NewBuilder(payload).
		WithPartitionKey(aggregateID).
		WithContentType(ct).
		WithHeader(message.HeaderEventType, typename.Of(event, "EventType")).
		WithHeader(message.HeaderEventAggregateType, aggregateType).
		WithHeader(message.HeaderEventAggregateID, aggregateID).
		Build(), nil
}
