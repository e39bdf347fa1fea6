// Package commands sends commands and handles them, with replies correlated
// by message id, covering the command-based interaction styles:
//
//   - one-way notification: Producer.Send without ReplyTo;
//   - asynchronous request/response: Producer.Send with ReplyTo, and a
//     ReplyDispatcher on the reply channel;
//   - request/response over messaging: Call, which blocks until the
//     correlated reply arrives or the context ends;
//   - publish/asynchronous responses: Caller.Gather publishes one request to
//     a publish-subscribe channel and collects the replies of every
//     responder until a count or a deadline.
//
// Headers follow Eventuate Tram: command_type, command__destination (the
// channel), command_resource and command_reply_to on the command;
// reply_type, reply_outcome-type and reply_to_message_id on the reply,
// which also echoes every command_* header as commandreply_*.
//
// A command's type name is what its CommandType() method returns, or its Go
// type name; a reply's is ReplyType() or its Go type name. A Go type
// exchanged with a Java service on Eventuate declares the Java class name
// Eventuate uses for it (Eventuate's DefaultCommandNameMapping names a
// command by its class, CommandHandlerReplyBuilder a reply likewise):
//
//	func (ReserveCredit) CommandType() string { return "com.example.customers.api.ReserveCreditCommand" }
//
// # One transaction per message
//
// A service that keeps its data in SQL handles each command in the
// transaction that its inbox (package inbox) opens for the message, and
// sends its reply and events through the outbox (package outbox) in that
// same transaction:
//
//	w := outbox.NewWriter(sqldb.Postgres)
//	d := commands.NewDispatcher(nil, commands.WithOutbox(w.Producer))
//	commands.Handle(d, func(ctx context.Context, c commands.Command[ReserveCredit]) (commands.Reply, error) {
//		// change data through c.Tx; publish events through w.Producer(c.Tx)
//	})
//	ib := inbox.New(db, sqldb.Postgres)
//	sub, err := b.Subscribe(ctx, "accounting-service", []string{"accounting"}, ib.Handler(d.HandleTx))
//
// Dispatcher.HandleTx is an inbox.TxHandler: the handler finds the
// transaction in Command.Tx, and the dispatcher writes the reply through
// the producer WithOutbox makes for it, so that the handler's changes, its
// events, the inbox's record of the command and the reply commit together
// or not at all. ReplyDispatcher.HandleTx and events.Dispatcher.HandleTx
// do the same for replies and events.
//
// The transaction is handed over as a value, as database/sql hands over a
// *sql.Tx, and not hidden in the context: what a handler runs in shows in
// the types, no package has to agree with another on a context key, a
// goroutine the handler starts does not inherit a transaction that ends
// when the handler returns, and a test builds a Command with the Tx it
// likes. The producer bound to the transaction is made for each message
// (outbox.Writer.Producer), as (*sql.Tx).Stmt makes a transaction's
// statement from a database's.
package commands

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/codec"
	"github.com/courier-go/courier/internal/typename"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// TypeName returns the command type name of C, as written in command_type.
func TypeName[C any]() string { return typename.For[C]("CommandType") }

// ReplyTypeName returns the reply type name of R, as written in reply_type.
func ReplyTypeName[R any]() string { return typename.For[R]("ReplyType") }

// Producer sends commands. It is safe for concurrent use if its producer
// is.
type Producer struct {
	p      broker.Producer
	codecs codec.Set
}

// Option configures a Producer, a Dispatcher or a Caller.
type Option func(*options)

type options struct {
	codecs codec.Set
	logger *slog.Logger
	outbox func(tx sqldb.Execer) broker.Producer
}

// WithCodecs sets the codecs payloads are encoded and decoded with.
func WithCodecs(s codec.Set) Option { return func(o *options) { o.codecs = s } }

// WithLogger sets the logger of a Dispatcher (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithOutbox sets how a Dispatcher's HandleTx sends replies: through the
// producer outbox returns for the message's transaction, normally an
// outbox.Writer's Producer method (WithOutbox(w.Producer)), so that the
// reply commits with the handler's changes or not at all.
func WithOutbox(outbox func(tx sqldb.Execer) broker.Producer) Option {
	return func(o *options) { o.outbox = outbox }
}

func apply(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return o
}

// NewProducer returns a Producer that sends through p.
func NewProducer(p broker.Producer, opts ...Option) *Producer {
	return &Producer{p: p, codecs: apply(opts).codecs}
}

// SendOption adds to a command.
type SendOption func(*message.Builder)

// ReplyTo asks the handler to reply to channel.
func ReplyTo(channel string) SendOption {
	return func(b *message.Builder) { b.WithHeader(message.HeaderCommandReplyTo, channel) }
}

// WithResource names the resource the command acts on, e.g. /orders/o-1.
func WithResource(path string) SendOption {
	return func(b *message.Builder) { b.WithHeader(message.HeaderCommandResource, path) }
}

// WithHeader adds a command header; names without the command_ prefix get
// it, so the reply echoes the header as commandreply_<name>.
func WithHeader(name, value string) SendOption {
	if !strings.HasPrefix(name, message.CommandHeaderPrefix) {
		name = message.CommandHeaderPrefix + name
	}
	return func(b *message.Builder) { b.WithHeader(name, value) }
}

// WithPartitionKey orders this command with the others of the same key.
func WithPartitionKey(key string) SendOption {
	return func(b *message.Builder) { b.WithPartitionKey(key) }
}

// Message builds the message Send would send, but for command__destination,
// which Send sets to the channel.
func (p *Producer) Message(cmd any, opts ...SendOption) (*message.Message, error) {
	if cmd == nil {
		return nil, fmt.Errorf("commands: nil command")
	}
	payload, ct, err := p.codecs.Encode(cmd)
	if err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	b := message.NewBuilder(payload).
		WithContentType(ct).
		WithHeader(message.HeaderCommandType, typename.Of(cmd, "CommandType"))
	for _, opt := range opts {
		opt(b)
	}
	return b.Build(), nil
}

// Send sends cmd to channel and returns the command's message id, which a
// reply names in reply_to_message_id.
func (p *Producer) Send(ctx context.Context, channel string, cmd any, opts ...SendOption) (string, error) {
	m, err := p.Message(cmd, opts...)
	if err != nil {
		return "", err
	}
	m.SetHeader(message.HeaderCommandDestination, channel)
	if err := p.p.Send(ctx, channel, m); err != nil {
		return "", fmt.Errorf("commands: send %s to %s: %w", m.Header(message.HeaderCommandType), channel, err)
	}
	return m.ID, nil
}
