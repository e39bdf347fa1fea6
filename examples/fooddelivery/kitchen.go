package fooddelivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/events"
)

// The kitchen service owns tickets. It keeps a replica of the restaurants'
// menus, built from the restaurant service's events, so that it checks
// tickets without calling the restaurant service (data replication instead
// of a synchronous call): the restaurant must be known and every item on
// its menu. It does not price an order again: CreateTicket carries the
// order's priced lines and total, the prices the consumer was quoted, and
// the ticket records them. The replica may be ahead of the menu the order
// was priced from (the order service's cached menu, when the restaurant
// service was down) or behind it (a MenuRevised event still on its way);
// either way the order's price stands, and the trace notes the difference.
// Its command channel is sharded by order id and served by two competing
// instances: the commands of one order are handled one at a time, in
// order.

var kitchenSchema = []string{
	`CREATE TABLE IF NOT EXISTS fd_restaurant_replica (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, menu TEXT NOT NULL, revision INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS fd_tickets (order_id VARCHAR(64) NOT NULL PRIMARY KEY, restaurant_id VARCHAR(64) NOT NULL, items TEXT NOT NULL, total INTEGER NOT NULL, state VARCHAR(32) NOT NULL)`,
}

// Ticket states.
const (
	TicketCreatePending      = "CREATE_PENDING"
	TicketAwaitingAcceptance = "AWAITING_ACCEPTANCE"
	TicketStateCancelled     = "CANCELLED"
)

// kitchenInstances is how many competing instances serve the kitchen's
// channels.
const kitchenInstances = 2

func startKitchen(ctx context.Context, env *Env) (*node, error) {
	n, err := startNode(ctx, env, KitchenService, kitchenSchema...)
	if err != nil {
		return nil, err
	}
	h := newKitchenHandlers(n)

	// One subscription per instance, on both channels: events go to the
	// event dispatcher, commands to the command dispatcher.
	route := eventsAndCommands(h.events, h.cmds)
	for range kitchenInstances {
		if err := n.subscribe(ctx, KitchenService, []string{KitchenCommands, RestaurantAggregate}, route); err != nil {
			n.kill()
			return nil, err
		}
	}
	if _, err := n.serveAPI(ctx, http.NewServeMux(), kitchenAPI(h)); err != nil {
		n.kill()
		return nil, err
	}
	return n, nil
}

// newKitchenHandlers registers the kitchen's handlers; n is nil to
// describe them.
func newKitchenHandlers(n *node) handlers {
	evs := n.eventDispatcher()
	events.On(evs, RestaurantAggregate, func(ctx context.Context, e events.Event[RestaurantCreated]) error {
		return replicate(ctx, n, e.Tx, e.AggregateID, e.Payload.Name, e.Payload.Menu, "RestaurantCreated")
	})
	events.On(evs, RestaurantAggregate, func(ctx context.Context, e events.Event[MenuRevised]) error {
		return replicate(ctx, n, e.Tx, e.AggregateID, "", e.Payload.Menu, "MenuRevised")
	})

	cmds := n.commandDispatcher()
	commands.Handle(cmds, func(ctx context.Context, c commands.Command[CreateTicket]) (commands.Reply, error) {
		return createTicket(ctx, n, c.Tx, c.Payload)
	})
	commands.Handle(cmds, func(ctx context.Context, c commands.Command[ApproveTicket]) (commands.Reply, error) {
		return moveTicket(ctx, n, c.Tx, c.Payload.OrderID, TicketAwaitingAcceptance, TicketApproved{TicketID: "t-" + c.Payload.OrderID})
	})
	commands.Handle(cmds, func(ctx context.Context, c commands.Command[CancelTicket]) (commands.Reply, error) {
		return moveTicket(ctx, n, c.Tx, c.Payload.OrderID, TicketStateCancelled, TicketCancelled{TicketID: "t-" + c.Payload.OrderID})
	})
	return handlers{events: evs, cmds: cmds}
}

// replicate upserts the kitchen's copy of a restaurant in tx, the event's
// inbox transaction.
func replicate(ctx context.Context, n *node, tx *sql.Tx, id, name string, menu []MenuItem, what string) error {
	body, err := json.Marshal(menu)
	if err != nil {
		return broker.Permanent(err)
	}
	res, err := tx.ExecContext(ctx, n.d.Rebind("UPDATE fd_restaurant_replica SET menu = ?, revision = revision + 1 WHERE id = ?"), string(body), id)
	if err != nil {
		return fmt.Errorf("replica of %s: %w", id, err)
	}
	if k, err := res.RowsAffected(); err != nil {
		return err
	} else if k == 0 {
		if _, err := tx.ExecContext(ctx, n.d.Rebind("INSERT INTO fd_restaurant_replica (id, name, menu, revision) VALUES (?, ?, ?, 1)"), id, name, string(body)); err != nil {
			return fmt.Errorf("replica of %s: %w", id, err)
		}
	}
	n.trace.Printf(n.name, "%s %s → replica updated (%d menu items)", what, id, len(menu))
	return nil
}

// createTicket records the ticket of an order in tx, the command's inbox
// transaction, unless it did before.
func createTicket(ctx context.Context, n *node, tx *sql.Tx, c CreateTicket) (commands.Reply, error) {
	var total int
	err := tx.QueryRowContext(ctx, n.d.Rebind("SELECT total FROM fd_tickets WHERE order_id = ?"), c.OrderID).Scan(&total)
	if err == nil {
		return commands.Success(TicketCreated{TicketID: "t-" + c.OrderID, Total: total}), nil // created before
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return commands.Reply{}, commands.Retryable(err)
	}
	var body string
	err = tx.QueryRowContext(ctx, n.d.Rebind("SELECT menu FROM fd_restaurant_replica WHERE id = ?"), c.RestaurantID).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		n.trace.Printf(n.name, "CreateTicket %s → TicketRefused (restaurant %s not in replica)", c.OrderID, c.RestaurantID)
		return commands.Failure(TicketRefused{Reason: "unknown restaurant " + c.RestaurantID}), nil
	}
	if err != nil {
		return commands.Reply{}, commands.Retryable(err)
	}
	var menu []MenuItem
	if err := json.Unmarshal([]byte(body), &menu); err != nil {
		return commands.Reply{}, fmt.Errorf("replica of %s: %w", c.RestaurantID, err)
	}
	refusal, differs := checkTicket(menu, c)
	if refusal != "" {
		n.trace.Printf(n.name, "CreateTicket %s → TicketRefused (%s)", c.OrderID, refusal)
		return commands.Failure(TicketRefused{Reason: refusal}), nil
	}
	items, err := json.Marshal(c.Items)
	if err != nil {
		return commands.Reply{}, fmt.Errorf("items of ticket t-%s: %w", c.OrderID, err)
	}
	if _, err := tx.ExecContext(ctx, n.d.Rebind("INSERT INTO fd_tickets (order_id, restaurant_id, items, total, state) VALUES (?, ?, ?, ?, ?)"),
		c.OrderID, c.RestaurantID, string(items), c.Total, TicketCreatePending); err != nil {
		return commands.Reply{}, commands.Retryable(err)
	}
	note := "items on the replica's menu"
	if len(differs) > 0 {
		note = "the replica prices " + strings.Join(differs, ", ")
	}
	n.trace.Printf(n.name, "CreateTicket %s → TicketCreated t-%s (%s as ordered; %s)", c.OrderID, c.OrderID, cents(c.Total), note)
	return commands.Success(TicketCreated{TicketID: "t-" + c.OrderID, Total: c.Total}), nil
}

// checkTicket checks an order's lines against the kitchen's replica of
// the restaurant's menu. refusal says why the kitchen cannot take the
// order: an item not on the menu, or lines that do not add up to the
// order's total. differs lists the items the replica prices otherwise than
// the order ("curry at $13.50"), which do not stop the ticket: the
// order's prices are the ones the consumer was quoted.
func checkTicket(menu []MenuItem, c CreateTicket) (refusal string, differs []string) {
	if len(c.Items) == 0 {
		return "no items", nil
	}
	if sum := LinesTotal(c.Items); sum != c.Total {
		return fmt.Sprintf("the lines add up to %s, not to the total %s", cents(sum), cents(c.Total)), nil
	}
	prices := menuPrices(menu)
	for _, l := range c.Items {
		p, ok := prices[l.MenuItem]
		switch {
		case !ok:
			return l.MenuItem + " is not on the menu", nil
		case l.Quantity < 1:
			return fmt.Sprintf("a quantity of %d %s", l.Quantity, l.MenuItem), nil
		case p != l.Price:
			differs = append(differs, fmt.Sprintf("%s at %s, the order at %s", l.MenuItem, cents(p), cents(l.Price)))
		}
	}
	return "", differs
}

// moveTicket moves an order's ticket to state in tx, the command's inbox
// transaction.
func moveTicket(ctx context.Context, n *node, tx *sql.Tx, orderID, state string, reply any) (commands.Reply, error) {
	if _, err := tx.ExecContext(ctx, n.d.Rebind("UPDATE fd_tickets SET state = ? WHERE order_id = ?"), state, orderID); err != nil {
		return commands.Reply{}, commands.Retryable(err)
	}
	n.trace.Printf(n.name, "ticket t-%s → %s", orderID, state)
	return commands.Success(reply), nil
}
