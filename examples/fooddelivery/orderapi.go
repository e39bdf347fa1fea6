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
// version prefix (/v1), so that a version that breaks its clients can be
// served beside the old one under its own; a client fetches an order with
// the resources it refers to in one request (?expand=consumer,restaurant)
// instead of one request per resource; and every error is an RFC 9457
// problem (application/problem+json) with the status that says what went
// wrong. The OpenAPI document that declares it is in contracts.go.

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
	mux.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		var req CreateOrderRequest
		if err := decodeJSON(r, &req); err != nil {
			writeProblem(w, r, err)
			return
		}
		o, err := s.place(r.Context(), "POST /v1/orders", req)
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, o.view())
	})
	mux.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		o, err := s.load(r.Context(), r.PathValue("id"))
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		v := o.view()
		if v.Consumer, v.Restaurant, err = s.expand(r.Context(), o, r); err != nil {
			writeProblem(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// maxBody bounds the request bodies the services read.
const maxBody = 1 << 20

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

func (o *orderRow) view() OrderView {
	return OrderView{ID: o.ID, State: o.State, ConsumerID: o.ConsumerID, ConsumerName: o.ConsumerName,
		RestaurantID: o.RestaurantID, Items: o.Items, Total: o.Total, Reason: o.Reason, PricedBy: o.PricedBy}
}
