package apispec

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"github.com/courier-go/courier/codec"
	"github.com/courier-go/courier/message"
)

// handlerFailureName is the reply type a command dispatcher answers with
// when a handler fails (commands.HandlerFailure).
const handlerFailureName = "courier.HandlerFailure"

// handlerFailure has the shape of commands.HandlerFailure.
type handlerFailure struct {
	Error string `json:"error"`
}

// replyToLocation is where a command names its reply channel.
const replyToLocation = "$message.header#/" + message.HeaderCommandReplyTo

// AsyncAPI returns the AsyncAPI 3.0 document of the service's messaging:
// a channel for each channel it sends to or receives from (and a dynamic
// one for the replies to each command channel, addressed by the
// command_reply_to header), an operation for each message type it sends or
// receives on a channel (with the replies of a command), and a message
// for each type, named by its type header, with Courier's headers and its
// payload's JSON Schema. It fails with every declaration error, such as
// one message type declared with two Go types.
func (s *Spec) AsyncAPI() (*Document, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	decls := append([]*messageDecl(nil), s.messages...)
	s.mu.Unlock()

	g := &asyncGenerator{
		doc: asyncapiDoc{
			AsyncAPI:           AsyncAPIVersion,
			Info:               info{Title: s.service, Version: s.version, Description: s.description},
			DefaultContentType: codec.ContentTypeJSON,
			Channels:           map[string]*asyncChannelW{},
			Operations:         map[string]*asyncOperation{},
			Components:         &asyncComponents{Messages: map[string]*asyncMessageW{}},
		},
		schemas:      newSchemaSet(),
		messages:     map[msgID]*generatedMessage{},
		messageKeys:  map[string]bool{},
		channels:     map[string]string{},
		channelAddrs: map[string]string{},
	}
	var errs []error
	for _, d := range decls {
		if err := g.declare(d); err != nil {
			errs = append(errs, fmt.Errorf("apispec: service %s: %w", s.service, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(g.schemas.schemas) > 0 {
		g.doc.Components.Schemas = g.schemas.schemas
	}
	data, err := json.MarshalIndent(&g.doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("apispec: service %s: AsyncAPI document: %w", s.service, err)
	}
	doc, err := Parse(s.service+".asyncapi.json", data)
	if err != nil {
		return nil, fmt.Errorf("apispec: service %s: the generated AsyncAPI document does not read back: %w", s.service, err)
	}
	return doc, nil
}

type msgID struct {
	kind Kind
	name string
}

type generatedMessage struct {
	key    string
	goType reflect.Type
	w      *asyncMessageW
	decl   string // where it was first declared, for errors
}

type asyncGenerator struct {
	doc          asyncapiDoc
	schemas      *schemaSet
	messages     map[msgID]*generatedMessage
	messageKeys  map[string]bool
	channels     map[string]string // channel address (or "reply:" address) -> key
	channelAddrs map[string]string // key -> address, to tell collisions
}

func (g *asyncGenerator) declare(d *messageDecl) error {
	chKey := g.channel(d.channel, false)
	m, err := g.message(d.msg, d.opts, fmt.Sprintf("%s on channel %s", d.action, d.channel))
	if err != nil {
		return err
	}
	g.doc.Channels[chKey].Messages[m.key] = reference{Ref: "#/components/messages/" + escapePointer(m.key)}
	opKey := d.action + "." + chKey + "." + m.key
	op, ok := g.doc.Operations[opKey]
	if !ok {
		op = &asyncOperation{
			Action:      d.action,
			Channel:     reference{Ref: "#/channels/" + escapePointer(chKey)},
			Summary:     d.opts.summary,
			Description: d.opts.description,
			Messages:    []reference{{Ref: "#/channels/" + escapePointer(chKey) + "/messages/" + escapePointer(m.key)}},
		}
		g.doc.Operations[opKey] = op
	}
	if len(d.opts.replies) == 0 {
		return nil
	}
	replies := append(append([]messageType(nil), d.opts.replies...),
		messageType{kind: Reply, name: handlerFailureName, goType: reflect.TypeFor[handlerFailure](), outcome: message.ReplyOutcomeFailure})
	replyKey := g.channel(d.channel, true)
	if op.Reply == nil {
		op.Reply = &operationReply{
			Address: &replyAddress{Description: "the channel the command names in " + message.HeaderCommandReplyTo, Location: replyToLocation},
			Channel: &reference{Ref: "#/channels/" + escapePointer(replyKey)},
		}
	}
	listed := map[string]bool{}
	for _, r := range op.Reply.Messages {
		listed[r.Ref] = true
	}
	for _, r := range replies {
		rm, err := g.message(r, declOptions{}, fmt.Sprintf("reply to %s %s", d.msg.kind, d.msg.name))
		if err != nil {
			return err
		}
		g.doc.Channels[replyKey].Messages[rm.key] = reference{Ref: "#/components/messages/" + escapePointer(rm.key)}
		ref := "#/channels/" + escapePointer(replyKey) + "/messages/" + escapePointer(rm.key)
		if !listed[ref] {
			listed[ref] = true
			op.Reply.Messages = append(op.Reply.Messages, reference{Ref: ref})
		}
	}
	return nil
}

// channel returns the key of the channel at address, or of the dynamic
// channel of the replies to the commands sent to it, adding it first.
func (g *asyncGenerator) channel(address string, replies bool) string {
	id := address
	if replies {
		id = "reply:" + address
	}
	if key, ok := g.channels[id]; ok {
		return key
	}
	base := componentName(address)
	if replies {
		base += ".replies"
	}
	key := base
	for i := 2; g.channelAddrs[key] != ""; i++ {
		key = base + "_" + strconv.Itoa(i)
	}
	g.channels[id] = key
	g.channelAddrs[key] = id
	ch := &asyncChannelW{Messages: map[string]reference{}}
	if replies {
		ch.Description = "Replies to the commands sent to " + address + ", on the channel each command names in " + message.HeaderCommandReplyTo + "."
	} else {
		addr := address
		ch.Address = &addr
	}
	g.doc.Channels[key] = ch
	return key
}

// message returns the message component of t, adding it first; a type
// name already declared with another Go type is an error.
func (g *asyncGenerator) message(t messageType, opts declOptions, where string) (*generatedMessage, error) {
	id := msgID{t.kind, t.name}
	if m, ok := g.messages[id]; ok {
		if m.goType != t.goType && t.name != handlerFailureName {
			return nil, fmt.Errorf("%s type %q is declared with two Go types: %s (%s) and %s (%s)", t.kind, t.name, m.goType, m.decl, t.goType, where)
		}
		if m.w.Summary == "" {
			m.w.Summary = opts.summary
		}
		if m.w.Description == "" {
			m.w.Description = opts.description
		}
		if t.kind == Reply && t.outcome != "" {
			widenOutcome(m.w.Headers, t.outcome)
		}
		return m, nil
	}
	if t.name == handlerFailureName {
		t.goType = reflect.TypeFor[handlerFailure]()
	}
	payload, err := g.schemas.schemaFor(t.goType)
	if err != nil {
		return nil, fmt.Errorf("%s %s (%s): %w", t.kind, t.name, where, err)
	}
	ct := opts.contentType
	if ct == "" {
		ct = codec.ContentTypeJSON
		if _, ok := protoMessage(t.goType); ok {
			ct = codec.ContentTypeProtobuf
		}
	}
	key := componentName(t.name)
	if g.messageKeys[key] {
		key = componentName(t.name + "." + t.kind.String())
	}
	for i := 2; g.messageKeys[key]; i++ {
		key = componentName(t.name + "." + t.kind.String() + "_" + strconv.Itoa(i))
	}
	g.messageKeys[key] = true
	w := &asyncMessageW{
		Name:        t.name,
		Summary:     opts.summary,
		Description: opts.description,
		ContentType: ct,
		Headers:     headerSchema(t, ct),
		Payload:     payload,
		Kind:        t.kind.String(),
		GoType:      t.goType.String(),
	}
	switch t.kind {
	case Command:
		w.CorrelationID = &correlationID{Description: "a reply names the command's ID in " + message.HeaderReplyToMessageID, Location: "$message.header#/" + message.HeaderID}
	case Reply:
		w.CorrelationID = &correlationID{Description: "the ID of the command replied to", Location: "$message.header#/" + message.HeaderReplyToMessageID}
	}
	g.doc.Components.Messages[key] = w
	m := &generatedMessage{key: key, goType: t.goType, w: w, decl: where}
	g.messages[id] = m
	return m, nil
}
