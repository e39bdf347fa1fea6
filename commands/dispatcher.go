package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/codec"
	"github.com/courier-go/courier/internal/typename"
	"github.com/courier-go/courier/message"
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
// their replies. It is a broker.Handler and safe for concurrent use;
// register handlers with Handle before subscribing.
type Dispatcher struct {
	replies broker.Producer
	codecs  codec.Set
	logger  *slog.Logger

	mu       sync.RWMutex
	handlers map[string]func(ctx context.Context, m *message.Message) (Reply, error)
}

// NewDispatcher returns a Dispatcher that sends replies through replies.
func NewDispatcher(replies broker.Producer, opts ...Option) *Dispatcher {
	o := apply(opts)
	return &Dispatcher{replies: replies, codecs: o.codecs, logger: o.logger,
		handlers: map[string]func(context.Context, *message.Message) (Reply, error){}}
}

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
func Handle[C any](d *Dispatcher, h func(ctx context.Context, cmd Command[C]) (Reply, error)) {
	commandType := TypeName[C]()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.handlers[commandType] = func(ctx context.Context, m *message.Message) (Reply, error) {
		payload, err := typename.Decode[C](func(target any) error {
			return d.codecs.Decode(m.Header(message.HeaderContentType), m.Payload, target)
		})
		if err != nil {
			return Reply{}, broker.Permanent(fmt.Errorf("commands: decoding %s command %s: %w", commandType, m.ID, err))
		}
		return h(ctx, Command[C]{ID: m.ID, Type: commandType, Resource: m.Header(message.HeaderCommandResource), Payload: payload, Message: m})
	}
}

// HandleMessage handles one command message and sends its reply.
func (d *Dispatcher) HandleMessage(ctx context.Context, m *message.Message) error {
	commandType := m.Header(message.HeaderCommandType)
	d.mu.RLock()
	h := d.handlers[commandType]
	d.mu.RUnlock()
	var (
		r   Reply
		err error
	)
	if h == nil {
		err = broker.Permanent(fmt.Errorf("commands: no handler for command type %q (message %s)", commandType, m.ID))
	} else {
		r, err = d.call(ctx, h, m)
	}
	if transient(err) {
		return err // redelivered, then dead-lettered
	}
	target, hasReply := replyTarget(m)
	if err != nil {
		d.logger.Warn("courier: command handler failed; replying with a failure", slog.String("command_type", commandType),
			slog.String("message_id", m.ID), slog.Any("error", err))
		if !hasReply {
			// A one-way command has nobody to tell: dead-letter it.
			return broker.Permanent(err)
		}
		r = Failure(HandlerFailure{Error: err.Error()})
	}
	if !hasReply || r.deferred {
		return nil
	}
	if err := SendReply(ctx, d.replies, target, r, WithCodecs(d.codecs)); err != nil {
		return err // redelivered: the handler runs again (make it idempotent)
	}
	return nil
}

func (d *Dispatcher) call(ctx context.Context, h func(context.Context, *message.Message) (Reply, error), m *message.Message) (r Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			// The stack stays in this service's log; the failure
			// reply tells the sender only what went wrong.
			d.logger.Error("courier: command handler panicked", slog.String("message_id", m.ID),
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("%w: %v", broker.ErrHandlerPanic, p)
		}
	}()
	return h(ctx, m)
}

// Subscribe subscribes the dispatcher, as subscriberID, to channel.
func (d *Dispatcher) Subscribe(ctx context.Context, c broker.Consumer, subscriberID, channel string, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	return c.Subscribe(ctx, subscriberID, []string{channel}, d, opts...)
}
