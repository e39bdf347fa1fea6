package apispec

import (
	"fmt"
	"reflect"

	"github.com/courier-go/courier/internal/typename"
	"github.com/courier-go/courier/message"
)

// Kind is what a message is to Courier, which decides the header that
// names its type.
type Kind int

// The kinds of message.
const (
	Event   Kind = iota + 1 // a domain event: event-type
	Command                 // a command: command_type
	Reply                   // a reply to a command: reply_type
)

func (k Kind) String() string {
	switch k {
	case Event:
		return "event"
	case Command:
		return "command"
	case Reply:
		return "reply"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// TypeHeader returns the header that carries a message type name of kind
// k: message.HeaderEventType, HeaderCommandType or HeaderReplyType.
func (k Kind) TypeHeader() string {
	switch k {
	case Event:
		return message.HeaderEventType
	case Command:
		return message.HeaderCommandType
	case Reply:
		return message.HeaderReplyType
	}
	return ""
}

// typeMethod is the method a payload type may have to name itself.
func (k Kind) typeMethod() string {
	switch k {
	case Event:
		return "EventType"
	case Command:
		return "CommandType"
	}
	return "ReplyType"
}

// The two actions of an operation, from the service's side.
const (
	actionSend    = "send"
	actionReceive = "receive"
)

// messageType is one message type: its kind, its name in the type header
// and the Go type its payload is encoded from.
type messageType struct {
	kind    Kind
	name    string
	goType  reflect.Type
	outcome string // replies: message.ReplyOutcomeSuccess or Failure
}

// messageDecl is one declaration: the service sends or receives messages
// of one type on a channel; a command's declaration lists its replies.
type messageDecl struct {
	action  string
	channel string
	msg     messageType
	opts    declOptions
}

// DeclOption adds to a declaration: a summary, a description, the replies
// of a command, a content type; or, for a REST operation, its status,
// problems and parameters. An option that does not apply to a
// declaration is reported as an error by the methods that build the
// documents.
type DeclOption func(*declOptions)

type declOptions struct {
	summary     string
	description string
	contentType string
	replies     []messageType
	rest        restOptions
	restSet     []string // REST options given, for the errors of a message declaration
}

// Summary sets a short summary of a message or operation.
func Summary(text string) DeclOption { return func(o *declOptions) { o.summary = text } }

// Description sets the description of a message or operation.
func Description(text string) DeclOption { return func(o *declOptions) { o.description = text } }

// ContentType sets a message's content type, when it is not what the
// default codecs choose (application/x-protobuf for protobuf messages,
// application/json for the rest).
func ContentType(ct string) DeclOption { return func(o *declOptions) { o.contentType = ct } }

// Replies declares that a command is answered with a success reply of
// type R (reply_outcome-type SUCCESS).
func Replies[R any]() DeclOption {
	return func(o *declOptions) {
		o.replies = append(o.replies, messageType{kind: Reply, name: typename.For[R](Reply.typeMethod()), goType: reflect.TypeFor[R](), outcome: message.ReplyOutcomeSuccess})
	}
}

// Fails declares that a command may be answered with a failure reply of
// type R (reply_outcome-type FAILURE). A command with replies may also be
// answered with courier.HandlerFailure, which the documents list without
// being told.
func Fails[R any]() DeclOption {
	return func(o *declOptions) {
		o.replies = append(o.replies, messageType{kind: Reply, name: typename.For[R](Reply.typeMethod()), goType: reflect.TypeFor[R](), outcome: message.ReplyOutcomeFailure})
	}
}

// Publishes declares that the service publishes events of type T for
// aggregates of aggregateType, on the channel of that name (as
// events.Publisher does).
func Publishes[T any](s *Spec, aggregateType string, opts ...DeclOption) {
	declare[T](s, actionSend, Event, aggregateType, opts)
}

// Consumes declares that the service handles events of type T published by
// aggregates of aggregateType (as events.On registers them).
func Consumes[T any](s *Spec, aggregateType string, opts ...DeclOption) {
	declare[T](s, actionReceive, Event, aggregateType, opts)
}

// Handles declares that the service handles commands of type C sent to
// channel, answering with the replies that Replies and Fails declare (as
// commands.Handle registers it).
func Handles[C any](s *Spec, channel string, opts ...DeclOption) {
	declare[C](s, actionReceive, Command, channel, opts)
}

// Sends declares that the service sends commands of type C to channel,
// expecting the replies that Replies and Fails declare, or none for a
// one-way notification.
func Sends[C any](s *Spec, channel string, opts ...DeclOption) {
	declare[C](s, actionSend, Command, channel, opts)
}

func declare[T any](s *Spec, action string, kind Kind, channel string, opts []DeclOption) {
	s.add(action, channel, messageType{kind: kind, name: typename.For[T](kind.typeMethod()), goType: reflect.TypeFor[T]()}, opts)
}

// HandlerRegistry lists the typed handlers a dispatcher holds, so that a
// Spec can describe what it receives without being told twice:
// HandledTypes calls yield once for each handler with the channel it
// reads ("" when the dispatcher does not know it, as a command dispatcher
// learns its channel only when it subscribes), the type name the header
// carries and the Go type the payload is decoded into.
type HandlerRegistry interface {
	HandledTypes(yield func(channel, typeName string, payload reflect.Type))
}

// Receives declares every message type that r handles, as messages of
// kind received on their channels; channel is used for those that r does
// not name a channel for. The options apply to each.
func (s *Spec) Receives(kind Kind, channel string, r HandlerRegistry, opts ...DeclOption) {
	if kind < Event || kind > Reply {
		s.fail(fmt.Errorf("apispec: Receives: unknown message kind %v", kind))
		return
	}
	if r == nil {
		s.fail(fmt.Errorf("apispec: Receives %ss on channel %q: nil HandlerRegistry", kind, channel))
		return
	}
	r.HandledTypes(func(ch, typeName string, payload reflect.Type) {
		if ch == "" {
			ch = channel
		}
		if payload == nil {
			s.fail(fmt.Errorf("apispec: %s %s on channel %q: no Go type", kind, typeName, ch))
			return
		}
		s.add(actionReceive, ch, messageType{kind: kind, name: typeName, goType: payload}, opts)
	})
}

func (s *Spec) add(action, channel string, msg messageType, opts []DeclOption) {
	d := &messageDecl{action: action, channel: channel, msg: msg}
	for _, opt := range opts {
		opt(&d.opts)
	}
	var err error
	switch {
	case channel == "":
		err = fmt.Errorf("apispec: %s %s: empty channel", msg.kind, msg.name)
	case msg.name == "":
		err = fmt.Errorf("apispec: %s on channel %s: empty type name", msg.kind, channel)
	case len(d.opts.replies) > 0 && msg.kind != Command:
		err = fmt.Errorf("apispec: %s %s on channel %s: only commands have replies", msg.kind, msg.name, channel)
	case len(d.opts.restSet) > 0:
		err = fmt.Errorf("apispec: %s %s on channel %s: %s applies to REST operations only", msg.kind, msg.name, channel, d.opts.restSet[0])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	s.messages = append(s.messages, d)
}
