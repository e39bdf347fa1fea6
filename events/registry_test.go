package events_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/courier-go/courier/apispec"
	"github.com/courier-go/courier/events"
)

// A Dispatcher lists its handlers for apispec.
var _ apispec.HandlerRegistry = (*events.Dispatcher)(nil)

type handled struct {
	channel, typeName string
	payload           reflect.Type
}

func TestHandledTypesListsTheRegistrations(t *testing.T) {
	d := events.NewDispatcher()
	nop := func(context.Context, events.Event[TicketCreated]) error { return nil }
	events.On(d, "Ticket", func(context.Context, events.Event[TicketAccepted]) error { return nil })
	events.On(d, "Ticket", nop)
	events.On(d, "Restaurant", func(context.Context, events.Event[*TicketCreated]) error { return nil })
	events.On(d, "Ticket", nop) // a second registration replaces the first
	var got []handled
	d.HandledTypes(func(channel, typeName string, payload reflect.Type) {
		got = append(got, handled{channel, typeName, payload})
	})
	want := []handled{
		{"Restaurant", "events_test.TicketCreated", reflect.TypeFor[*TicketCreated]()},
		{"Ticket", "events_test.TicketCreated", reflect.TypeFor[TicketCreated]()},
		{"Ticket", "net.example.kitchen.TicketAccepted", reflect.TypeFor[TicketAccepted]()},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HandledTypes yielded %v, want %v", got, want)
	}
}

// A yield that registers another handler does not deadlock.
func TestHandledTypesYieldMayRegister(t *testing.T) {
	d := events.NewDispatcher()
	events.On(d, "Ticket", func(context.Context, events.Event[TicketCreated]) error { return nil })
	d.HandledTypes(func(string, string, reflect.Type) {
		events.On(d, "Ticket", func(context.Context, events.Event[TicketAccepted]) error { return nil })
	})
	if got := d.AggregateTypes(); len(got) != 1 {
		t.Errorf("aggregate types %v", got)
	}
}

func TestSpecReceivesTheDispatchersEvents(t *testing.T) {
	d := events.NewDispatcher()
	events.On(d, "Ticket", func(context.Context, events.Event[TicketCreated]) error { return nil })
	s := apispec.New("billing-service", "1.0.0")
	s.Receives(apispec.Event, "", d)
	doc, err := s.AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"address": "Ticket"`, `"name": "events_test.TicketCreated"`, `"action": "receive"`, `"items"`} {
		if !strings.Contains(string(doc.JSON()), want) {
			t.Errorf("the document lacks %s:\n%s", want, doc.JSON())
		}
	}
}
