package commands

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/codec"
	"github.com/courier-go/courier/internal/typename"
	"github.com/courier-go/courier/message"
)

// Reply is what a command handler answers: a success or a failure, each
// with a typed value, or Deferred for a reply sent later.
type Reply struct {
	outcome  string
	value    any
	deferred bool
}

// Success returns a success reply carrying v (nil for an empty reply).
func Success(v any) Reply { return Reply{outcome: message.ReplyOutcomeSuccess, value: v} }

// Failure returns a failure reply carrying v, e.g. InsufficientCredit{}.
func Failure(v any) Reply { return Reply{outcome: message.ReplyOutcomeFailure, value: v} }

// Deferred means the handler replies later, with SendReply and the
// command's ReplyTarget.
func Deferred() Reply { return Reply{deferred: true} }

// Empty is the value of a reply that carries nothing.
type Empty struct{}

// ReplyType names Empty on the wire.
func (Empty) ReplyType() string { return "courier.Empty" }

// HandlerFailure is the failure reply sent when a handler returns an error
// or panics, or when the command cannot be decoded or has no handler.
type HandlerFailure struct {
	Error string `json:"error"`
}

// ReplyType names HandlerFailure on the wire.
func (HandlerFailure) ReplyType() string { return "courier.HandlerFailure" }

// ReplyTarget is where and how to reply to one command: the reply channel
// and the correlation headers. It can be stored (it is plain data) to reply
// long after the command was handled.
type ReplyTarget struct {
	Channel string            `json:"channel"`
	Headers map[string]string `json:"headers"`
}

// replyTarget derives the target from a command message; ok is false for a
// command sent without ReplyTo.
func replyTarget(m *message.Message) (ReplyTarget, bool) {
	ch := m.Header(message.HeaderCommandReplyTo)
	if ch == "" {
		return ReplyTarget{}, false
	}
	h := map[string]string{message.HeaderReplyToMessageID: m.ID}
	for k, v := range m.Headers {
		if strings.HasPrefix(k, message.CommandHeaderPrefix) {
			h[message.CommandReplyHeaderPrefix+strings.TrimPrefix(k, message.CommandHeaderPrefix)] = v
		}
	}
	if key := m.PartitionKey(); key != "" {
		h[message.HeaderPartitionID] = key
	}
	return ReplyTarget{Channel: ch, Headers: h}, true
}

// SendReply sends r to target through p.
func SendReply(ctx context.Context, p broker.Producer, target ReplyTarget, r Reply, opts ...Option) error {
	if r.deferred {
		return errors.New("commands: SendReply of a Deferred reply")
	}
	m, err := replyMessage(apply(opts).codecs, target, r)
	if err != nil {
		return err
	}
	if err := p.Send(ctx, target.Channel, m); err != nil {
		return fmt.Errorf("commands: reply to %s on %s: %w", target.Headers[message.HeaderReplyToMessageID], target.Channel, err)
	}
	return nil
}

func replyMessage(codecs codec.Set, target ReplyTarget, r Reply) (*message.Message, error) {
	v := r.value
	if v == nil {
		v = Empty{}
	}
	payload, ct, err := codecs.Encode(v)
	if err != nil {
		return nil, fmt.Errorf("commands: reply: %w", err)
	}
	outcome := r.outcome
	if outcome == "" {
		outcome = message.ReplyOutcomeSuccess
	}
	return message.NewBuilder(payload).
		WithHeaders(target.Headers).
		WithContentType(ct).
		WithHeader(message.HeaderReplyType, typename.Of(v, "ReplyType")).
		WithHeader(message.HeaderReplyOutcome, outcome).
		Build(), nil
}

// ReplyMessage is a received reply, not yet decoded.
type ReplyMessage struct {
	*message.Message
	// Tx is the transaction the reply is handled in, under
	// ReplyDispatcher.HandleTx; nil otherwise.
	Tx     *sql.Tx
	codecs codec.Set
}

// InReplyTo returns the message id of the command replied to.
func (r ReplyMessage) InReplyTo() string { return r.Header(message.HeaderReplyToMessageID) }

// Type returns the reply type name.
func (r ReplyMessage) Type() string { return r.Header(message.HeaderReplyType) }

// Succeeded reports whether the outcome is SUCCESS.
func (r ReplyMessage) Succeeded() bool {
	return r.Header(message.HeaderReplyOutcome) == message.ReplyOutcomeSuccess
}

// Decode decodes the reply's payload into v.
func (r ReplyMessage) Decode(v any) error {
	return r.codecs.Decode(r.Header(message.HeaderContentType), r.Payload, v)
}

// ErrWrongReplyType means a reply of another type than the one asked for
// arrived.
var ErrWrongReplyType = errors.New("commands: unexpected reply type")

// FailureError is the error of a call whose reply has the FAILURE outcome.
// Decode its payload with As or Reply.Decode.
type FailureError struct {
	Reply ReplyMessage
}

func (e *FailureError) Error() string {
	if e.Reply.Type() == (HandlerFailure{}).ReplyType() {
		var f HandlerFailure
		if e.Reply.Decode(&f) == nil {
			return fmt.Sprintf("commands: failure reply %s: %s", e.Reply.Type(), f.Error)
		}
	}
	return fmt.Sprintf("commands: failure reply %s", e.Reply.Type())
}

// As decodes the failure's payload into a T if the reply is of T's type.
func As[T any](err error) (T, bool) {
	var fe *FailureError
	if !errors.As(err, &fe) || fe.Reply.Type() != ReplyTypeName[T]() {
		var zero T
		return zero, false
	}
	v, derr := typename.Decode[T](fe.Reply.Decode)
	return v, derr == nil
}

// DecodeReply decodes a successful reply into an R. A failure reply gives a
// *FailureError; a success of another type ErrWrongReplyType.
func DecodeReply[R any](r ReplyMessage) (R, error) {
	var zero R
	if !r.Succeeded() {
		return zero, &FailureError{Reply: r}
	}
	if want := ReplyTypeName[R](); r.Type() != want {
		return zero, fmt.Errorf("%w: got %s, want %s", ErrWrongReplyType, r.Type(), want)
	}
	v, err := typename.Decode[R](r.Decode)
	if err != nil {
		return zero, fmt.Errorf("commands: decoding reply %s: %w", r.Type(), err)
	}
	return v, nil
}

// ReplyDispatcher handles the replies that arrive on a reply channel, for
// asynchronous request/response: each reply goes to the handler of its
// reply type. It is a broker.Handler and, through HandleTx, an inbox
// handler. Replies of unknown type are skipped.
type ReplyDispatcher struct {
	codecs   codec.Set
	handlers map[string]func(ctx context.Context, r ReplyMessage) error
	payloads map[string]reflect.Type // reply type -> the Go type OnReply decodes into
}

// NewReplyDispatcher returns a ReplyDispatcher without handlers.
func NewReplyDispatcher(opts ...Option) *ReplyDispatcher {
	return &ReplyDispatcher{codecs: apply(opts).codecs, handlers: map[string]func(context.Context, ReplyMessage) error{},
		payloads: map[string]reflect.Type{}}
}

// HandledTypes calls yield once for each handler, sorted by reply type,
// with the reply type name and the Go type OnReply decodes the payload
// into. The channel is "": the reply channel is the subscription's. It
// makes a ReplyDispatcher an apispec.HandlerRegistry.
func (d *ReplyDispatcher) HandledTypes(yield func(channel, typeName string, payload reflect.Type)) {
	yieldSorted(d.payloads, yield)
}

// OnReply registers h for replies of type R, successes and failures alike
// (register failure types such as HandlerFailure too). Register before
// subscribing.
func OnReply[R any](d *ReplyDispatcher, h func(ctx context.Context, r ReplyMessage, value R) error) {
	d.payloads[ReplyTypeName[R]()] = reflect.TypeFor[R]()
	d.handlers[ReplyTypeName[R]()] = func(ctx context.Context, r ReplyMessage) error {
		v, err := typename.Decode[R](r.Decode)
		if err != nil {
			return broker.Permanent(fmt.Errorf("commands: decoding reply %s: %w", r.Type(), err))
		}
		return h(ctx, r, v)
	}
}

// HandleMessage dispatches one reply.
func (d *ReplyDispatcher) HandleMessage(ctx context.Context, m *message.Message) error {
	return d.dispatch(ctx, nil, m)
}

// HandleTx dispatches one reply inside tx, the transaction an inbox opened
// for it: HandleTx is an inbox.TxHandler. The handler finds tx in
// ReplyMessage.Tx; what it changes, and the commands and events it writes
// through an outbox.Writer's Producer(r.Tx), commit with the inbox's
// record of the reply.
func (d *ReplyDispatcher) HandleTx(ctx context.Context, tx *sql.Tx, m *message.Message) error {
	if tx == nil {
		return errors.New("commands: ReplyDispatcher.HandleTx without a transaction")
	}
	return d.dispatch(ctx, tx, m)
}

func (d *ReplyDispatcher) dispatch(ctx context.Context, tx *sql.Tx, m *message.Message) error {
	h := d.handlers[m.Header(message.HeaderReplyType)]
	if h == nil {
		return nil
	}
	return h(ctx, ReplyMessage{Message: m, Tx: tx, codecs: d.codecs})
}
