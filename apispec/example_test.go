package apispec_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/courier-go/courier/apispec"
)

type OrderCreated struct {
	OrderID string `json:"orderId"`
	Cents   int64  `json:"cents"`
}

func (OrderCreated) EventType() string { return "orders.OrderCreated" }

type ReserveCredit struct {
	OrderID string `json:"orderId"`
	Cents   int64  `json:"cents"`
}

func (ReserveCredit) CommandType() string { return "accounting.ReserveCredit" }

type CreditReserved struct{}

func (CreditReserved) ReplyType() string { return "accounting.CreditReserved" }

type InsufficientCredit struct {
	AvailableCents int64 `json:"availableCents"`
}

func (InsufficientCredit) ReplyType() string { return "accounting.InsufficientCredit" }

type Order struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

type CreateOrder struct {
	ConsumerID string `json:"consumerId"`
}

func ExampleSpec_AsyncAPI() {
	s := apispec.New("order-service", "1.0.0")
	apispec.Publishes[OrderCreated](s, "Order")
	apispec.Sends[ReserveCredit](s, "accounting",
		apispec.Replies[CreditReserved](), apispec.Fails[InsufficientCredit]())
	doc, err := s.AsyncAPI()
	if err != nil {
		fmt.Println(err)
		return
	}
	var d struct {
		Operations map[string]struct {
			Action string `json:"action"`
			Reply  *struct {
				Messages []struct {
					Ref string `json:"$ref"`
				} `json:"messages"`
			} `json:"reply"`
		} `json:"operations"`
	}
	if err := json.Unmarshal(doc.JSON(), &d); err != nil {
		fmt.Println(err)
		return
	}
	keys := make([]string, 0, len(d.Operations))
	for k := range d.Operations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		op := d.Operations[k]
		fmt.Println(op.Action, k)
		if op.Reply != nil {
			for _, m := range op.Reply.Messages {
				fmt.Println("  reply", m.Ref[strings.LastIndex(m.Ref, "/")+1:])
			}
		}
	}
	// Output:
	// send send.Order.orders.OrderCreated
	// send send.accounting.accounting.ReserveCredit
	//   reply accounting.CreditReserved
	//   reply accounting.InsufficientCredit
	//   reply courier.HandlerFailure
}

type OrderCreatedV2 struct {
	OrderID string `json:"orderId"`
	Cents   int64  `json:"cents"`
	Notes   string `json:"notes,omitempty"`
}

func (OrderCreatedV2) EventType() string { return "orders.OrderCreated" }

type OrderCreatedV3 struct {
	OrderID string `json:"orderId"`
}

func (OrderCreatedV3) EventType() string { return "orders.OrderCreated" }

func ExampleDiff() {
	document := func(version string, declare func(*apispec.Spec)) *apispec.Document {
		s := apispec.New("order-service", version)
		declare(s)
		doc, err := s.AsyncAPI()
		if err != nil {
			panic(err)
		}
		return doc
	}
	v1 := document("1.0.0", func(s *apispec.Spec) { apispec.Publishes[OrderCreated](s, "Order") })
	v2 := document("1.1.0", func(s *apispec.Spec) { apispec.Publishes[OrderCreatedV2](s, "Order") })
	v3 := document("1.2.0", func(s *apispec.Spec) { apispec.Publishes[OrderCreatedV3](s, "Order") })
	for _, pair := range [][2]*apispec.Document{{v1, v2}, {v2, v3}} {
		r, err := apispec.Diff(pair[0], pair[1])
		if err != nil {
			fmt.Println(err)
			return
		}
		_ = r.WriteText(os.Stdout)
	}
	// Output:
	// order-service.asyncapi.json (asyncapi 1.0.0 → 1.1.0): 1 changes, 0 breaking; needs a minor version change
	//   compatible property-added                   message orders.OrderCreated payload.notes: optional property added
	//                                               (consumers compatible, publishers compatible; at /components/schemas/OrderCreatedV2/properties/notes)
	// order-service.asyncapi.json (asyncapi 1.1.0 → 1.2.0): 2 changes, 2 breaking; needs a major version change
	//   BREAKING   property-removed                 message orders.OrderCreated payload.cents: property removed
	//                                               (consumers breaking, publishers compatible; at /components/schemas/OrderCreatedV2/properties/cents)
	//   BREAKING   property-removed                 message orders.OrderCreated payload.notes: property removed
	//                                               (consumers breaking, publishers compatible; at /components/schemas/OrderCreatedV2/properties/notes)
	//   VERSION    a breaking change needs a new major version: 2.0.0 after 1.1.0, not 1.2.0
}

func ExampleOperation() {
	s := apispec.New("order-service", "1.0.0")
	apispec.Operation[CreateOrder, Order](s, "POST /orders", apispec.Summary("Create an order"),
		apispec.Status(http.StatusAccepted), apispec.Problems(400))
	apispec.Operation[apispec.NoBody, Order](s, "POST /orders/{id}/cancel", apispec.Summary("Cancel an order"),
		apispec.Problems(404, 409))
	apispec.Operation[apispec.NoBody, Order](s, "GET /orders/{id}", apispec.Summary("Get an order"),
		apispec.Query("expand", "related resources to include"), apispec.Problems(404))
	doc, err := s.OpenAPI()
	if err != nil {
		fmt.Println(err)
		return
	}
	m := doc.OpenAPI() // kin-openapi's model
	paths := make([]string, 0, m.Paths.Len())
	for path := range m.Paths.Map() {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		for method, op := range m.Paths.Value(path).Operations() {
			fmt.Println(method, path, op.OperationID, op.Responses.Len(), "responses")
		}
	}
	// Output:
	// POST /orders postOrders 2 responses
	// GET /orders/{id} getOrdersId 2 responses
	// POST /orders/{id}/cancel postOrdersIdCancel 3 responses
}

func ExampleValidator() {
	s := apispec.New("order-service", "1.0.0")
	apispec.Operation[CreateOrder, Order](s, "POST /orders", apispec.Status(http.StatusAccepted), apispec.Problems(400))
	doc, err := s.OpenAPI()
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := apispec.NewValidator(doc)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := httptest.NewRequest("POST", "/orders", strings.NewReader(`{"consumerId":"c-1"}`))
	r.Header.Set("Content-Type", "application/json")
	fmt.Println(v.ValidateRequest(context.Background(), r))
	header := http.Header{"Content-Type": {"application/json"}}
	err = v.ValidateResponse(context.Background(), r, http.StatusAccepted, header, []byte(`{"id":"o-1"}`))
	fmt.Println(strings.Contains(fmt.Sprint(err), "missing property 'state'"))
	// Output:
	// <nil>
	// true
}

func ExampleCheck() {
	yaml := func(version string) []byte {
		s := apispec.New("order-service", version)
		apispec.Publishes[OrderCreatedV3](s, "Order")
		doc, err := s.AsyncAPI()
		if err != nil {
			panic(err)
		}
		y, err := doc.YAML()
		if err != nil {
			panic(err)
		}
		return y
	}
	baseline := fstest.MapFS{"order/asyncapi.yaml": {Data: yaml("1.0.0")}}
	current := fstest.MapFS{"order/asyncapi.yaml": {Data: yaml("1.0.1")}}
	reports, err := apispec.Check(baseline, current)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(apispec.CheckPassed(reports), reports[0].Bump)
	// Output:
	// true none
}
