package commands

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/codec"
	"github.com/courier-go/courier/internal/typename"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// Command is a decoded command with its envelope.
type Command[C any] struct {
	// ID is the command's message id; replies name it.
	ID       string
	Type     string
	Resource string
	Payload  C
	// Message is the message the command came in, for its other headers.
	Message *message.Message
	// Tx is the transaction the command is handled in, under
	// Dispatcher.HandleTx: the handler's changes, and the messages it
	// writes through an outbox.Writer's Producer(Tx), commit with the
	// inbox's record of the command and its reply. It is nil under
	// HandleMessage.
	Tx *sql.Tx
}

// ReplyTarget returns where to send a deferred reply; ok is false for a
// one-way notification, which takes no reply.
func (c Command[C]) ReplyTarget() (ReplyTarget, bool) { return replyTarget(c.Message) }

// transientError marks an error that another attempt may cure. Its
// Permanent method reports false, so that every package that recognises
// errors by behaviour (broker.IsPermanent, resilience.IsPermanent, this
// package's Dispatcher) sees it as transient.
type transientError struct{ err error }

func (e transientError) Error() string   { return e.err.Error() }
func (e transientError) Unwrap() error   { return e.err }
func (e transientError) Permanent() bool { return false }

// Retryable marks err as transient: instead of a failure reply, the
// command is redelivered (with the subscription's backoff) and, after the
// last attempt, dead-lettered. Retryable(nil) is nil.
//
// A permanent error stays permanent: when err, or an error it wraps, has a
// Permanent() bool method that reports true (broker.Permanent,
// resilience.Permanent, message validation errors), Retryable returns err
// itself, so that a REST call that failed for good, say, gets its failure
// reply at once instead of being retried to no purpose.
func Retryable(err error) error {
	if err == nil || broker.IsPermanent(err) {
		return err
	}
	return transientError{err}
}

// transient reports whether err says, by a Permanent() bool method that
// reports false, that another attempt may cure it.
func transient(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && !p.Permanent()
}

// Dispatcher routes commands to typed handlers by command type and sends
// their replies. It is a broker.Handler and, through HandleTx, an inbox
// handler; it is safe for concurrent use. Register handlers with Handle
// before subscribing.
type Dispatcher struct {
	replies broker.Producer
	outbox  func(tx sqldb.Execer) broker.Producer
	codecs  codec.Set
	logger  *slog.Logger

	mu       sync.RWMutex
	handlers map[string]commandHandler
	payloads map[string]reflect.Type // command type -> the Go type Handle decodes into
}

// commandHandler decodes and handles the commands of one type; tx is nil
// outside HandleTx.
type commandHandler func(ctx context.Context, tx *sql.Tx, m *message.Message) (Reply, error)

// NewDispatcher returns a Dispatcher whose HandleMessage sends replies
// through replies. HandleTx sends them through the producer WithOutbox
// gives instead; replies may be nil for a dispatcher used only that way.
func NewDispatcher(replies broker.Producer, opts ...Option) *Dispatcher {
	o := apply(opts)
	return &Dispatcher{replies: replies, outbox: o.outbox, codecs: o.codecs, logger: o.logger,
		handlers: map[string]commandHandler{}, payloads: map[string]reflect.Type{}}
}

// ErrNoProducer means a Dispatcher had nowhere to send a reply: it was
// made with a nil producer and handled a message with HandleMessage, or
// without WithOutbox and handled one with HandleTx.
var ErrNoProducer = errors.New("commands: no producer for replies (NewDispatcher's for HandleMessage, WithOutbox's for HandleTx)")

// Handle registers h for commands of type C.
//
// h's Reply is sent to the command's reply channel (if it has one). An
// error from h, or a panic, becomes a failure reply carrying a
// HandlerFailure at once, so the sender is never left waiting. Errors are
// told apart by behaviour, as net.Error's Timeout is: an error whose
// Permanent() bool method, found with errors.As, reports false is
// transient and the command is redelivered instead (mark one with
// Retryable, or return any package's transient error); one that reports
// true (broker.Permanent, resilience.Permanent), or has no such method,
// gets the failure reply. A one-way command, which has nobody to reply
// to, is dead-lettered instead of replied to.
//
// Under HandleTx, h finds the message's transaction in Command.Tx.
func Handle[C any](d *Dispatcher, h func(ctx context.Context, cmd Command[C]) (Reply, error)) {
	commandType := TypeName[C]()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.payloads[commandType] = reflect.TypeFor[C]()
	d.handlers[commandType] = func(ctx context.Context, tx *sql.Tx, m *message.Message) (Reply, error) {
		payload, err := typename.Decode[C](func(target any) error {
			return d.codecs.Decode(m.Header(message.HeaderContentType), m.Payload, target)
		})
		if err != nil {
			return Reply{}, broker.Permanent(fmt.Errorf("commands: decoding %s command %s: %w", commandType, m.ID, err))
		}
		return h(ctx, Command[C]{ID: m.ID, Type: commandType, Resource: m.Header(message.HeaderCommandResource),
			Payload: payload, Message: m, Tx: tx})
	}
}

// HandledTypes calls yield once for each handler, sorted by command type,
// with the command type name and the Go type Handle decodes the payload
// into. The channel is "": a Dispatcher learns its channel only when it is
// subscribed. It makes a Dispatcher an apispec.HandlerRegistry, so that a
// service's AsyncAPI document lists the commands it handles from the
// registrations themselves.
func (d *Dispatcher) HandledTypes(yield func(channel, typeName string, payload reflect.Type)) {
	d.mu.RLock()
	payloads := maps.Clone(d.payloads)
	d.mu.RUnlock()
	yieldSorted(payloads, yield) // outside the lock: yield may call the dispatcher
}

// yieldSorted calls yield for each type name of payloads, in order, with
// no channel.
func yieldSorted(payloads map[string]reflect.Type, yield func(channel, typeName string, payload reflect.Type)) {
	names := make([]string, 0, len(payloads))
	for name := range payloads {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		yield("", name, payloads[name])
	}
}

// HandleMessage handles one command message and sends its reply through
// the Dispatcher's producer.
func (d *Dispatcher) HandleMessage(ctx context.Context, m *message.Message) error {
	return d.dispatch(ctx, nil, d.replies, m)
}

// HandleTx handles one command message inside tx, the transaction an
// inbox opened for it: HandleTx is an inbox.TxHandler. The handler finds
// tx in Command.Tx, and the reply is written through the producer that
// WithOutbox makes for tx, so that the handler's changes, the inbox's
// record of the message and the reply commit or roll back together.
//
// A handler that fails with a permanent error (or panics) has its changes
// undone with a savepoint set before it ran, and the failure reply
// commits with the inbox record alone. A transient error is returned, so
// the whole transaction rolls back and the command is delivered again.
func (d *Dispatcher) HandleTx(ctx context.Context, tx *sql.Tx, m *message.Message) error {
	if tx == nil {
		return errors.New("commands: HandleTx without a transaction")
	}
	var replies broker.Producer
	if d.outbox != nil {
		replies = d.outbox(tx)
	}
	return d.dispatch(ctx, tx, replies, m)
}

// savepoint names the savepoint HandleTx sets before a handler that owes
// a reply, in the one syntax SQLite, PostgreSQL and MySQL share.
const savepoint = "courier_command"

func (d *Dispatcher) dispatch(ctx context.Context, tx *sql.Tx, replies broker.Producer, m *message.Message) error {
	commandType := m.Header(message.HeaderCommandType)
	d.mu.RLock()
	h := d.handlers[commandType]
	d.mu.RUnlock()
	target, hasReply := replyTarget(m)
	// Only a failure that is replied to keeps the transaction: then the
	// handler's own changes must go first.
	undoable := tx != nil && hasReply && h != nil
	var (
		r   Reply
		err error
	)
	if h == nil {
		err = broker.Permanent(fmt.Errorf("commands: no handler for command type %q (message %s)", commandType, m.ID))
	} else {
		if undoable {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
				return fmt.Errorf("commands: command %s: savepoint: %w", m.ID, err)
			}
		}
		r, err = d.call(ctx, tx, h, m)
	}
	if transient(err) {
		return err // redelivered, then dead-lettered
	}
	if err != nil {
		d.logger.Warn("courier: command handler failed; replying with a failure", slog.String("command_type", commandType),
			slog.String("message_id", m.ID), slog.Any("error", err))
		if !hasReply {
			// A one-way command has nobody to tell: dead-letter it.
			return broker.Permanent(err)
		}
		if undoable {
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+savepoint); rerr != nil {
				return fmt.Errorf("commands: command %s: undoing the changes of its failed handler (%v): %w", m.ID, err, rerr)
			}
		}
		r = Failure(HandlerFailure{Error: err.Error()})
	}
	if !hasReply || r.deferred {
		return nil
	}
	if replies == nil {
		return broker.Permanent(fmt.Errorf("commands: reply to command %s: %w", m.ID, ErrNoProducer))
	}
	if err := SendReply(ctx, replies, target, r, WithCodecs(d.codecs)); err != nil {
		return err // redelivered: the handler runs again (make it idempotent)
	}
	return nil
}

func (d *Dispatcher) call(ctx context.Context, tx *sql.Tx, h commandHandler, m *message.Message) (r Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			// The stack stays in this service's log; the failure
			// reply tells the sender only what went wrong.
			d.logger.Error("courier: command handler panicked", slog.String("message_id", m.ID),
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("%w: %v", broker.ErrHandlerPanic, p)
		}
	}()
	return h(ctx, tx, m)
}

// Subscribe subscribes the dispatcher, as subscriberID, to channel.
func (d *Dispatcher) Subscribe(ctx context.Context, c broker.Consumer, subscriberID, channel string, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	return c.Subscribe(ctx, subscriberID, []string{channel}, d, opts...)
}
