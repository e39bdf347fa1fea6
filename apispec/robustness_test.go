package apispec

import (
	"testing"

	"github.com/courier-go/courier/codec"
)

// The robustness principle as Courier applies it: a writer may add what
// readers do not know (they ignore it), and a reader defaults what an
// older writer leaves out. Version 2 of an event adds optional fields to
// version 1; the two versions run side by side, each reading the other's
// payloads, and the compatibility rules call the change compatible.

type orderPlacedV1 struct {
	OrderID string `json:"orderId"`
	Cents   int64  `json:"cents"`
}

func (orderPlacedV1) EventType() string { return "orders.OrderPlaced" }

type orderPlacedV2 struct {
	OrderID  string   `json:"orderId"`
	Cents    int64    `json:"cents"`
	Currency string   `json:"currency,omitempty"` // new, optional: v1 writers leave it out
	Items    []string `json:"items,omitempty"`    // new, optional
}

func (orderPlacedV2) EventType() string { return "orders.OrderPlaced" }

// currency is how a v2 reader defaults what a v1 writer did not send.
func (o orderPlacedV2) currency() string {
	if o.Currency == "" {
		return "EUR"
	}
	return o.Currency
}

// orderPlacedV2Strict makes the new field required instead.
type orderPlacedV2Strict struct {
	OrderID  string `json:"orderId"`
	Cents    int64  `json:"cents"`
	Currency string `json:"currency"`
}

func (orderPlacedV2Strict) EventType() string { return "orders.OrderPlaced" }

func TestRobustnessPrinciple(t *testing.T) {
	var codecs codec.Set

	// A v2 writer, a v1 reader: the unknown fields are ignored.
	data, ct, err := codecs.Encode(orderPlacedV2{OrderID: "o-1", Cents: 1250, Currency: "CHF", Items: []string{"curry"}})
	if err != nil {
		t.Fatal(err)
	}
	var v1 orderPlacedV1
	if err := codecs.Decode(ct, data, &v1); err != nil {
		t.Fatalf("a v1 reader refused a v2 payload: %v", err)
	}
	if v1 != (orderPlacedV1{OrderID: "o-1", Cents: 1250}) {
		t.Errorf("v1 reader: %+v", v1)
	}

	// A v1 writer, a v2 reader: the missing fields are defaulted.
	data, ct, err = codecs.Encode(orderPlacedV1{OrderID: "o-2", Cents: 800})
	if err != nil {
		t.Fatal(err)
	}
	var v2 orderPlacedV2
	if err := codecs.Decode(ct, data, &v2); err != nil {
		t.Fatalf("a v2 reader refused a v1 payload: %v", err)
	}
	if v2.OrderID != "o-2" || v2.Cents != 800 || v2.currency() != "EUR" || v2.Items != nil {
		t.Errorf("v2 reader: %+v (currency %s)", v2, v2.currency())
	}

	// The contracts agree: for the consumers of what the service publishes
	// and for the publishers of what it consumes, adding optional fields
	// is compatible and needs a minor version.
	compare := func(old, new *Spec) *Report { return diffSpecs(t, old, new, (*Spec).AsyncAPI) }
	for _, consumes := range []bool{false, true} {
		old, new := New("orders", "1.0.0"), New("orders", "1.1.0")
		if consumes {
			Consumes[orderPlacedV1](old, "Order")
			Consumes[orderPlacedV2](new, "Order")
		} else {
			Publishes[orderPlacedV1](old, "Order")
			Publishes[orderPlacedV2](new, "Order")
		}
		r := compare(old, new)
		if r.Breaking() || r.Bump != BumpMinor || r.VersionError != "" || len(r.Changes) != 2 {
			t.Errorf("consumes %v: v1 to v2 %+v", consumes, r)
		}
	}

	// A required field instead breaks the publishers of an event the
	// service consumes: v1 writers do not send it. Not so for an event it
	// publishes, which only it writes.
	old, new := New("orders", "1.0.0"), New("orders", "1.1.0")
	Consumes[orderPlacedV1](old, "Order")
	Consumes[orderPlacedV2Strict](new, "Order")
	r := compare(old, new)
	if c := findChange(t, r, "required-property-added"); !c.Breaking || r.VersionError == "" {
		t.Errorf("a required field: %+v", r)
	}
	old, new = New("orders", "1.0.0"), New("orders", "1.1.0")
	Publishes[orderPlacedV1](old, "Order")
	Publishes[orderPlacedV2Strict](new, "Order")
	if r := compare(old, new); r.Breaking() || r.VersionError != "" {
		t.Errorf("a required field the service writes: %+v", r)
	}
}
