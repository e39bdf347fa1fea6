package fooddelivery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/events"
)

// The notification service tells consumers about their orders. It handles
// NotifyConsumer, a one-way notification (a command that takes no reply),
// in both its versions: version 1 carries the text, version 2
// (NotifyConsumer.v2, which the order service's release 2 sends) the state
// and the reason, from which it writes the same text. Once no sender of
// version 1 is left, its handler goes, in a release of its own that breaks
// version 1's senders (a new major version of its AsyncAPI document). It
// keeps a history of every order from the Order events, checking that the
// events of each order arrive in order (their Seq numbers follow each
// other) on the sharded channel.

var notificationSchema = []string{
	`CREATE TABLE IF NOT EXISTS fd_notifications (order_id VARCHAR(64) NOT NULL, state VARCHAR(32) NOT NULL, consumer_id VARCHAR(64) NOT NULL, text VARCHAR(255) NOT NULL, PRIMARY KEY (order_id, state))`,
	`CREATE TABLE IF NOT EXISTS fd_order_history (order_id VARCHAR(64) NOT NULL PRIMARY KEY, last_seq INTEGER NOT NULL, state VARCHAR(32) NOT NULL, events INTEGER NOT NULL, out_of_order INTEGER NOT NULL)`,
}

func startNotification(ctx context.Context, env *Env, notify func(NotifyConsumer)) (*node, error) {
	n, err := startNode(ctx, env, NotificationService, notificationSchema...)
	if err != nil {
		return nil, err
	}
	h := newNotificationHandlers(n, notify)
	if err := n.subscribe(ctx, NotificationService, []string{NotificationCommands, OrderAggregate}, eventsAndCommands(h.events, h.cmds)); err != nil {
		n.kill()
		return nil, err
	}
	if _, err := n.serveAPI(ctx, http.NewServeMux(), notificationAPI(h)); err != nil {
		n.kill()
		return nil, err
	}
	return n, nil
}

// newNotificationHandlers registers the notification service's handlers,
// which call notify for each notification; n is nil to describe them.
func newNotificationHandlers(n *node, notify func(NotifyConsumer)) handlers {
	cmds := n.commandDispatcher()
	commands.Handle(cmds, func(ctx context.Context, c commands.Command[NotifyConsumer]) (commands.Reply, error) {
		return notifyOnce(ctx, n, c.Tx, c.Type, c.Payload, notify)
	})
	commands.Handle(cmds, func(ctx context.Context, c commands.Command[NotifyConsumerV2]) (commands.Reply, error) {
		p := c.Payload
		text := notificationText(p.OrderID, p.State, p.Reason)
		return notifyOnce(ctx, n, c.Tx, c.Type, NotifyConsumer{ConsumerID: p.ConsumerID, OrderID: p.OrderID, State: p.State, Text: text}, notify)
	})
	evs := n.eventDispatcher()
	events.On(evs, OrderAggregate, func(ctx context.Context, e events.Event[OrderCreated]) error {
		return recordHistory(ctx, n, e.Tx, e.AggregateID, e.Payload.Seq, ApprovalPending)
	})
	events.On(evs, OrderAggregate, func(ctx context.Context, e events.Event[OrderApproved]) error {
		return recordHistory(ctx, n, e.Tx, e.AggregateID, e.Payload.Seq, Approved)
	})
	events.On(evs, OrderAggregate, func(ctx context.Context, e events.Event[OrderRejected]) error {
		return recordHistory(ctx, n, e.Tx, e.AggregateID, e.Payload.Seq, Rejected)
	})
	events.On(evs, OrderAggregate, func(ctx context.Context, e events.Event[OrderCancelled]) error {
		return recordHistory(ctx, n, e.Tx, e.AggregateID, e.Payload.Seq, Cancelled)
	})
	return handlers{events: evs, cmds: cmds}
}

// notifyOnce records notification p, which came as a command of
// commandType, in tx, the command's inbox transaction, and tells notify.
// Its reply is ignored: a notification has no reply channel.
func notifyOnce(ctx context.Context, n *node, tx *sql.Tx, commandType string, p NotifyConsumer, notify func(NotifyConsumer)) (commands.Reply, error) {
	if _, err := tx.ExecContext(ctx, n.d.InsertIgnore("fd_notifications", "order_id", "state", "consumer_id", "text"),
		p.OrderID, p.State, p.ConsumerID, p.Text); err != nil {
		return commands.Reply{}, commands.Retryable(err)
	}
	n.trace.Printf(n.name, "%s %s → %s: %q (one-way, no reply)", strings.TrimPrefix(commandType, "fooddelivery."), p.OrderID, p.ConsumerID, p.Text)
	if notify != nil {
		notify(p)
	}
	return commands.Success(nil), nil
}

// recordHistory applies one order event to the history in tx, the event's
// inbox transaction, counting events whose Seq does not follow the last
// one seen.
func recordHistory(ctx context.Context, n *node, tx *sql.Tx, orderID string, seq int, state string) error {
	last := 0
	err := tx.QueryRowContext(ctx, n.d.Rebind("SELECT last_seq FROM fd_order_history WHERE order_id = ?"), orderID).Scan(&last)
	switch {
	case err == nil:
		bad := 0
		if seq != last+1 {
			bad = 1
			n.trace.Printf(n.name, "OUT OF ORDER: %s event %d after %d", orderID, seq, last)
		}
		_, err = tx.ExecContext(ctx, n.d.Rebind("UPDATE fd_order_history SET last_seq = ?, state = ?, events = events + 1, out_of_order = out_of_order + ? WHERE order_id = ?"),
			seq, state, bad, orderID)
	case errors.Is(err, sql.ErrNoRows):
		bad := 0
		if seq != 1 {
			bad = 1
			n.trace.Printf(n.name, "OUT OF ORDER: %s starts with event %d", orderID, seq)
		}
		_, err = tx.ExecContext(ctx, n.d.Rebind("INSERT INTO fd_order_history (order_id, last_seq, state, events, out_of_order) VALUES (?, ?, ?, 1, ?)"),
			orderID, seq, state, bad)
	}
	if err != nil {
		return fmt.Errorf("history of %s: %w", orderID, err)
	}
	return nil
}
