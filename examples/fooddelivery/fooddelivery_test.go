package fooddelivery_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/examples/fooddelivery"
)

// wantStates are the final states the scenario must reach.
var wantStates = map[string]string{
	"o-1": fooddelivery.Approved, "o-2": fooddelivery.Rejected, "o-3": fooddelivery.Rejected,
	"o-4": fooddelivery.Approved, "o-5": fooddelivery.Approved, "o-6": fooddelivery.Approved, "o-7": fooddelivery.Approved, "o-8": fooddelivery.Approved,
	"o-9": fooddelivery.Approved, "o-10": fooddelivery.Cancelled, "o-11": fooddelivery.Approved,
}

func checkStates(t *testing.T, rep *fooddelivery.Report, bulk int) {
	t.Helper()
	if err := rep.Check(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, o := range rep.Orders {
		seen[o.ID] = true
		want, ok := wantStates[o.ID]
		if !ok {
			want = fooddelivery.Approved // a bulk order
		}
		if o.State != want {
			t.Errorf("order %s is %s (%s), want %s", o.ID, o.State, o.Reason, want)
		}
	}
	if len(rep.Orders) != len(wantStates)+bulk {
		t.Errorf("%d orders, want %d", len(rep.Orders), len(wantStates)+bulk)
	}
}

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := fooddelivery.RunDemo(ctx, fooddelivery.DemoConfig{Out: &out, Bulk: 4})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	checkStates(t, rep, 4)
	if len(rep.Quotes) != 3 {
		t.Errorf("%d courier quotes, want 3", len(rep.Quotes))
	}
	var o5 fooddelivery.OrderV2
	for _, o := range rep.Orders {
		if o.ID == "o-5" {
			o5 = o
		}
	}
	// o-5 was placed while the REST and gRPC callees were down: priced
	// from the cached menu, older than the revision the kitchen's replica
	// has, its consumer's name filled in by the saga. The kitchen's ticket
	// and the card carry the order's price, not the replica's.
	if o5.PricedBy != "cached menu" || o5.ConsumerName != "Ada" || o5.Total != 1250 {
		t.Errorf("o-5 = %+v; want priced by the cached menu at 1250, consumer name Ada", o5)
	}
	if tk, a := rep.Tickets["o-5"], rep.Authorizations["o-5"]; tk.Total != o5.Total || a.Amount != o5.Total {
		t.Errorf("o-5: ticket %+v, card %+v; want both at the order's %d", tk, a, o5.Total)
	}
	for _, want := range []string{
		"POST /v1/orders o-1 → 202 APPROVAL_PENDING",
		"replica updated",
		"fallback: cached menu",
		"TicketCreated t-o-5 ($12.50 as ordered; the replica prices curry at $13.50, the order at $12.50)",
		"every service's copy of every value agrees with its source",
		"circuit breaker open",
		"fallback: name filled in later by the saga",
		"NotifyConsumer o-1",
		"one-way, no reply",
		"3 quotes gathered; cheapest: scooters",
		"15 orders: 12 approved, 2 rejected, 1 cancelled",
		"release 2 of the order service runs beside release 1",
		"POST /v2/orders o-10 → 202 APPROVAL_PENDING",
		"POST /v2/orders/o-10/cancel → 202 CANCEL_PENDING",
		"o-10 is CANCELLED for the v2 client, REJECTED (cancelled by the consumer) for the v1 client",
		"NotifyConsumer.v2 o-10 → c-ada: \"order o-10 is CANCELLED: cancelled by the consumer\"",
		"NotifyConsumer o-1 →",
		"release 1 retired",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("trace lacks %q:\n%s", want, out.String())
		}
	}
}

// TestKitchenKilledAndRestarted kills the kitchen while orders are in
// flight — its subscriptions, relay and database closed without draining —
// and starts it again on the same SQLite file and NATS store: every order
// still ends as it should, and nothing is applied twice.
func TestKitchenKilledAndRestarted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := fooddelivery.RunDemo(ctx, fooddelivery.DemoConfig{Out: &out, Bulk: 8, KillKitchen: true, Verbose: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	checkStates(t, rep, 8)
	for _, want := range []string{"kitchen       KILLED", "kitchen       restarted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("trace lacks %q:\n%s", want, out.String())
		}
	}
}
