package fooddelivery

import (
	"reflect"
	"strings"
	"testing"
)

// The order is priced once; the kitchen records the order's prices and
// totals whatever its replica says, and the saga cancels a ticket whose
// total is not the order's.

var ajanta = []MenuItem{{ID: "samosa", Name: "Samosa", Price: 450}, {ID: "curry", Name: "Chicken curry", Price: 1250}}

func TestPriceItems(t *testing.T) {
	lines, missing := priceItems(ajanta, []LineItem{{"curry", 2}, {"samosa", 1}})
	want := []OrderLine{{MenuItem: "curry", Quantity: 2, Price: 1250}, {MenuItem: "samosa", Quantity: 1, Price: 450}}
	if missing != "" || !reflect.DeepEqual(lines, want) || LinesTotal(lines) != 2950 {
		t.Fatalf("priceItems = %v, %q (total %d); want %v (2950)", lines, missing, LinesTotal(lines), want)
	}
	if _, missing := priceItems(ajanta, []LineItem{{"pizza", 1}}); missing != "pizza" {
		t.Errorf("missing = %q, want pizza", missing)
	}
	for _, items := range [][]LineItem{nil, {{"curry", 0}}, {{"curry", -1}}, {{"", 1}}} {
		if validItems(items) {
			t.Errorf("validItems(%v) = true", items)
		}
	}
}

func TestCheckTicket(t *testing.T) {
	revised := []MenuItem{{ID: "samosa", Name: "Samosa", Price: 450}, {ID: "curry", Name: "Chicken curry", Price: 1350}}
	cached := []OrderLine{{MenuItem: "curry", Quantity: 1, Price: 1250}} // priced from the order service's older menu
	refusal, differs := checkTicket(revised, CreateTicket{OrderID: "o-5", RestaurantID: "r-ajanta", Items: cached, Total: 1250})
	if refusal != "" || len(differs) != 1 || differs[0] != "curry at $13.50, the order at $12.50" {
		t.Fatalf("checkTicket = %q, %q; want the ticket taken at the order's price, the difference noted", refusal, differs)
	}
	for _, c := range []struct {
		lines []OrderLine
		total int
		want  string
	}{
		{nil, 0, "no items"},
		{cached, 1350, "the lines add up to $12.50, not to the total $13.50"},
		{[]OrderLine{{MenuItem: "pizza", Quantity: 1, Price: 1100}}, 1100, "pizza is not on the menu"},
		{[]OrderLine{{MenuItem: "curry", Quantity: -1, Price: 1350}}, -1350, "a quantity of -1 curry"},
	} {
		if refusal, _ := checkTicket(revised, CreateTicket{OrderID: "o-x", Items: c.lines, Total: c.total}); refusal != c.want {
			t.Errorf("checkTicket(%v, %d) refuses %q, want %q", c.lines, c.total, refusal, c.want)
		}
	}
}

func TestTicketCreatedChecksTheTotal(t *testing.T) {
	o := &orderRow{ID: "o-5", ConsumerID: "c-ada", Total: 1250, Step: stepCreateTicket}
	if next := o.ticketCreated(TicketCreated{TicketID: "t-o-5", Total: 1250}); !reflect.DeepEqual(next, AuthorizeCard{OrderID: "o-5", ConsumerID: "c-ada", Amount: 1250}) || o.Step != stepAuthorizeCard {
		t.Fatalf("ticketCreated at the order's total = %#v, step %s; want AuthorizeCard of 1250", next, o.Step)
	}
	o = &orderRow{ID: "o-5", ConsumerID: "c-ada", Total: 1250, Step: stepCreateTicket}
	next := o.ticketCreated(TicketCreated{TicketID: "t-o-5", Total: 1350})
	if next != (CancelTicket{OrderID: "o-5"}) || o.Step != stepCancelTicket || !ticketCancelled(o.Reason) || !strings.Contains(o.Reason, "$13.50") {
		t.Fatalf("ticketCreated at another total = %#v, step %s, reason %q; want CancelTicket and a reason naming both totals", next, o.Step, o.Reason)
	}
}
