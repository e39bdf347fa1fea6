package fooddelivery

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/commands"
)

// The delivery service runs three courier fleets. Each is a subscriber of
// its own on the publish-subscribe channel courier-quotes, so every fleet
// answers every RequestQuote: the requester publishes once and gathers the
// asynchronous responses until it has them all or its deadline passes.

// fleet prices a delivery.
type fleet struct {
	name          string
	base, perKM   int // cents
	etaMin, minKM int
	delay         time.Duration // how long the fleet takes to answer
}

var fleets = []fleet{
	{name: "bikes", base: 200, perKM: 150, etaMin: 25, delay: 5 * time.Millisecond},
	{name: "scooters", base: 300, perKM: 90, etaMin: 15, delay: 15 * time.Millisecond},
	{name: "vans", base: 900, perKM: 40, etaMin: 35, delay: 30 * time.Millisecond},
}

func startDelivery(ctx context.Context, env *Env) (*node, error) {
	n, err := startNode(ctx, env, DeliveryService)
	if err != nil {
		return nil, err
	}
	var fleet0 handlers
	for i, f := range fleets {
		h := newFleetHandlers(n, f)
		if i == 0 {
			fleet0 = h
		}
		sub, err := n.b.Subscribe(ctx, "courier-fleet-"+f.name, []string{CourierQuotes}, h.cmds, broker.WithLogger(env.Logger))
		if err != nil {
			n.kill()
			return nil, fmt.Errorf("%s: fleet %s: %w", n.name, f.name, err)
		}
		n.mu.Lock()
		n.subs = append(n.subs, sub)
		n.mu.Unlock()
	}
	if _, err := n.serveAPI(ctx, http.NewServeMux(), deliveryAPI(fleet0)); err != nil {
		n.kill()
		return nil, err
	}
	return n, nil
}

// newFleetHandlers returns the dispatcher of fleet f, which replies
// directly through the broker; n is nil to describe it. Every fleet
// handles the same commands.
func newFleetHandlers(n *node, f fleet) handlers {
	d := commands.NewDispatcher(nil)
	if n != nil {
		d = commands.NewDispatcher(n.b, commands.WithLogger(n.env.Logger))
	}
	commands.Handle(d, func(ctx context.Context, c commands.Command[RequestQuote]) (commands.Reply, error) {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return commands.Reply{}, commands.Retryable(ctx.Err())
		}
		q := Quote{Fleet: f.name, Price: f.base + f.perKM*c.Payload.DistanceKM, ETA: f.etaMin + 2*c.Payload.DistanceKM}
		n.trace.Printf(n.name, "fleet %-8s quotes %s for %s (%d min)", f.name, cents(q.Price), c.Payload.OrderID, q.ETA)
		return commands.Success(q), nil
	})
	return handlers{cmds: d}
}

// QuoteDelivery publishes one quote request and gathers the fleets'
// answers for up to wait, then returns them cheapest first.
func QuoteDelivery(ctx context.Context, caller *commands.Caller, orderID string, distanceKM int, wait time.Duration) ([]Quote, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	replies, err := caller.Gather(ctx, CourierQuotes, RequestQuote{OrderID: orderID, DistanceKM: distanceKM}, len(fleets),
		commands.WithPartitionKey(orderID))
	if err != nil {
		return nil, fmt.Errorf("quotes for %s: %w", orderID, err)
	}
	quotes := make([]Quote, 0, len(replies))
	for _, r := range replies {
		q, err := commands.DecodeReply[Quote](r)
		if err != nil {
			return nil, fmt.Errorf("quotes for %s: %w", orderID, err)
		}
		quotes = append(quotes, q)
	}
	sort.Slice(quotes, func(i, j int) bool { return quotes[i].Price < quotes[j].Price })
	return quotes, nil
}
