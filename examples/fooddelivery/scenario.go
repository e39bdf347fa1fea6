package fooddelivery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/courier-go/courier/commands"
)

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
	if err := placeAll(ctx, createV1(client), reqs); err != nil {
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
			if err := placeAll(ctx, createV1(client), []CreateOrderRequest{o}); err != nil {
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
		if err := placeAll(ctx, createV1(client), []CreateOrderRequest{o8}); err != nil {
			return nil, err
		}
		if err := awaitAll(ctx, client, []CreateOrderRequest{o8}); err != nil {
			return nil, err
		}
	}

	if err := sc.versions(ctx, client, rep); err != nil {
		return nil, err
	}

	bulk := sc.Bulk
	if bulk <= 0 {
		bulk = 12
	}
	tr.Printf("scenario", "phase 4: %d orders at once on the sharded channels (their messages are counted, not traced)", bulk)
	reqs = reqs[:0]
	for i := range bulk {
		id := fmt.Sprintf("o-%d", 12+i) // o-1 to o-11 are the earlier phases'
		reqs = append(reqs, CreateOrderRequest{ID: id, ConsumerID: "c-ada", RestaurantID: "r-ajanta", Items: []LineItem{{"samosa", 1}}})
		rep.Expected[id] = Approved
	}
	tr.mute(!sc.Verbose)
	var midErr error
	var wg sync.WaitGroup
	if sc.Midway != nil {
		wg.Go(func() { midErr = sc.Midway(ctx) })
	}
	err = placeAll(ctx, createV1(client), reqs)
	wg.Wait()
	if err = errors.Join(err, midErr); err != nil {
		return nil, err
	}
	if err := awaitAll(ctx, client, reqs); err != nil {
		return nil, err
	}
	if muted := tr.mute(false); muted > 0 {
		tr.Printf("scenario", "phase 4: %d orders final; %d trace lines not shown", bulk, muted)
	}
	err = rep.collect(ctx, sc.Env, client)
	rep.Elapsed = time.Since(start)
	if err != nil && !errors.Is(err, ErrDisagreement) {
		return nil, err
	}
	return rep, err
}

// versions is phase 3: version 2 of the orders API beside version 1. When
// the System runs release 1 of the order service alone, release 2 starts
// beside it, on the same database and channels: it serves /v1 and /v2,
// and its sagas send NotifyConsumer.v2, which the notification service
// handles beside NotifyConsumer. A version 1 client places o-9, a version 2
// client o-10 and cancels it (POST /v2/orders/o-10/cancel); the version 1
// client sees o-10 in the states it knows. Release 1 is then retired, and
// o-11, placed with version 1, is served by release 2 alone. Without the
// System, the services run release 2 already.
func (sc *Scenario) versions(ctx context.Context, client *Client, rep *Report) error {
	tr := sc.Env.Trace
	v2 := client.V2()
	upgrade := sc.System != nil && sc.System.Running(LegacyOrderService) && !sc.System.Running(OrderService)
	tr.Printf("scenario", "phase 3: version 2 of the orders API beside version 1")
	if upgrade {
		if err := sc.System.Restart(ctx, OrderService); err != nil {
			return err
		}
		tr.Printf("scenario", "release 2 of the order service runs beside release 1: /v1 goes to either, /v2 only to release 2, as their registrations say")
	}
	o9 := CreateOrderRequest{ID: "o-9", ConsumerID: "c-ada", RestaurantID: "r-ajanta", Items: []LineItem{{"samosa", 2}}}
	o10 := CreateOrderRequest{ID: "o-10", ConsumerID: "c-ada", RestaurantID: "r-bella", Items: []LineItem{{"pizza", 1}}}
	rep.Expected[o9.ID], rep.Expected[o10.ID] = Approved, Cancelled
	err := errors.Join(
		placeAll(ctx, createV1(client), []CreateOrderRequest{o9}),
		placeAll(ctx, createV2(v2), []CreateOrderRequest{o10}))
	if err != nil {
		return err
	}
	if err := awaitAll(ctx, client, []CreateOrderRequest{o9}); err != nil {
		return err
	}
	ctx60, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	o, err := v2.AwaitFinal(ctx60, o10.ID)
	if err != nil {
		return err
	}
	tr.Printf("scenario", "a v1 client placed o-9, a v2 client o-10; o-10 is %s, cancellable %v", o.State, o.Cancellable)
	if o, err = v2.Cancel(ctx, o10.ID); err != nil {
		return err
	}
	if o, err = v2.AwaitFinal(ctx60, o10.ID); err != nil {
		return err
	}
	old, err := client.Order(ctx, o10.ID)
	if err != nil {
		return err
	}
	if old.State != Rejected || old.Reason != reasonCancelled {
		return fmt.Errorf("GET /v1/orders/o-10 = %s (%s), want %s (%s)", old.State, old.Reason, Rejected, reasonCancelled)
	}
	tr.Printf("scenario", "o-10 is %s for the v2 client, %s (%s) for the v1 client, which knows no %s", o.State, old.State, old.Reason, Cancelled)
	if upgrade {
		if err := sc.System.StopService(ctx, LegacyOrderService); err != nil {
			return err
		}
		tr.Printf("scenario", "release 1 retired: release 2 serves /v1 alone, and nothing sends NotifyConsumer any more (its handler can go)")
	}
	o11 := CreateOrderRequest{ID: "o-11", ConsumerID: "c-ada", RestaurantID: "r-ajanta", Items: []LineItem{{"curry", 1}}}
	rep.Expected[o11.ID] = Approved
	if err := placeAll(ctx, createV1(client), []CreateOrderRequest{o11}); err != nil {
		return err
	}
	return awaitAll(ctx, client, []CreateOrderRequest{o11})
}

// client returns the scenario's client of the order service.
func (sc *Scenario) client() (*Client, error) {
	var opts []ClientOption
	if sc.Env.TracerProvider != nil {
		opts = append(opts, WithClientTracing(sc.Env.TracerProvider(ScenarioClient)))
	}
	if sc.OrderURL != "" {
		return NewClientURL(sc.OrderURL, opts...)
	}
	return NewClient(sc.Env.Registry, opts...)
}

// createV1 and createV2 place an order with version 1 or 2 of the API.
func createV1(c *Client) func(ctx context.Context, r CreateOrderRequest) error {
	return func(ctx context.Context, r CreateOrderRequest) error { _, err := c.CreateOrder(ctx, r); return err }
}

func createV2(c *ClientV2) func(ctx context.Context, r CreateOrderRequest) error {
	return func(ctx context.Context, r CreateOrderRequest) error { _, err := c.CreateOrder(ctx, r); return err }
}

// placeAll places the orders at once with create.
func placeAll(ctx context.Context, create func(ctx context.Context, r CreateOrderRequest) error, reqs []CreateOrderRequest) error {
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			// A POST is idempotent by order id: retry while the order
			// service is unreachable.
			for {
				err := create(ctx, r)
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
	if tr := newTracing(env, ScenarioClient); tr != nil {
		b = tr.Broker(b) // the request's trace holds every fleet's answer
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
