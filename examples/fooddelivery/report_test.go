package fooddelivery_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	fd "github.com/courier-go/courier/examples/fooddelivery"
)

// agreeing returns the report of four orders on which every service
// agrees: o-1 approved, o-2 rejected after its ticket was created (card
// declined), o-3 rejected before (unknown consumer), o-4 approved, then
// cancelled (version 2).
func agreeing() *fd.Report {
	curry := []fd.OrderLine{{MenuItem: "curry", Quantity: 2, Price: 1250}}
	pizza := []fd.OrderLine{{MenuItem: "pizza", Quantity: 2, Price: 1100}}
	samosa := []fd.OrderLine{{MenuItem: "samosa", Quantity: 1, Price: 450}}
	declined := "card declined: over the $20.00 limit"
	menu := fd.MenuResponse{RestaurantID: "r-ajanta", Name: "Ajanta", Menu: []fd.MenuItem{{ID: "curry", Name: "Chicken curry", Price: 1350}}}
	return &fd.Report{
		Orders: []fd.OrderV2{
			{ID: "o-1", State: fd.Approved, ConsumerID: "c-ada", ConsumerName: "Ada", RestaurantID: "r-ajanta", Items: curry, Total: 2500},
			{ID: "o-2", State: fd.Rejected, ConsumerID: "c-bob", ConsumerName: "Bob", RestaurantID: "r-bella", Items: pizza, Total: 2200, Reason: declined},
			{ID: "o-3", State: fd.Rejected, ConsumerID: "c-zed", RestaurantID: "r-ajanta", Items: samosa, Total: 450, Reason: "unknown consumer c-zed"},
			{ID: "o-4", State: fd.Cancelled, ConsumerID: "c-ada", ConsumerName: "Ada", RestaurantID: "r-ajanta", Items: samosa, Total: 450, Reason: "cancelled by the consumer"},
		},
		Expected:    map[string]string{"o-1": fd.Approved, "o-2": fd.Rejected, "o-3": fd.Rejected, "o-4": fd.Cancelled},
		Consumers:   map[string]string{"c-ada": "Ada", "c-bob": "Bob"},
		Restaurants: map[string]fd.MenuResponse{"r-ajanta": menu},
		Replica:     map[string]fd.MenuResponse{"r-ajanta": menu},
		Tickets: map[string]fd.Ticket{
			"o-1": {RestaurantID: "r-ajanta", Items: curry, Total: 2500, State: fd.TicketAwaitingAcceptance},
			"o-2": {RestaurantID: "r-bella", Items: pizza, Total: 2200, State: fd.TicketStateCancelled},
			"o-4": {RestaurantID: "r-ajanta", Items: samosa, Total: 450, State: fd.TicketStateCancelled},
		},
		Authorizations: map[string]fd.Authorization{"o-1": {ConsumerID: "c-ada", Amount: 2500}},
		Reserved:       map[string]int{"c-ada": 2500, "c-bob": 0},
		Notifications: map[string][]fd.Notification{
			"o-1": {{ConsumerID: "c-ada", State: fd.Approved, Text: "order o-1 is APPROVED"}},
			"o-2": {{ConsumerID: "c-bob", State: fd.Rejected, Text: "order o-2 is REJECTED: " + declined}},
			"o-3": {{ConsumerID: "c-zed", State: fd.Rejected, Text: "order o-3 is REJECTED: unknown consumer c-zed"}},
			"o-4": {
				{ConsumerID: "c-ada", State: fd.Approved, Text: "order o-4 is APPROVED"},
				{ConsumerID: "c-ada", State: fd.Cancelled, Text: "order o-4 is CANCELLED: cancelled by the consumer"},
			},
		},
		History: map[string]fd.History{
			"o-1": {Events: 2, LastSeq: 2, State: fd.Approved},
			"o-2": {Events: 2, LastSeq: 2, State: fd.Rejected},
			"o-3": {Events: 2, LastSeq: 2, State: fd.Rejected},
			"o-4": {Events: 3, LastSeq: 3, State: fd.Cancelled},
		},
	}
}

// TestCheckReportsEveryDisagreement changes one copied value at a time
// and expects Check to name it; the demo then says the services disagree
// and fails.
func TestCheckReportsEveryDisagreement(t *testing.T) {
	if err := agreeing().Check(); err != nil {
		t.Fatalf("Check of an agreeing report: %v", err)
	}
	for _, c := range []struct {
		name, want string
		change     func(r *fd.Report)
	}{
		{"order state", "order o-1: state", func(r *fd.Report) { r.Expected["o-1"] = fd.Rejected }},
		{"order lines and total", "order o-1: total of its lines", func(r *fd.Report) { r.Orders[0].Total = 2600 }},
		{"consumer name", "order o-2: consumer name", func(r *fd.Report) { r.Consumers["c-bob"] = "Robert" }},
		{"ticket total", "order o-1: kitchen's ticket total is 2700, want 2500", func(r *fd.Report) {
			t := r.Tickets["o-1"]
			t.Total = 2700
			r.Tickets["o-1"] = t
		}},
		{"ticket lines", "order o-1: kitchen's ticket lines", func(r *fd.Report) {
			t := r.Tickets["o-1"]
			t.Items = []fd.OrderLine{{MenuItem: "curry", Quantity: 2, Price: 1350}}
			r.Tickets["o-1"] = t
		}},
		{"ticket restaurant", "order o-2: kitchen's ticket restaurant", func(r *fd.Report) {
			t := r.Tickets["o-2"]
			t.RestaurantID = "r-ajanta"
			r.Tickets["o-2"] = t
		}},
		{"ticket state", "order o-2: kitchen's ticket state", func(r *fd.Report) {
			t := r.Tickets["o-2"]
			t.State = fd.TicketAwaitingAcceptance
			r.Tickets["o-2"] = t
		}},
		{"ticket missing", "order o-1: the kitchen has no ticket", func(r *fd.Report) { delete(r.Tickets, "o-1") }},
		{"ticket unwanted", "order o-3: the kitchen has a", func(r *fd.Report) { r.Tickets["o-3"] = fd.Ticket{State: fd.TicketCreatePending} }},
		{"card amount", "order o-1: authorized amount", func(r *fd.Report) {
			r.Authorizations["o-1"] = fd.Authorization{ConsumerID: "c-ada", Amount: 2400}
			r.Reserved["c-ada"] = 2400
		}},
		{"card consumer", "order o-1: authorized consumer", func(r *fd.Report) {
			r.Authorizations["o-1"] = fd.Authorization{ConsumerID: "c-bob", Amount: 2500}
			r.Reserved = map[string]int{"c-ada": 0, "c-bob": 2500}
		}},
		{"card missing", "order o-1: no card authorization", func(r *fd.Report) {
			delete(r.Authorizations, "o-1")
			r.Reserved["c-ada"] = 0
		}},
		{"rejected order charged", "order o-2 is REJECTED but its card was charged", func(r *fd.Report) {
			r.Authorizations["o-2"] = fd.Authorization{ConsumerID: "c-bob", Amount: 2200}
			r.Reserved["c-bob"] = 2200
		}},
		{"reserved twice", "account c-ada: reserved amount is 5000, want 2500", func(r *fd.Report) { r.Reserved["c-ada"] = 5000 }},
		{"notified state", "order o-1: notifications", func(r *fd.Report) { r.Notifications["o-1"][0].State = fd.Rejected }},
		{"notified consumer", "order o-2: notifications", func(r *fd.Report) { r.Notifications["o-2"][0].ConsumerID = "c-ada" }},
		{"notified text", "order o-3: notifications", func(r *fd.Report) { r.Notifications["o-3"][0].Text = "order o-3 is REJECTED" }},
		{"notified twice", "order o-1: notifications", func(r *fd.Report) {
			r.Notifications["o-1"] = append(r.Notifications["o-1"], fd.Notification{ConsumerID: "c-ada", State: fd.Rejected})
		}},
		{"events out of order", "order o-2: event history", func(r *fd.Report) {
			r.History["o-2"] = fd.History{Events: 2, OutOfOrder: 1, LastSeq: 2, State: fd.Rejected}
		}},
		{"history state", "order o-3: event history", func(r *fd.Report) { r.History["o-3"] = fd.History{Events: 2, LastSeq: 2, State: fd.Approved} }},
		{"order lost", "report: number of orders", func(r *fd.Report) { r.Orders = r.Orders[:2] }},
		{"cancelled order charged", "order o-4 is CANCELLED but its card was charged", func(r *fd.Report) {
			r.Authorizations["o-4"] = fd.Authorization{ConsumerID: "c-ada", Amount: 450}
			r.Reserved["c-ada"] = 2950
		}},
		{"cancelled order's ticket", "order o-4: kitchen's ticket state", func(r *fd.Report) {
			t := r.Tickets["o-4"]
			t.State = fd.TicketAwaitingAcceptance
			r.Tickets["o-4"] = t
		}},
		{"cancellation not notified", "order o-4: notifications", func(r *fd.Report) { r.Notifications["o-4"] = r.Notifications["o-4"][:1] }},
		{"cancellation's event lost", "order o-4: event history", func(r *fd.Report) { r.History["o-4"] = fd.History{Events: 2, LastSeq: 2, State: fd.Approved} }},
		{"menu replica", "restaurant r-ajanta: kitchen's replica", func(r *fd.Report) {
			r.Replica["r-ajanta"] = fd.MenuResponse{RestaurantID: "r-ajanta", Name: "Ajanta", Menu: []fd.MenuItem{{ID: "curry", Name: "Chicken curry", Price: 1250}}}
		}},
		{"replica of an unknown restaurant", "restaurant r-gone: in the kitchen's replica", func(r *fd.Report) { r.Replica["r-gone"] = fd.MenuResponse{} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := agreeing()
			c.change(r)
			err := r.Check()
			if !errors.Is(err, fd.ErrDisagreement) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Check = %v; want ErrDisagreement naming %q", err, c.want)
			}
			var out bytes.Buffer
			r.Print(&out)
			if !strings.Contains(out.String(), "THE SERVICES DISAGREE") || !strings.Contains(out.String(), c.want) || strings.Contains(out.String(), "agrees") {
				t.Errorf("summary does not report the disagreement %q:\n%s", c.want, out.String())
			}
		})
	}
}
