package fooddelivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/grpcresolver"
	"github.com/courier-go/courier/discovery/httplb"
	"github.com/courier-go/courier/examples/fooddelivery/restaurantpb"
	"github.com/courier-go/courier/observe/tracing"
	"github.com/courier-go/courier/resilience"
)

// The order service's synchronous calls go through two small ports, each
// with a REST or gRPC adapter that finds the callee through the registry,
// and a fallback used when the call fails.

// callTimeout bounds each synchronous call.
const callTimeout = 500 * time.Millisecond

// ConsumerDirectory looks consumers up. The fallback never fails.
type ConsumerDirectory interface {
	Consumer(ctx context.Context, id string) ConsumerInfo
}

// MenuSource gives restaurants' menus and says where the menu came from.
type MenuSource interface {
	Menu(ctx context.Context, restaurantID string) (MenuResponse, string, error)
}

// guard returns the resilience policies of one synchronous client: a
// timeout per call and a circuit breaker that opens after two failures in
// a row and lets a probe through after openDelay, reporting to obs (the
// node's metrics). The order service's
// fallbacks sit outside it and see both failed calls and rejections.
func guard(name string, logger *slog.Logger, obs resilience.Observer) (*resilience.Chain, error) {
	return resilience.NewChain(resilience.WithName(name), resilience.WithLogger(logger), resilience.WithObserver(obs),
		resilience.WithTimeout(callTimeout),
		resilience.WithCircuitBreaker(resilience.FailureCount(2, 2), resilience.OpenDelay(openDelay)))
}

// openDelay is how long a breaker stays open before a probe.
const openDelay = time.Second

// restConsumers calls GET http://consumer-service/consumers/{id}; the
// host name is resolved through the registry by httplb, and the call is
// guarded by a circuit breaker.
type restConsumers struct {
	client *http.Client
	call   resilience.Endpoint[string, ConsumerInfo]
}

func newRESTConsumers(r *discovery.Resolver, logger *slog.Logger, obs resilience.Observer, tr *tracing.Tracing) (*restConsumers, error) {
	t, err := httplb.New(r, httplb.WithHealth(speaks("http")))
	if err != nil {
		return nil, err
	}
	chain, err := guard(ConsumerService, logger, obs)
	if err != nil {
		return nil, err
	}
	c := &restConsumers{client: &http.Client{Transport: httpTransport(tr, t)}}
	c.call = resilience.Wrap(chain, resilience.Spec[string, ConsumerInfo]{
		Key: func(string) string { return ConsumerService },
	}, c.do)
	return c, nil
}

func (c *restConsumers) get(ctx context.Context, id string) (ConsumerInfo, error) {
	return c.call(ctx, id)
}

func (c *restConsumers) do(ctx context.Context, id string) (ConsumerInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ConsumerService+"/consumers/"+id, nil)
	if err != nil {
		return ConsumerInfo{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return ConsumerInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("GET /consumers/%s: %s", id, resp.Status)
		if resp.StatusCode < 500 {
			err = resilience.Permanent(err) // the callee is fine: no strike against it
		}
		return ConsumerInfo{}, err
	}
	var info ConsumerInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return ConsumerInfo{}, fmt.Errorf("GET /consumers/%s: %w", id, err)
	}
	return info, nil
}

// consumerFallback answers with an unnamed consumer when the REST call
// fails: the saga's VerifyConsumer reply fills the name in later.
type consumerFallback struct {
	next  *restConsumers
	trace *Trace
	label string // the caller's, in the trace
}

func (f consumerFallback) Consumer(ctx context.Context, id string) ConsumerInfo {
	start := time.Now()
	info, err := f.next.get(ctx, id)
	if err != nil {
		f.trace.Printf(f.label, "REST GET consumer-service/consumers/%s failed (%s) → fallback: name filled in later by the saga", id, shortErr(err))
		return ConsumerInfo{ID: id}
	}
	f.trace.Printf(f.label, "REST GET consumer-service/consumers/%s → %q in %s", id, info.Name, since(start))
	return info
}

// grpcMenus calls fooddelivery.restaurant.v1.Restaurants/GetMenu, with
// the client generated from restaurantpb/restaurant.proto, at
// courier:///restaurant-service, resolved through the registry and guarded
// by a circuit breaker.
type grpcMenus struct {
	conn   *grpc.ClientConn
	client restaurantpb.RestaurantsClient
	call   resilience.Endpoint[string, MenuResponse]
}

func newGRPCMenus(r *discovery.Resolver, logger *slog.Logger, obs resilience.Observer, tr *tracing.Tracing) (*grpcMenus, error) {
	chain, err := guard(RestaurantService, logger, obs)
	if err != nil {
		return nil, err
	}
	b, err := grpcresolver.NewBuilder(r, speaks("grpc")) // not its HTTP endpoint
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("courier:///"+RestaurantService, append([]grpc.DialOption{grpc.WithResolvers(b),
		grpc.WithDefaultServiceConfig(grpcresolver.RoundRobin),
		grpc.WithTransportCredentials(insecure.NewCredentials())}, grpcDialOptions(tr)...)...)
	if err != nil {
		return nil, fmt.Errorf("gRPC client for %s: %w", RestaurantService, err)
	}
	g := &grpcMenus{conn: conn, client: restaurantpb.NewRestaurantsClient(conn)}
	g.call = resilience.Wrap(chain, resilience.Spec[string, MenuResponse]{
		Key: func(string) string { return RestaurantService },
	}, g.do)
	return g, nil
}

func (g *grpcMenus) get(ctx context.Context, id string) (MenuResponse, error) { return g.call(ctx, id) }

func (g *grpcMenus) do(ctx context.Context, id string) (MenuResponse, error) {
	resp, err := g.client.GetMenu(ctx, &restaurantpb.GetMenuRequest{RestaurantId: id})
	if err != nil {
		return MenuResponse{}, err
	}
	return menuFromMessage(resp), nil
}

func (g *grpcMenus) Close() error { return g.conn.Close() }

// menuFallback keeps the last menu each restaurant sent and prices with it
// when the gRPC call fails.
type menuFallback struct {
	next  *grpcMenus
	trace *Trace
	label string // the caller's, in the trace
	mu    sync.Mutex
	cache map[string]MenuResponse
}

// errNoMenu means the call failed and no menu was cached.
var errNoMenu = errors.New("restaurant service unavailable and no cached menu")

func (f *menuFallback) Menu(ctx context.Context, id string) (MenuResponse, string, error) {
	start := time.Now()
	menu, err := f.next.get(ctx, id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.cache[id] = menu
		f.trace.Printf(f.label, "gRPC Restaurants/GetMenu %s → %d items in %s", id, len(menu.Menu), since(start))
		return menu, RestaurantService, nil
	}
	cached, ok := f.cache[id]
	if !ok {
		f.trace.Printf(f.label, "gRPC Restaurants/GetMenu %s failed (%s), nothing cached", id, shortErr(err))
		return MenuResponse{}, "", fmt.Errorf("menu of %s: %w: %w", id, errNoMenu, err)
	}
	f.trace.Printf(f.label, "gRPC Restaurants/GetMenu %s failed (%s) → fallback: cached menu", id, shortErr(err))
	return cached, "cached menu", nil
}

func since(t time.Time) string {
	return fmt.Sprintf("%.1fms", float64(time.Since(t).Microseconds())/1000)
}

// shortErr keeps the trace on one readable line.
func shortErr(err error) string {
	s := err.Error()
	for _, cut := range []string{"circuit breaker open", "connection refused", "Unavailable", "no available instance", "deadline exceeded", "unknown service"} {
		if strings.Contains(s, cut) {
			return cut
		}
	}
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}
