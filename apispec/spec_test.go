package apispec

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/apipb"

	"github.com/courier-go/courier/message"
)

// The kitchen service of the tests: it publishes ticket events, consumes
// menu events (a protobuf message), handles CreateTicket with replies,
// sends a one-way notification, and serves tickets over REST.

type TicketCreated struct {
	TicketID string            `json:"ticketId"`
	OrderID  string            `json:"orderId"`
	Lines    []TicketLine      `json:"lines"`
	State    string            `json:"state" jsonschema:"enum=AWAITING_ACCEPTANCE,enum=ACCEPTED"`
	At       time.Time         `json:"at"`
	Labels   map[string]string `json:"labels,omitempty"`
	Note     *string           `json:"note,omitempty"`
}

func (TicketCreated) EventType() string { return "kitchen.TicketCreated" }

type TicketLine struct {
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
	Cents    int64  `json:"cents"`
}

type CreateTicket struct {
	OrderID string       `json:"orderId"`
	Lines   []TicketLine `json:"lines"`
}

func (CreateTicket) CommandType() string { return "kitchen.CreateTicket" }

type TicketAccepted struct {
	TicketID string `json:"ticketId"`
}

func (TicketAccepted) ReplyType() string { return "kitchen.TicketAccepted" }

type TicketRefused struct {
	Reason string `json:"reason"`
}

func (TicketRefused) ReplyType() string { return "kitchen.TicketRefused" }

type NotifyCourier struct {
	TicketID string `json:"ticketId"`
}

func (NotifyCourier) CommandType() string { return "delivery.NotifyCourier" }

type Ticket struct {
	ID    string       `json:"id"`
	State string       `json:"state"`
	Lines []TicketLine `json:"lines"`
}

func kitchenSpec() *Spec {
	s := New("kitchen-service", "1.2.0", WithDescription("Tickets for the orders the kitchen prepares."))
	Publishes[TicketCreated](s, "Ticket", Summary("A ticket was created for an order."))
	Consumes[*apipb.Method](s, "Menu", Summary("A menu item changed (a protobuf message)."))
	Handles[CreateTicket](s, "kitchen", Replies[TicketAccepted](), Fails[TicketRefused](), Summary("Create a ticket for an order."))
	Sends[NotifyCourier](s, "delivery", Summary("Tell the courier a ticket is ready (one-way)."))
	Operation[CreateTicket, Ticket](s, "POST /tickets", Summary("Create a ticket"), Status(http.StatusCreated), Problems(400, 409))
	Operation[NoBody, Ticket](s, "GET /tickets/{id}", Summary("Get a ticket"), Query("expand", "related resources to include: lines"), Problems(404))
	Operation[NoBody, Ticket](s, "POST /tickets/{id}/cancel", Summary("Cancel a ticket"), Status(http.StatusAccepted), Problems(404, 409))
	return s
}

func TestAsyncAPIDocument(t *testing.T) {
	doc, err := kitchenSpec().AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	if doc.Format() != FormatAsyncAPI || doc.Version() != "1.2.0" || doc.Name() != "kitchen-service.asyncapi.json" {
		t.Errorf("document %s %s %s", doc.Name(), doc.Format(), doc.Version())
	}
	var d map[string]any
	if err := json.Unmarshal(doc.JSON(), &d); err != nil {
		t.Fatal(err)
	}
	get := func(path ...string) any {
		var v any = d
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: no %s", path, p)
			}
			v = m[p]
		}
		return v
	}
	if get("asyncapi") != "3.0.0" {
		t.Errorf("asyncapi %v", get("asyncapi"))
	}
	if get("channels", "Ticket", "address") != "Ticket" || get("channels", "kitchen.replies", "address") != nil {
		t.Errorf("channels: %v", get("channels"))
	}
	ops := get("operations").(map[string]any)
	for _, k := range []string{"send.Ticket.kitchen.TicketCreated", "receive.Menu.apipb.Method", "receive.kitchen.kitchen.CreateTicket", "send.delivery.delivery.NotifyCourier"} {
		if ops[k] == nil {
			t.Errorf("no operation %s in %v", k, sortedKeys(ops))
		}
	}
	reply := get("operations", "receive.kitchen.kitchen.CreateTicket", "reply").(map[string]any)
	if reply["address"].(map[string]any)["location"] != "$message.header#/command_reply_to" || len(reply["messages"].([]any)) != 3 {
		t.Errorf("reply %v", reply)
	}
	if get("operations", "send.delivery.delivery.NotifyCourier", "reply") != nil {
		t.Errorf("a one-way command has a reply")
	}
	msg := get("components", "messages", "kitchen.TicketCreated").(map[string]any)
	if msg["name"] != "kitchen.TicketCreated" || msg["contentType"] != "application/json" {
		t.Errorf("message %v", msg)
	}
	if got := get("components", "messages", "kitchen.TicketCreated", "headers", "properties", message.HeaderEventType, "const"); got != "kitchen.TicketCreated" {
		t.Errorf("event-type header %v", got)
	}
	if got := get("components", "messages", "apipb.Method", "contentType"); got != "application/x-protobuf" {
		t.Errorf("protobuf content type %v", got)
	}
	if got := get("components", "messages", "courier.HandlerFailure", "headers", "properties", message.HeaderReplyOutcome, "const"); got != "FAILURE" {
		t.Errorf("HandlerFailure outcome %v", got)
	}
	// The payload schemas: required from omitempty, additional properties
	// allowed, enums from tags, nested types by reference.
	ticket := get("components", "schemas", "TicketCreated").(map[string]any)
	if _, ok := ticket["additionalProperties"]; ok {
		t.Errorf("additionalProperties set: %v", ticket)
	}
	if req := strings.Join(toStrings(ticket["required"]), ","); req != "ticketId,orderId,lines,state,at" {
		t.Errorf("required %s", req)
	}
	if got := get("components", "schemas", "TicketCreated", "properties", "lines", "items", "$ref"); got != "#/components/schemas/TicketLine" {
		t.Errorf("lines items %v", got)
	}
	if got := get("components", "schemas", "TicketCreated", "properties", "state", "enum"); len(got.([]any)) != 2 {
		t.Errorf("state enum %v", got)
	}
	if got := get("components", "schemas", "TicketCreated", "properties", "at", "format"); got != "date-time" {
		t.Errorf("at format %v", got)
	}
	// A protobuf message, described as protojson writes it, with field
	// numbers; its nested messages and enums too.
	method := get("components", "schemas", "google.protobuf.Method", "properties").(map[string]any)
	if rt := method["requestTypeUrl"].(map[string]any); rt["x-protobuf-number"] != 2.0 || rt["type"] != "string" {
		t.Errorf("requestTypeUrl %v", rt)
	}
	if syntax := method["syntax"].(map[string]any); len(syntax["enum"].([]any)) < 2 {
		t.Errorf("syntax %v", syntax)
	}
	if opts := method["options"].(map[string]any); opts["items"].(map[string]any)["$ref"] != "#/components/schemas/google.protobuf.Option" {
		t.Errorf("options %v", opts)
	}

	// The YAML reads back to the same document.
	y, err := doc.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back := mustParse(t, "kitchen.yaml", string(y))
	r, err := Diff(doc, back)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Changes) != 0 {
		t.Errorf("YAML differs from JSON: %+v", r.Changes)
	}
	if !bytes.HasPrefix(y, []byte("asyncapi: 3.0.0\ninfo:\n")) {
		t.Errorf("YAML does not keep the order of the JSON:\n%.200s", y)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

type otherTicketCreated struct {
	Number int `json:"number"`
}

func (otherTicketCreated) EventType() string { return "kitchen.TicketCreated" }

func TestOneMessageTypeTwoGoTypes(t *testing.T) {
	s := New("kitchen-service", "1.0.0")
	Publishes[TicketCreated](s, "Ticket")
	Consumes[otherTicketCreated](s, "Ticket")
	_, err := s.AsyncAPI()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`event type "kitchen.TicketCreated"`, "apispec.TicketCreated", "apispec.otherTicketCreated", "send on channel Ticket", "receive on channel Ticket"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The same Go type on two channels is one message.
	s = New("kitchen-service", "1.0.0")
	Publishes[TicketCreated](s, "Ticket")
	Publishes[TicketCreated](s, "Ticket.v2")
	if _, err := s.AsyncAPI(); err != nil {
		t.Fatal(err)
	}
}

func TestDeclarationErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		declare func(*Spec)
		want    string
	}{
		{"empty channel", func(s *Spec) { Publishes[TicketCreated](s, "") }, "empty channel"},
		{"replies on an event", func(s *Spec) { Publishes[TicketCreated](s, "Ticket", Replies[TicketAccepted]()) }, "only commands have replies"},
		{"REST option on a message", func(s *Spec) { Handles[CreateTicket](s, "kitchen", Status(201)) }, "Status applies to REST operations only"},
		{"bad pattern", func(s *Spec) { Operation[NoBody, Ticket](s, "/tickets") }, `want a pattern "METHOD /path"`},
		{"host pattern", func(s *Spec) { Operation[NoBody, Ticket](s, "GET example.com/tickets") }, "patterns with a host are not supported"},
		{"repeated wildcard", func(s *Spec) { Operation[NoBody, Ticket](s, "GET /a/{id}/b/{id}") }, "repeated wildcard"},
		{"twice", func(s *Spec) { Operation[NoBody, Ticket](s, "GET /a"); Operation[NoBody, Ticket](s, "GET /a") }, "declared twice"},
		{"problem status", func(s *Spec) { Operation[NoBody, Ticket](s, "GET /a", Problems(302)) }, "not an error status"},
		{"content type on REST", func(s *Spec) { Operation[NoBody, Ticket](s, "GET /a", ContentType("text/plain")) }, "ContentType applies to messages only"},
		{"a channel type", func(s *Spec) { Publishes[chan int](s, "Ticket") }, "cannot be encoded as JSON"},
		{"protobuf REST body", func(s *Spec) { Operation[*apipb.Method, Ticket](s, "POST /m") }, "REST bodies are JSON types"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New("svc", "1.0.0")
			tc.declare(s)
			_, aerr := s.AsyncAPI()
			_, oerr := s.OpenAPI()
			err := errors.Join(aerr, oerr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := New("svc", "1.0").AsyncAPI(); err == nil || !strings.Contains(err.Error(), "not a semantic version") {
		t.Errorf("version 1.0: %v", err)
	}
}

// dispatcher stands for an events or commands dispatcher that lists its
// handlers.
type dispatcher map[string]reflect.Type

func (d dispatcher) HandledTypes(yield func(channel, typeName string, payload reflect.Type)) {
	for _, name := range sortedKeys(d) {
		yield("", name, d[name])
	}
}

func TestReceivesFromARegistry(t *testing.T) {
	s := New("kitchen-service", "1.0.0")
	s.Receives(Command, "kitchen", dispatcher{
		"kitchen.CreateTicket": reflect.TypeFor[CreateTicket](),
		"kitchen.CancelTicket": reflect.TypeFor[TicketAccepted](),
	})
	doc, err := s.AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Operations map[string]json.RawMessage `json:"operations"`
	}
	if err := json.Unmarshal(doc.JSON(), &d); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sortedKeys(d.Operations), " "); got != "receive.kitchen.kitchen.CancelTicket receive.kitchen.kitchen.CreateTicket" {
		t.Errorf("operations %s", got)
	}
	// The registry's names are checked against other declarations.
	Handles[CreateTicket](s, "kitchen")
	s.Receives(Command, "kitchen", dispatcher{"kitchen.CreateTicket": reflect.TypeFor[Ticket]()})
	if _, err := s.AsyncAPI(); err == nil || !strings.Contains(err.Error(), "two Go types") {
		t.Errorf("conflict: %v", err)
	}
	s = New("svc", "1.0.0")
	s.Receives(Kind(9), "x", dispatcher{})
	if _, err := s.AsyncAPI(); err == nil {
		t.Error("unknown kind accepted")
	}
	s = New("svc", "1.0.0")
	s.Receives(Event, "x", nil)
	if _, err := s.AsyncAPI(); err == nil || !strings.Contains(err.Error(), "nil HandlerRegistry") {
		t.Errorf("nil registry: %v", err)
	}
}
