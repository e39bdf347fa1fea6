package fooddelivery

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/httplb"
	"github.com/courier-go/courier/rpc/httpx"
)

// Client is a client of the order service's REST API, which it finds
// through the registry or reaches at a fixed URL (e.g. a `courier router`).
type Client struct {
	http     *http.Client
	base     string              // URL the request paths are appended to
	resolver *discovery.Resolver // nil for a client of a fixed URL
}

// NewClient returns a client resolving order-service through reg.
func NewClient(reg discovery.Registry) (*Client, error) {
	r, err := discovery.NewResolver(reg)
	if err != nil {
		return nil, err
	}
	t, err := httplb.New(r)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &Client{http: &http.Client{Transport: t, Timeout: 5 * time.Second}, base: "http://" + OrderService, resolver: r}, nil
}

// NewClientURL returns a client of the order service's REST API at
// baseURL, http://host:port with an optional path prefix: a reverse proxy
// such as `courier router` that routes /v1/orders to order-service.
func NewClientURL(baseURL string) (*Client, error) {
	base, err := orderBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	return &Client{http: &http.Client{Transport: t, Timeout: 5 * time.Second}, base: base}, nil
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
		c.http.CloseIdleConnections()
		return nil
	}
	return c.resolver.Close()
}

func (c *Client) do(ctx context.Context, method, path string, body any) (OrderView, int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return OrderView{}, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return OrderView{}, 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return OrderView{}, 0, err
	}
	defer resp.Body.Close()
	var v OrderView
	if resp.StatusCode >= 300 {
		return v, resp.StatusCode, responseError(method, path, resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return v, resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return v, resp.StatusCode, nil
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

// CreateOrder posts an order (POST /v1/orders); the answer comes before
// the saga ends.
func (c *Client) CreateOrder(ctx context.Context, req CreateOrderRequest) (OrderView, error) {
	v, _, err := c.do(ctx, http.MethodPost, "/v1/orders", req)
	return v, err
}

// Order gets an order's current state (GET /v1/orders/{id}), with the
// related resources expand names (ExpandConsumer, ExpandRestaurant)
// fetched in the same request.
func (c *Client) Order(ctx context.Context, id string, expand ...string) (OrderView, error) {
	path := "/v1/orders/" + url.PathEscape(id)
	if len(expand) > 0 {
		path += "?expand=" + url.QueryEscape(strings.Join(expand, ","))
	}
	v, _, err := c.do(ctx, http.MethodGet, path, nil)
	return v, err
}

// AwaitFinal polls the order until it leaves APPROVAL_PENDING. Transient
// failures (the order service restarting) are retried until ctx ends.
func (c *Client) AwaitFinal(ctx context.Context, id string) (OrderView, error) {
	for {
		v, err := c.Order(ctx, id)
		if err == nil && v.State != ApprovalPending {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("order %s still %s: %w (last error: %v)", id, v.State, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Scenario is the scripted run of the demo and of the end-to-end tests.
type Scenario struct {
	Env *Env
	// System, when the services run in this process, lets the scenario
	// revise a menu, stop the synchronous callees to show the fallbacks,
	// and wait for notifications. Without it those steps are skipped.
	System *System
	// Bulk is the number of orders placed at once in the last phase
	// (default 12).
	Bulk int
	// Verbose traces the bulk orders' messages too.
	Verbose bool
	// Midway runs while the bulk orders are in flight, e.g. to kill and
	// restart a service.
	Midway func(ctx context.Context) error
	// OrderURL, when set, is where the scenario reaches the order
	// service's REST API (see NewClientURL), e.g. a `courier router`;
	// otherwise it resolves order-service in Env.Registry itself.
	OrderURL string
}

// Run runs the scenario and returns its report once every order is final
// and every service agrees, or an error saying what did not hold. When
// the services disagree the error wraps ErrDisagreement and the report,
// with what was read, comes with it.
func (sc *Scenario) Run(ctx context.Context) (*Report, error) {
	if err := sc.Env.validate(); err != nil {
		return nil, err
	}
	tr := sc.Env.Trace
	start := time.Now()
	client, err := sc.client()
	if err != nil {
		return nil, err
	}
	defer client.Close()
	rep := &Report{Expected: map[string]string{}}

	// The kitchen prices tickets from its replica: wait for the
	// restaurant events to have reached it.
	if err := waitReplica(ctx, sc.Env, len(seedRestaurants), len(seedRestaurants)); err != nil {
		return nil, err
	}
	tr.Printf("scenario", "phase 1: four orders at once; each answer is immediate, each saga finishes later")
	first := []struct {
		req  CreateOrderRequest
		want string
	}{
		{CreateOrderRequest{ID: "o-1", ConsumerID: "c-ada", RestaurantID: "r-ajanta", Items: []LineItem{{"curry", 2}, {"samosa", 1}}}, Approved},
		{CreateOrderRequest{ID: "o-2", ConsumerID: "c-bob", RestaurantID: "r-bella", Items: []LineItem{{"pizza", 2}}}, Rejected},
		{CreateOrderRequest{ID: "o-3", ConsumerID: "c-zed", RestaurantID: "r-ajanta", Items: []LineItem{{"samosa", 1}}}, Rejected},
		{CreateOrderRequest{ID: "o-4", ConsumerID: "c-bob", RestaurantID: "r-bella", Items: []LineItem{{"pizza", 1}}}, Approved},
	}
	var reqs []CreateOrderRequest
	for _, o := range first {
		reqs = append(reqs, o.req)
		rep.Expected[o.req.ID] = o.want
	}
	if err := placeAll(ctx, client, reqs); err != nil {
		return nil, err
	}
	if sc.System != nil {
		// The client of o-1 waits to be told rather than polling.
		if err := awaitNotification(ctx, sc.System, "o-1"); err != nil {
			return nil, err
		}
		tr.Printf("scenario", "client of o-1 notified; the others poll GET /v1/orders/{id}")
	}
	if err := awaitAll(ctx, client, reqs); err != nil {
		return nil, err
	}
	o1, err := client.Order(ctx, "o-1", ExpandConsumer, ExpandRestaurant)
	if err != nil {
		return nil, err
	}
	if o1.Consumer == nil || o1.Restaurant == nil {
		return nil, fmt.Errorf("GET /v1/orders/o-1?expand=consumer,restaurant: %+v lacks the consumer or the restaurant", o1)
	}
	tr.Printf("scenario", "GET /v1/orders/o-1?expand=consumer,restaurant → %s, ordered by %s from %s (%d menu items): three resources in one request",
		o1.State, o1.Consumer.Name, o1.Restaurant.Name, len(o1.Restaurant.Menu))

	caller, closeCaller, err := newCaller(ctx, sc.Env)
	if err != nil {
		return nil, err
	}
	defer closeCaller()
	tr.Printf("scenario", "publish a RequestQuote for o-1 to every courier fleet, gather the answers")
	if rep.Quotes, err = QuoteDelivery(ctx, caller, "o-1", 4, 2*time.Second); err != nil {
		return nil, err
	}
	if len(rep.Quotes) > 0 {
		tr.Printf("scenario", "%d quotes gathered; cheapest: %s at %s", len(rep.Quotes), rep.Quotes[0].Fleet, cents(rep.Quotes[0].Price))
	}

	if sc.System != nil {
		tr.Printf("scenario", "phase 2: the curry gets dearer; the kitchen's replica follows from the event")
		if err := sc.System.ReviseMenu(ctx, "r-ajanta", []MenuItem{{ID: "samosa", Name: "Samosa", Price: 450}, {ID: "curry", Name: "Chicken curry", Price: 1350}}); err != nil {
			return nil, err
		}
		if err := waitReplica(ctx, sc.Env, len(seedRestaurants), len(seedRestaurants)+1); err != nil {
			return nil, err
		}
		tr.Printf("scenario", "the consumer service's REST API and the restaurant service's gRPC API stop answering")
		if err := sc.System.StopAPI(ctx, ConsumerService); err != nil {
			return nil, err
		}
		if err := sc.System.StopAPI(ctx, RestaurantService); err != nil {
			return nil, err
		}
		// One after the other: two failed calls open each breaker, the
		// third is rejected without a network call; all use the fallbacks.
		var outage []CreateOrderRequest
		for _, id := range []string{"o-5", "o-6", "o-7"} {
			o := CreateOrderRequest{ID: id, ConsumerID: "c-ada", RestaurantID: "r-ajanta", Items: []LineItem{{"curry", 1}}}
			rep.Expected[id] = Approved
			outage = append(outage, o)
			if err := placeAll(ctx, client, []CreateOrderRequest{o}); err != nil {
				return nil, err
			}
		}
		if err := awaitAll(ctx, client, outage); err != nil {
			return nil, err
		}
		for _, name := range []string{ConsumerService, RestaurantService} {
			if err := sc.System.StopService(ctx, name); err != nil {
				return nil, err
			}
			if err := sc.System.Restart(ctx, name); err != nil {
				return nil, err
			}
			tr.Printf(name, "restarted; serving and registered again")
		}
		time.Sleep(openDelay) // the breakers let a probe through
		tr.Printf("scenario", "one order alone: its calls are the half-open breakers' probes, which close them")
		o8 := CreateOrderRequest{ID: "o-8", ConsumerID: "c-ada", RestaurantID: "r-ajanta", Items: []LineItem{{"samosa", 2}}}
		rep.Expected[o8.ID] = Approved
		if err := placeAll(ctx, client, []CreateOrderRequest{o8}); err != nil {
			return nil, err
		}
		if err := awaitAll(ctx, client, []CreateOrderRequest{o8}); err != nil {
			return nil, err
		}
	}

	bulk := sc.Bulk
	if bulk <= 0 {
		bulk = 12
	}
	tr.Printf("scenario", "phase 3: %d orders at once on the sharded channels (their messages are counted, not traced)", bulk)
	reqs = reqs[:0]
	for i := range bulk {
		id := fmt.Sprintf("o-%d", 9+i) // o-1 to o-8 are the earlier phases'
		reqs = append(reqs, CreateOrderRequest{ID: id, ConsumerID: "c-ada", RestaurantID: "r-ajanta", Items: []LineItem{{"samosa", 1}}})
		rep.Expected[id] = Approved
	}
	tr.mute(!sc.Verbose)
	var midErr error
	var wg sync.WaitGroup
	if sc.Midway != nil {
		wg.Go(func() { midErr = sc.Midway(ctx) })
	}
	err = placeAll(ctx, client, reqs)
	wg.Wait()
	if err = errors.Join(err, midErr); err != nil {
		return nil, err
	}
	if err := awaitAll(ctx, client, reqs); err != nil {
		return nil, err
	}
	if muted := tr.mute(false); muted > 0 {
		tr.Printf("scenario", "phase 3: %d orders final; %d trace lines not shown", bulk, muted)
	}
	err = rep.collect(ctx, sc.Env, client)
	rep.Elapsed = time.Since(start)
	if err != nil && !errors.Is(err, ErrDisagreement) {
		return nil, err
	}
	return rep, err
}

// client returns the scenario's client of the order service.
func (sc *Scenario) client() (*Client, error) {
	if sc.OrderURL != "" {
		return NewClientURL(sc.OrderURL)
	}
	return NewClient(sc.Env.Registry)
}

func placeAll(ctx context.Context, c *Client, reqs []CreateOrderRequest) error {
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			// A POST is idempotent by order id: retry while the order
			// service is unreachable.
			for {
				_, err := c.CreateOrder(ctx, r)
				if err == nil || ctx.Err() != nil {
					errs[i] = err
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func awaitAll(ctx context.Context, c *Client, reqs []CreateOrderRequest) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, r := range reqs {
		if _, err := c.AwaitFinal(ctx, r.ID); err != nil {
			return err
		}
	}
	return nil
}

func awaitNotification(ctx context.Context, s *System, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		select {
		case n := <-s.Notifications():
			if n.OrderID == id {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("no notification for %s: %w", id, ctx.Err())
		}
	}
}

func newCaller(ctx context.Context, env *Env) (*commands.Caller, func(), error) {
	b, err := env.OpenBroker(ctx, "client")
	if err != nil {
		return nil, nil, err
	}
	c, err := commands.NewCaller(ctx, b, "")
	if err != nil {
		b.Close(ctx)
		return nil, nil, err
	}
	return c, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
		b.Close(ctx)
	}, nil
}

// withDB runs f on the service's database.
func withDB(ctx context.Context, env *Env, service string, f func(db *sql.DB, d interface{ Rebind(string) string }) error) error {
	db, d, err := env.OpenDB(ctx, service)
	if err != nil {
		return err
	}
	defer db.Close()
	return f(db, d)
}

// waitReplica waits until the kitchen's replica has n restaurants with
// revisions adding up to at least rev.
func waitReplica(ctx context.Context, env *Env, n, rev int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return withDB(ctx, env, KitchenService, func(db *sql.DB, _ interface{ Rebind(string) string }) error {
		for {
			var count, sum int
			err := db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(revision), 0) FROM fd_restaurant_replica").Scan(&count, &sum)
			if err == nil && count >= n && sum >= rev {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("kitchen replica has %d restaurants (revisions %d), want %d (%d): %w (last error: %v)", count, sum, n, rev, ctx.Err(), err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
}
