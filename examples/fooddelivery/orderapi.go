package fooddelivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/courier-go/courier/rpc/httpx"
)

// The order service's REST API, by the book: its resources live under a
// version prefix (/v1, /v2), so that a version that breaks its clients is
// served beside the old one under its own; a state change is an operation
// on a sub-resource (POST /v2/orders/{id}/cancel), not a field a client
// overwrites; a client fetches an order with the resources it refers to in
// one request (?expand=consumer,restaurant) instead of one request per
// resource; and every error is an RFC 9457 problem
// (application/problem+json) with the status that says what went wrong.
// The OpenAPI documents that declare it are in contracts.go.
//
// Version 2 adds the cancellation, and with it two states that version 1
// clients do not know: they see a CANCEL_PENDING order as APPROVED, and a
// CANCELLED one as REJECTED with the reason "cancelled by the consumer".

// Related resources that GET /v1/orders/{id}?expand= includes.
const (
	ExpandConsumer   = "consumer"
	ExpandRestaurant = "restaurant"
)

// apiError is an error a REST handler answers with a problem.
type apiError struct {
	status int
	detail string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.detail)
}

// writeProblem answers r with err as a problem: an *apiError's status and
// detail, or 500.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := httpx.Problem{Status: http.StatusInternalServerError, Detail: err.Error(), Instance: r.URL.Path}
	var ae *apiError
	if errors.As(err, &ae) {
		p.Status, p.Detail = ae.status, ae.detail
	}
	httpx.WriteProblem(w, p)
}

// routesV1 serves version 1 of the API on mux.
func (s *orderService) routesV1(mux *http.ServeMux) {
	s.routes(mux, "v1", func(o *orderRow, c *ConsumerInfo, r *MenuResponse) any {
		v := o.view()
		v.Consumer, v.Restaurant = c, r
		return v
	})
}

// routes serves the operations every version has, under /version/, with
// the order as view shows it, with its related resources when they were
// asked for.
func (s *orderService) routes(mux *http.ServeMux, version string, view func(o *orderRow, c *ConsumerInfo, r *MenuResponse) any) {
	place := "POST /" + version + "/orders"
	mux.HandleFunc(place, func(w http.ResponseWriter, r *http.Request) {
		var req CreateOrderRequest
		if err := decodeJSON(r, &req); err != nil {
			writeProblem(w, r, err)
			return
		}
		o, err := s.place(r.Context(), place, req)
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, view(o, nil, nil))
	})
	mux.HandleFunc("GET /"+version+"/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		o, err := s.load(r.Context(), r.PathValue("id"))
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		consumer, restaurant, err := s.expand(r.Context(), o, r)
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, view(o, consumer, restaurant))
	})
}

// maxBody bounds the request bodies the services read.
const maxBody = 1 << 20

// routesV2 serves version 2 of the API on mux (release 2).
func (s *orderService) routesV2(mux *http.ServeMux) {
	s.routes(mux, "v2", func(o *orderRow, c *ConsumerInfo, r *MenuResponse) any {
		v := o.viewV2()
		v.Consumer, v.Restaurant = c, r
		return v
	})
	mux.HandleFunc("POST /v2/orders/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		o, err := s.cancel(r.Context(), r.PathValue("id"))
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, o.viewV2())
	})
}

// cancel starts the cancellation of an approved order: in one transaction
// the order becomes CANCEL_PENDING and the saga's first command, the
// ticket's cancellation, goes into the outbox; the replies do the rest
// (the card's authorization reversed, then CANCELLED). An order being
// cancelled or cancelled already is returned as it is.
func (s *orderService) cancel(ctx context.Context, id string) (*orderRow, error) {
	var o *orderRow
	started := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if o, err = loadOrder(ctx, tx, s.n.d, id); errors.Is(err, sql.ErrNoRows) {
			return &apiError{http.StatusNotFound, "no order " + id}
		} else if err != nil {
			return err
		}
		switch {
		case o.State == CancelPending || o.State == Cancelled:
			return nil // a retried cancellation: the same answer
		case o.State == ApprovalPending:
			return &apiError{http.StatusConflict, "order " + id + " is still being approved: cancel it once it is APPROVED"}
		case o.State != Approved || o.Step != stepDone:
			return &apiError{http.StatusConflict, "order " + id + " is " + o.State + ": only an APPROVED order can be cancelled"}
		}
		o.State, o.Step = CancelPending, stepUndoTicket
		if err := o.updateFrom(ctx, tx, s.n.d, Approved, stepDone); errors.Is(err, errChanged) {
			return &apiError{http.StatusConflict, err.Error()}
		} else if err != nil {
			return err
		}
		started = true
		return s.send(ctx, tx, o, CancelTicket{OrderID: o.ID})
	})
	if err != nil {
		return nil, err
	}
	if started {
		s.n.trace.Printf(s.n.label, "POST /v2/orders/%s/cancel → 202 %s; outbox: CancelTicket", o.ID, o.State)
	}
	return o, nil
}

// decodeJSON decodes r's JSON body into v; a body that does not decode is
// a 400.
func decodeJSON(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v); err != nil {
		return &apiError{http.StatusBadRequest, "the body is not the JSON the operation takes: " + err.Error()}
	}
	return nil
}

// load reads an order; an unknown one is a 404.
func (s *orderService) load(ctx context.Context, id string) (*orderRow, error) {
	o, err := loadOrder(ctx, s.n.db, s.n.d, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &apiError{http.StatusNotFound, "no order " + id}
	}
	return o, err
}

// expand fetches the related resources that r's expand parameter names,
// concurrently, from the services that own them: the consumer over REST,
// the restaurant over gRPC, each with its fallback. An unknown name is a
// 400.
func (s *orderService) expand(ctx context.Context, o *orderRow, r *http.Request) (*ConsumerInfo, *MenuResponse, error) {
	var wantConsumer, wantRestaurant bool
	for _, list := range r.URL.Query()["expand"] {
		for name := range strings.SplitSeq(list, ",") {
			switch strings.TrimSpace(name) {
			case ExpandConsumer:
				wantConsumer = true
			case ExpandRestaurant:
				wantRestaurant = true
			case "":
			default:
				return nil, nil, &apiError{http.StatusBadRequest, fmt.Sprintf("expand=%s: want %s or %s", name, ExpandConsumer, ExpandRestaurant)}
			}
		}
	}
	var (
		consumer   *ConsumerInfo
		restaurant *MenuResponse
		menuErr    error
		wg         sync.WaitGroup
	)
	if wantConsumer {
		wg.Go(func() {
			c := s.consumers.Consumer(ctx, o.ConsumerID)
			consumer = &c
		})
	}
	if wantRestaurant {
		wg.Go(func() {
			m, _, err := s.menus.Menu(ctx, o.RestaurantID)
			restaurant, menuErr = &m, err
		})
	}
	wg.Wait()
	if menuErr != nil {
		return nil, nil, &apiError{http.StatusServiceUnavailable, menuErr.Error()}
	}
	return consumer, restaurant, nil
}

// view is the order as version 1 shows it, in the states version 1 knows.
func (o *orderRow) view() OrderView {
	state := o.State
	switch state {
	case CancelPending:
		state = Approved // until it is cancelled
	case Cancelled:
		state = Rejected // with the reason reasonCancelled
	}
	return OrderView{ID: o.ID, State: state, ConsumerID: o.ConsumerID, ConsumerName: o.ConsumerName,
		RestaurantID: o.RestaurantID, Items: o.Items, Total: o.Total, Reason: o.Reason, PricedBy: o.PricedBy}
}

// viewV2 is the order as version 2 shows it.
func (o *orderRow) viewV2() OrderV2 {
	return OrderV2{ID: o.ID, State: o.State, ConsumerID: o.ConsumerID, ConsumerName: o.ConsumerName,
		RestaurantID: o.RestaurantID, Items: o.Items, Total: o.Total, Reason: o.Reason, PricedBy: o.PricedBy,
		Cancellable: o.State == Approved && o.Step == stepDone}
}
