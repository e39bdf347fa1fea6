package fooddelivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/message"
)

// The kitchen service owns tickets. It keeps a replica of the restaurants'
// menus, built from the restaurant service's events, so that it validates
// and prices tickets without calling the restaurant service (data
// replication instead of a synchronous call). Its command channel is
// sharded by order id and served by two competing instances: the commands
// of one order are handled one at a time, in order.

var kitchenSchema = []string{
	`CREATE TABLE IF NOT EXISTS fd_restaurant_replica (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, menu TEXT NOT NULL, revision INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS fd_tickets (order_id VARCHAR(64) NOT NULL PRIMARY KEY, restaurant_id VARCHAR(64) NOT NULL, total INTEGER NOT NULL, state VARCHAR(32) NOT NULL)`,
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
	evs := events.NewDispatcher(events.WithDispatcherLogger(env.Logger))
	events.On(evs, RestaurantAggregate, func(ctx context.Context, e events.Event[RestaurantCreated]) error {
		return replicate(ctx, n, e.AggregateID, e.Payload.Name, e.Payload.Menu, "RestaurantCreated")
	})
	events.On(evs, RestaurantAggregate, func(ctx context.Context, e events.Event[MenuRevised]) error {
		return replicate(ctx, n, e.AggregateID, "", e.Payload.Menu, "MenuRevised")
	})

	cmds := commands.NewDispatcher(outboxProducer{n}, commands.WithLogger(env.Logger))
	commands.Handle(cmds, func(ctx context.Context, c commands.Command[CreateTicket]) (commands.Reply, error) {
		return createTicket(ctx, n, c.Payload)
	})
	commands.Handle(cmds, func(ctx context.Context, c commands.Command[ApproveTicket]) (commands.Reply, error) {
		return moveTicket(ctx, n, c.Payload.OrderID, TicketAwaitingAcceptance, TicketApproved{TicketID: "t-" + c.Payload.OrderID})
	})
	commands.Handle(cmds, func(ctx context.Context, c commands.Command[CancelTicket]) (commands.Reply, error) {
		return moveTicket(ctx, n, c.Payload.OrderID, TicketStateCancelled, TicketCancelled{TicketID: "t-" + c.Payload.OrderID})
	})

	// One subscription per instance, on both channels: events go to the
	// event dispatcher, commands to the command dispatcher.
	route := broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		if m.Header(message.HeaderEventType) != "" {
			return evs.HandleMessage(ctx, m)
		}
		return cmds.HandleMessage(ctx, m)
	})
	for range kitchenInstances {
		if err := n.subscribe(ctx, KitchenService, []string{KitchenCommands, RestaurantAggregate}, route); err != nil {
			n.kill()
			return nil, err
		}
	}
	return n, nil
}

// replicate upserts the kitchen's copy of a restaurant.
func replicate(ctx context.Context, n *node, id, name string, menu []MenuItem, what string) error {
	tx, err := txFrom(ctx)
	if err != nil {
		return err
	}
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

func createTicket(ctx context.Context, n *node, c CreateTicket) (commands.Reply, error) {
	tx, err := txFrom(ctx)
	if err != nil {
		return commands.Reply{}, err
	}
	var total int
	err = tx.QueryRowContext(ctx, n.d.Rebind("SELECT total FROM fd_tickets WHERE order_id = ?"), c.OrderID).Scan(&total)
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
		return commands.Reply{}, err
	}
	total, missing := price(menu, c.Items)
	if missing != "" {
		n.trace.Printf(n.name, "CreateTicket %s → TicketRefused (%s not on the menu)", c.OrderID, missing)
		return commands.Failure(TicketRefused{Reason: missing + " is not on the menu"}), nil
	}
	if _, err := tx.ExecContext(ctx, n.d.Rebind("INSERT INTO fd_tickets (order_id, restaurant_id, total, state) VALUES (?, ?, ?, ?)"),
		c.OrderID, c.RestaurantID, total, TicketCreatePending); err != nil {
		return commands.Reply{}, commands.Retryable(err)
	}
	n.trace.Printf(n.name, "CreateTicket %s → TicketCreated t-%s (%s, priced from replica)", c.OrderID, c.OrderID, cents(total))
	return commands.Success(TicketCreated{TicketID: "t-" + c.OrderID, Total: total}), nil
}

func moveTicket(ctx context.Context, n *node, orderID, state string, reply any) (commands.Reply, error) {
	tx, err := txFrom(ctx)
	if err != nil {
		return commands.Reply{}, err
	}
	if _, err := tx.ExecContext(ctx, n.d.Rebind("UPDATE fd_tickets SET state = ? WHERE order_id = ?"), state, orderID); err != nil {
		return commands.Reply{}, commands.Retryable(err)
	}
	n.trace.Printf(n.name, "ticket t-%s → %s", orderID, state)
	return commands.Success(reply), nil
}

// price totals items at menu's prices; missing names an item not on it.
func price(menu []MenuItem, items []LineItem) (total int, missing string) {
	prices := map[string]int{}
	for _, m := range menu {
		prices[m.ID] = m.Price
	}
	for _, it := range items {
		p, ok := prices[it.MenuItem]
		if !ok {
			return 0, it.MenuItem
		}
		total += p * it.Quantity
	}
	return total, ""
}
