// Package deliveryhttp is the REST adapter of the delivery service: a
// server handler exposing any delivery.Estimator as
// GET /estimates?restaurant=...&address=..., and a client implementing
// delivery.Estimator over HTTP through the resilience policies
// (rpc/httpx). GET is idempotent, so the client's retries apply.
package deliveryhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/courier-go/courier/examples/rpc/delivery"
	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/httpx"
)

// Handler serves svc.
func Handler(svc delivery.Estimator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /estimates", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		est, err := svc.Estimate(r.Context(), delivery.EstimateRequest{RestaurantID: q.Get("restaurant"), Address: q.Get("address")})
		switch {
		case errors.Is(err, delivery.ErrUnknownRestaurant):
			httpx.WriteProblem(w, httpx.Problem{Status: http.StatusNotFound, Detail: err.Error(), Instance: r.URL.Path})
		case err != nil:
			httpx.WriteProblem(w, httpx.Problem{Status: http.StatusServiceUnavailable, Detail: err.Error(), Instance: r.URL.Path})
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(est)
		}
	})
	return mux
}

// Client is a delivery.Estimator over HTTP. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	client *http.Client
}

var _ delivery.Estimator = (*Client)(nil)

// NewClient calls the service at baseURL through chain; the fallback
// answers delivery.Fallback when the policies give up.
func NewClient(baseURL string, chain *resilience.Chain, base http.RoundTripper) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("deliveryhttp: base URL %q is not absolute: %v", baseURL, err)
	}
	body, _ := json.Marshal(delivery.Fallback)
	opts := []httpx.TransportOption{httpx.WithFallback(httpx.StaticResponse(http.StatusOK,
		http.Header{"Content-Type": {"application/json"}}, body))}
	if base != nil {
		opts = append(opts, httpx.WithBase(base))
	}
	t, err := httpx.NewTransport(chain, opts...)
	if err != nil {
		return nil, fmt.Errorf("deliveryhttp: %w", err)
	}
	return &Client{base: u, client: &http.Client{Transport: t}}, nil
}

// Estimate implements delivery.Estimator.
func (c *Client) Estimate(ctx context.Context, req delivery.EstimateRequest) (delivery.Estimate, error) {
	u := c.base.JoinPath("estimates")
	u.RawQuery = url.Values{"restaurant": {req.RestaurantID}, "address": {req.Address}}.Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return delivery.Estimate{}, fmt.Errorf("deliveryhttp: %w", err)
	}
	resp, err := c.client.Do(hreq)
	if err != nil {
		return delivery.Estimate{}, fmt.Errorf("deliveryhttp: estimate: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var est delivery.Estimate
		if err := json.NewDecoder(resp.Body).Decode(&est); err != nil {
			return delivery.Estimate{}, fmt.Errorf("deliveryhttp: decode estimate: %w", err)
		}
		return est, nil
	case http.StatusNotFound:
		return delivery.Estimate{}, fmt.Errorf("%w %q", delivery.ErrUnknownRestaurant, req.RestaurantID)
	}
	return delivery.Estimate{}, fmt.Errorf("deliveryhttp: estimate: %s", resp.Status)
}
