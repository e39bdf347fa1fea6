package fooddelivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/httplb"
	"github.com/courier-go/courier/discovery/router"
	"github.com/courier-go/courier/rpc/httpx"
)

// Client is a client of the order service's REST API, version 1, and
// through V2 of version 2. It finds the service through the registry,
// sending each request to an instance that serves its version, or
// reaches it at a fixed URL (e.g. a router, see OrderRoutes).
type Client struct {
	v1, v2   *http.Client
	base     string              // URL the request paths are appended to
	resolver *discovery.Resolver // nil for a client of a fixed URL
	conns    *http.Transport     // a fixed URL's connections
}

// metaAPI is the registry metadata key of a version of a REST API
// ("api.v2"), whose value is the version of its document: an instance
// that has it serves that version.
func metaAPI(version string) string { return "api." + version }

// serves selects the instances that serve a version of the REST API.
func serves(version string) discovery.Health {
	key := metaAPI(version)
	return discovery.HealthFunc(func(i discovery.Instance) bool {
		_, ok := i.Metadata[key]
		return ok
	})
}

// OrderRoutes are the routes of a router (discovery/router) in front of
// the order service: each version of the orders API to the instances whose
// registrations say they serve it, so that /v2 reaches only instances of
// release 2 while release 1 runs beside it. RunDemo serves them.
func OrderRoutes() []router.Route {
	return []router.Route{
		{Prefix: "/v1/", Service: OrderService, Metadata: map[string]string{metaAPI("v1"): ""}},
		{Prefix: "/v2/", Service: OrderService, Metadata: map[string]string{metaAPI("v2"): ""}},
	}
}

// NewClient returns a client resolving order-service through reg.
func NewClient(reg discovery.Registry, opts ...ClientOption) (*Client, error) {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	tr := cfg.tracing()
	r, err := discovery.NewResolver(reg)
	if err != nil {
		return nil, err
	}
	c := &Client{base: "http://" + OrderService, resolver: r}
	for version, hc := range map[string]**http.Client{"v1": &c.v1, "v2": &c.v2} {
		t, err := httplb.New(r, httplb.WithHealth(serves(version)))
		if err != nil {
			r.Close()
			return nil, err
		}
		*hc = &http.Client{Transport: httpTransport(tr, t), Timeout: 5 * time.Second}
	}
	return c, nil
}

// NewClientURL returns a client of the order service's REST API at
// baseURL, http://host:port with an optional path prefix: a reverse proxy
// such as `courier router` that routes /v1/orders and /v2/orders to
// order-service.
func NewClientURL(baseURL string, opts ...ClientOption) (*Client, error) {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	base, err := orderBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	conns := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{Transport: httpTransport(cfg.tracing(), conns), Timeout: 5 * time.Second}
	return &Client{v1: hc, v2: hc, base: base, conns: conns}, nil
}

// orderBaseURL checks a base URL of the order service's REST API and
// returns it without a trailing slash.
func orderBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("fooddelivery: order service URL %q: want http://host:port[/prefix]", raw)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// Close releases the client's resolver, or its idle connections.
func (c *Client) Close() error {
	if c.resolver == nil {
		c.conns.CloseIdleConnections()
		return nil
	}
	return c.resolver.Close()
}

// do sends a request with body (JSON, if not nil) through hc and decodes
// a success's answer into out; a failure's error says the problem.
func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return responseError(method, path, resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// responseError describes a failed call: the problem's detail, when the
// body is an RFC 9457 problem, or the start of the body.
func responseError(method, path string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var p httpx.Problem
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") && json.Unmarshal(body, &p) == nil && p.Detail != "" {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, p.Detail)
	}
	if len(body) > 512 {
		body = body[:512]
	}
	return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
}

// orderPath is the path of an order in version of the API, with the
// related resources expand names.
func orderPath(version, id string, expand []string) string {
	path := "/" + version + "/orders/" + url.PathEscape(id)
	if len(expand) > 0 {
		path += "?expand=" + url.QueryEscape(strings.Join(expand, ","))
	}
	return path
}

// CreateOrder posts an order (POST /v1/orders); the answer comes before
// the saga ends.
func (c *Client) CreateOrder(ctx context.Context, req CreateOrderRequest) (OrderView, error) {
	var v OrderView
	return v, c.do(ctx, c.v1, http.MethodPost, "/v1/orders", req, &v)
}

// Order gets an order's current state (GET /v1/orders/{id}), with the
// related resources expand names (ExpandConsumer, ExpandRestaurant)
// fetched in the same request.
func (c *Client) Order(ctx context.Context, id string, expand ...string) (OrderView, error) {
	var v OrderView
	return v, c.do(ctx, c.v1, http.MethodGet, orderPath("v1", id, expand), nil, &v)
}

// AwaitFinal polls the order until it leaves APPROVAL_PENDING. Transient
// failures (the order service restarting) are retried until ctx ends.
func (c *Client) AwaitFinal(ctx context.Context, id string) (OrderView, error) {
	return await(ctx, id, func(ctx context.Context) (OrderView, string, error) {
		v, err := c.Order(ctx, id)
		return v, v.State, err
	})
}

// await polls get until the order it reads is in a final state.
func await[T any](ctx context.Context, id string, get func(ctx context.Context) (T, string, error)) (T, error) {
	for {
		v, state, err := get(ctx)
		if err == nil && state != ApprovalPending && state != CancelPending {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("order %s still %s: %w (last error: %v)", id, state, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// V2 returns the client of version 2 of the API.
func (c *Client) V2() *ClientV2 { return &ClientV2{c: c} }

// ClientV2 is a client of version 2 of the order service's REST API.
type ClientV2 struct{ c *Client }

// CreateOrder posts an order (POST /v2/orders).
func (c *ClientV2) CreateOrder(ctx context.Context, req CreateOrderRequest) (OrderV2, error) {
	var v OrderV2
	return v, c.c.do(ctx, c.c.v2, http.MethodPost, "/v2/orders", req, &v)
}

// Order gets an order (GET /v2/orders/{id}), with the related resources
// expand names.
func (c *ClientV2) Order(ctx context.Context, id string, expand ...string) (OrderV2, error) {
	var v OrderV2
	return v, c.c.do(ctx, c.c.v2, http.MethodGet, orderPath("v2", id, expand), nil, &v)
}

// Cancel asks for an approved order's cancellation
// (POST /v2/orders/{id}/cancel); the answer, CANCEL_PENDING, comes before
// the saga ends.
func (c *ClientV2) Cancel(ctx context.Context, id string) (OrderV2, error) {
	var v OrderV2
	return v, c.c.do(ctx, c.c.v2, http.MethodPost, orderPath("v2", id, nil)+"/cancel", nil, &v)
}

// AwaitFinal polls the order until it is neither APPROVAL_PENDING nor
// CANCEL_PENDING, retrying transient failures until ctx ends.
func (c *ClientV2) AwaitFinal(ctx context.Context, id string) (OrderV2, error) {
	return await(ctx, id, func(ctx context.Context) (OrderV2, string, error) {
		v, err := c.Order(ctx, id)
		return v, v.State, err
	})
}
