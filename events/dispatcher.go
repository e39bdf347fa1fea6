package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/codec"
	"github.com/courier-go/courier/internal/typename"
	"github.com/courier-go/courier/message"
)

// Event is a decoded domain event with its envelope.
type Event[T any] struct {
	// ID is the message ID: use it to deduplicate.
	ID            string
	AggregateType string
	AggregateID   string
	Type          string
	Payload       T
	// Message is the message the event came in, for its other headers.
	Message *message.Message
	// Tx is the transaction the event is handled in, under
	// Dispatcher.HandleTx: the handler's changes, and the messages it
	// writes through an outbox.Writer's Producer(Tx), commit with the
	// inbox's record of the event. It is nil under HandleMessage.
	Tx *sql.Tx
}

// handlerFunc decodes and handles one event type; tx is nil outside
// HandleTx.
type handlerFunc func(ctx context.Context, tx *sql.Tx, m *message.Message) error

// registration is one handler with the Go type its payloads decode into.
type registration struct {
	handle  handlerFunc
	payload reflect.Type
}

// Dispatcher routes domain events to typed handlers by aggregate type and
// event type. It is a broker.Handler and, through HandleTx, an inbox
// handler; Subscribe subscribes it to the channels of its aggregate types.
// Register handlers with On before subscribing. It is safe for concurrent
// use.
type Dispatcher struct {
	codecs    codec.Set
	strict    bool
	logger    *slog.Logger
	mu        sync.RWMutex
	handlers  map[string]map[string]registration // aggregate type -> event type -> handler
	handled   atomic.Uint64
	unknown   atomic.Uint64
	malformed atomic.Uint64
}

// DispatcherOption configures a Dispatcher.
type DispatcherOption func(*Dispatcher)

// WithDecoders sets the codecs events are decoded with.
func WithDecoders(s codec.Set) DispatcherOption { return func(d *Dispatcher) { d.codecs = s } }

// RejectUnknown makes events of unknown type fail permanently (and so go to
// the dead-letter channel) instead of being skipped and counted.
func RejectUnknown() DispatcherOption { return func(d *Dispatcher) { d.strict = true } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) DispatcherOption {
	return func(d *Dispatcher) { d.logger = l }
}

// NewDispatcher returns a Dispatcher with no handlers.
func NewDispatcher(opts ...DispatcherOption) *Dispatcher {
	d := &Dispatcher{handlers: map[string]map[string]registration{}}
	for _, opt := range opts {
		opt(d)
	}
	if d.logger == nil {
		d.logger = slog.Default()
	}
	return d
}

// On registers h for events of type T published by aggregates of
// aggregateType. A later registration for the same pair replaces an
// earlier one.
func On[T any](d *Dispatcher, aggregateType string, h func(ctx context.Context, e Event[T]) error) {
	eventType := TypeName[T]()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.handlers[aggregateType] == nil {
		d.handlers[aggregateType] = map[string]registration{}
	}
	d.handlers[aggregateType][eventType] = registration{payload: reflect.TypeFor[T](), handle: func(ctx context.Context, tx *sql.Tx, m *message.Message) error {
		payload, err := typename.Decode[T](func(target any) error {
			return d.codecs.Decode(m.Header(message.HeaderContentType), m.Payload, target)
		})
		if err != nil {
			d.malformed.Add(1)
			return broker.Permanent(fmt.Errorf("events: %s event %s: %w", eventType, m.ID, err))
		}
		return h(ctx, Event[T]{
			ID:            m.ID,
			AggregateType: aggregateType,
			AggregateID:   m.Header(message.HeaderEventAggregateID),
			Type:          eventType,
			Payload:       payload,
			Message:       m,
			Tx:            tx,
		})
	}}
}

// AggregateTypes returns the aggregate types that have handlers: the
// channels the dispatcher consumes.
func (d *Dispatcher) AggregateTypes() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]string, 0, len(d.handlers))
	for t := range d.handlers {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// HandledTypes calls yield once for each handler, sorted by aggregate
// type and event type, with the channel it consumes (the aggregate type),
// the event type name and the Go type On decodes the payload into. It
// makes a Dispatcher an apispec.HandlerRegistry, so that a service's
// AsyncAPI document lists the events it handles from the registrations
// themselves.
func (d *Dispatcher) HandledTypes(yield func(channel, typeName string, payload reflect.Type)) {
	type handled struct {
		channel, typeName string
		payload           reflect.Type
	}
	d.mu.RLock()
	var all []handled
	for aggregateType, byType := range d.handlers {
		for eventType, r := range byType {
			all = append(all, handled{aggregateType, eventType, r.payload})
		}
	}
	d.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].channel != all[j].channel {
			return all[i].channel < all[j].channel
		}
		return all[i].typeName < all[j].typeName
	})
	for _, h := range all { // outside the lock: yield may call the dispatcher
		yield(h.channel, h.typeName, h.payload)
	}
}

// HandleMessage dispatches one message. Events of an unknown type are
// skipped (or rejected, with RejectUnknown); undecodable ones fail
// permanently.
func (d *Dispatcher) HandleMessage(ctx context.Context, m *message.Message) error {
	return d.dispatch(ctx, nil, m)
}

// HandleTx dispatches one message inside tx, the transaction an inbox
// opened for it: HandleTx is an inbox.TxHandler. The handler finds tx in
// Event.Tx; what it changes, and the events and commands it writes through
// an outbox.Writer's Producer(e.Tx), commit with the inbox's record of the
// event, or roll back with it when the handler fails.
func (d *Dispatcher) HandleTx(ctx context.Context, tx *sql.Tx, m *message.Message) error {
	if tx == nil {
		return errors.New("events: HandleTx without a transaction")
	}
	return d.dispatch(ctx, tx, m)
}

func (d *Dispatcher) dispatch(ctx context.Context, tx *sql.Tx, m *message.Message) error {
	aggregateType := m.Header(message.HeaderEventAggregateType)
	if aggregateType == "" {
		aggregateType = m.Destination()
	}
	eventType := m.Header(message.HeaderEventType)
	d.mu.RLock()
	h := d.handlers[aggregateType][eventType].handle
	d.mu.RUnlock()
	if h == nil {
		d.unknown.Add(1)
		if d.strict {
			return broker.Permanent(fmt.Errorf("events: no handler for %s event %q (message %s)", aggregateType, eventType, m.ID))
		}
		d.logger.Debug("courier: skipping event of unknown type", slog.String("aggregate_type", aggregateType),
			slog.String("event_type", eventType), slog.String("message_id", m.ID))
		return nil
	}
	if err := h(ctx, tx, m); err != nil {
		return err
	}
	d.handled.Add(1)
	return nil
}

// Subscribe subscribes the dispatcher, as subscriberID, to the channels of
// its aggregate types.
func (d *Dispatcher) Subscribe(ctx context.Context, c broker.Consumer, subscriberID string, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	types := d.AggregateTypes()
	if len(types) == 0 {
		return nil, fmt.Errorf("events: subscribe %s: the dispatcher has no handlers", subscriberID)
	}
	return c.Subscribe(ctx, subscriberID, types, d, opts...)
}

// DispatcherStats counts what a Dispatcher did.
type DispatcherStats struct {
	Handled   uint64 // events a handler accepted
	Unknown   uint64 // events of a type with no handler
	Malformed uint64 // events whose payload did not decode
}

// Stats returns the dispatcher's counters.
func (d *Dispatcher) Stats() DispatcherStats {
	return DispatcherStats{Handled: d.handled.Load(), Unknown: d.unknown.Load(), Malformed: d.malformed.Load()}
}
