package fooddelivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/message"
)

// The order service owns orders. POST /v1/orders answers at once with an
// order in APPROVAL_PENDING ("respond first, finish later") and starts a
// saga that it orchestrates through commands and asynchronous replies:
//
//	VerifyConsumer → consumer   CreateTicket → kitchen   AuthorizeCard → accounting
//	ApproveTicket → kitchen (or CancelTicket when the card is declined)
//
// Every state change, the events it publishes and the next command are
// written in one transaction through the outbox; every reply is handled
// once through the inbox. The client polls GET /v1/orders/{id} or is told by
// the notification service. Pricing calls the restaurant service over
// gRPC and the name of the consumer comes from the consumer service over
// REST, both found through the registry, each with a fallback.
//
// The order is the one record of what the consumer was quoted: its priced
// lines and total are set once, when it is created, from the restaurant
// service's menu or, when that call fails, from the last menu the order
// service saw (which may be older than the restaurant's current one).
// Every later step carries those values — CreateTicket the lines and the
// total, AuthorizeCard the total — instead of letting a service price the
// order again from a price list of its own, and the saga checks that the
// kitchen's ticket recorded the order's total.

var orderSchema = []string{
	`CREATE TABLE IF NOT EXISTS fd_orders (id VARCHAR(64) NOT NULL PRIMARY KEY, consumer_id VARCHAR(64) NOT NULL, consumer_name VARCHAR(255) NOT NULL,
	restaurant_id VARCHAR(64) NOT NULL, items TEXT NOT NULL, total INTEGER NOT NULL, state VARCHAR(32) NOT NULL, step VARCHAR(32) NOT NULL,
	reason VARCHAR(255) NOT NULL, seq INTEGER NOT NULL, priced_by VARCHAR(64) NOT NULL)`,
}

// Saga steps: which reply the order waits for.
const (
	stepVerifyConsumer = "VERIFY_CONSUMER"
	stepCreateTicket   = "CREATE_TICKET"
	stepAuthorizeCard  = "AUTHORIZE_CARD"
	stepApproveTicket  = "APPROVE_TICKET"
	stepCancelTicket   = "CANCEL_TICKET"
	stepDone           = "DONE"
	// A cancellation (release 2): the ticket, then the card.
	stepUndoTicket  = "UNDO_TICKET"
	stepReverseCard = "REVERSE_CARD"
)

// Releases of the order service. Release 2 adds version 2 of the orders
// API (cancellation, the states CANCEL_PENDING and CANCELLED) and sends
// NotifyConsumer.v2 instead of NotifyConsumer; it serves version 1 as
// release 1 does, and both run side by side, on one database, while
// clients move over (see scenario.go).
const (
	release1 = 1
	release2 = 2
)

// orderService is the order service's state besides its node.
type orderService struct {
	n         *node
	release   int
	consumers ConsumerDirectory
	menus     MenuSource
}

// startOrder starts an instance of a release of the order service.
func startOrder(ctx context.Context, env *Env, release int) (*node, error) {
	n, err := startNode(ctx, env, OrderService, orderSchema...)
	if err != nil {
		return nil, err
	}
	if release != release1 {
		n.label = fmt.Sprintf("%s@%d", OrderService, release)
	}
	fail := func(err error) (*node, error) { n.kill(); return nil, err }
	resolver, err := discovery.NewResolver(env.Registry, discovery.WithLogger(env.Logger))
	if err != nil {
		return fail(err)
	}
	n.onStop(func(context.Context) error { return resolver.Close() })
	rest, err := newRESTConsumers(resolver, env.Logger, n.breakers, n.tr)
	if err != nil {
		return fail(err)
	}
	menus, err := newGRPCMenus(resolver, env.Logger, n.breakers, n.tr)
	if err != nil {
		return fail(err)
	}
	n.onStop(func(context.Context) error { return menus.Close() })
	s := &orderService{n: n, release: release,
		consumers: consumerFallback{next: rest, trace: n.trace, label: n.label},
		menus:     &menuFallback{next: menus, trace: n.trace, label: n.label, cache: map[string]MenuResponse{}}}

	h := s.handlers()
	// Release 2 reads release 1's reply channel too: it takes over the
	// sagas release 1 started.
	channels := []string{OrderReplies}
	if release != release1 {
		channels = append(channels, OrderRepliesV2)
	}
	if err := n.subscribe(ctx, OrderService, channels, h.replies.HandleTx); err != nil {
		return fail(err)
	}

	mux := http.NewServeMux()
	s.routesV1(mux)
	if release != release1 {
		s.routesV2(mux)
	}
	if n.api, err = n.serveAPI(ctx, mux, orderAPI(release, h)); err != nil {
		return fail(err)
	}
	return n, nil
}

// newOrderHandlers registers the handlers of the saga's replies of a
// release, to describe them (describe).
func newOrderHandlers(release int) handlers {
	return (&orderService{release: release}).handlers()
}

// handlers registers the handlers of the saga's replies.
func (s *orderService) handlers() handlers {
	rd := commands.NewReplyDispatcher()
	commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v ConsumerVerified) error {
		return s.advance(ctx, r, stepVerifyConsumer, func(o *orderRow) (any, error) {
			if o.ConsumerName == "" {
				o.ConsumerName = v.Name // the REST call's fallback left it empty
			}
			o.Step = stepCreateTicket
			return CreateTicket{OrderID: o.ID, RestaurantID: o.RestaurantID, Items: o.Items, Total: o.Total}, nil
		})
	})
	commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v ConsumerNotValid) error {
		return s.advance(ctx, r, stepVerifyConsumer, func(o *orderRow) (any, error) { return nil, o.reject(v.Reason) })
	})
	commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v TicketCreated) error {
		return s.advance(ctx, r, stepCreateTicket, func(o *orderRow) (any, error) { return o.ticketCreated(v), nil })
	})
	commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v TicketRefused) error {
		return s.advance(ctx, r, stepCreateTicket, func(o *orderRow) (any, error) { return nil, o.reject(v.Reason) })
	})
	commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v CardAuthorized) error {
		return s.advance(ctx, r, stepAuthorizeCard, func(o *orderRow) (any, error) {
			o.Step = stepApproveTicket
			return ApproveTicket{OrderID: o.ID}, nil
		})
	})
	commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v CardDeclined) error {
		return s.advance(ctx, r, stepAuthorizeCard, func(o *orderRow) (any, error) {
			o.Step, o.Reason = stepCancelTicket, reasonCardDeclined+v.Reason
			return CancelTicket{OrderID: o.ID}, nil // compensation
		})
	})
	commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v TicketApproved) error {
		return s.advance(ctx, r, stepApproveTicket, func(o *orderRow) (any, error) { return nil, o.approve() })
	})
	commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v TicketCancelled) error {
		return s.advance(ctx, r, "", func(o *orderRow) (any, error) {
			switch o.Step {
			case stepCancelTicket: // the compensation of a rejected order
				return nil, o.reject(o.Reason)
			case stepUndoTicket: // a cancellation (release 2)
				o.Step = stepReverseCard
				return ReverseAuthorization{OrderID: o.ID}, nil
			}
			return nil, nil // a late reply
		})
	})
	if s.release != release1 {
		commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v AuthorizationReversed) error {
			return s.advance(ctx, r, stepReverseCard, func(o *orderRow) (any, error) { return nil, o.cancel() })
		})
	}
	commands.OnReply(rd, func(ctx context.Context, r commands.ReplyMessage, v commands.HandlerFailure) error {
		return s.advance(ctx, r, "", func(o *orderRow) (any, error) { return nil, o.reject("step failed: " + v.Error) })
	})
	return handlers{replies: rd}
}

// place handles a request to place an order: it prices the order, stores
// it as pending with its OrderCreated event and the saga's first command,
// and returns it without waiting for the saga. An order placed before
// under the same id is returned as it is now (a retried POST). Errors are
// *apiError for what the client should know.
func (s *orderService) place(ctx context.Context, route string, req CreateOrderRequest) (*orderRow, error) {
	if req.ConsumerID == "" || req.RestaurantID == "" || !validItems(req.Items) {
		return nil, &apiError{http.StatusBadRequest, "want consumerId, restaurantId and items, each with a quantity of at least 1"}
	}
	if req.ID == "" {
		req.ID = message.NewID()
	}
	if o, err := loadOrder(ctx, s.n.db, s.n.d, req.ID); err == nil {
		return o, nil // a retried POST: the same order
	}
	consumer := s.consumers.Consumer(ctx, req.ConsumerID)
	menu, pricedBy, err := s.menus.Menu(ctx, req.RestaurantID)
	if err != nil {
		return nil, &apiError{http.StatusServiceUnavailable, err.Error()}
	}
	lines, missing := priceItems(menu.Menu, req.Items)
	if missing != "" {
		return nil, &apiError{http.StatusUnprocessableEntity, missing + " is not on the menu"}
	}
	o := &orderRow{ID: req.ID, ConsumerID: req.ConsumerID, ConsumerName: consumer.Name, RestaurantID: req.RestaurantID,
		Items: lines, Total: LinesTotal(lines), State: ApprovalPending, Step: stepVerifyConsumer, Seq: 1, PricedBy: pricedBy}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := o.insert(ctx, tx, s.n.d); err != nil {
			return err
		}
		if err := events.NewPublisher(s.n.outbox(tx)).Publish(ctx, OrderAggregate, o.ID, OrderCreated{Seq: 1,
			ConsumerID: o.ConsumerID, RestaurantID: o.RestaurantID, Items: o.Items, Total: o.Total}); err != nil {
			return err
		}
		return s.send(ctx, tx, o, VerifyConsumer{ConsumerID: o.ConsumerID, OrderID: o.ID})
	})
	if err != nil {
		return nil, fmt.Errorf("order %s: %w", o.ID, err)
	}
	s.n.trace.Printf(s.n.label, "%s %s → 202 %s %s; outbox: OrderCreated, VerifyConsumer", route, o.ID, o.State, cents(o.Total))
	return o, nil
}

func (s *orderService) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.n.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// orderSends are the commands each release of the order service sends.
var orderSends = map[int][]commandContract{
	release1: {verifyConsumerCmd, createTicketCmd, approveTicketCmd, cancelTicketCmd, authorizeCardCmd, notifyConsumerCmd},
	release2: {verifyConsumerCmd, createTicketCmd, approveTicketCmd, cancelTicketCmd, authorizeCardCmd, reverseAuthorizationCmd, notifyConsumerV2Cmd},
}

// replyChannel is where the release's commands are answered.
func (s *orderService) replyChannel() string {
	if s.release == release1 {
		return OrderReplies
	}
	return OrderRepliesV2
}

// send writes a saga command into the outbox through tx. Commands of one
// order share its partition key: they are handled in order.
func (s *orderService) send(ctx context.Context, tx *sql.Tx, o *orderRow, cmd any) error {
	m, err := commands.NewProducer(nil).Message(cmd, commands.WithHeader("order_id", o.ID), commands.WithPartitionKey(o.ID))
	if err != nil {
		return err
	}
	c, ok := commandContracts[m.Header(message.HeaderCommandType)]
	if !ok {
		return fmt.Errorf("order: no channel for %T", cmd)
	}
	if len(c.replies) > 0 { // a notification is one-way
		m.Headers[message.HeaderCommandReplyTo] = s.replyChannel()
	}
	return s.n.outbox(tx).Send(ctx, c.channel, m)
}

// advance applies one saga reply: in the reply's inbox transaction it
// loads the order, checks it waits for this step (want; "" for any), lets
// step change it and choose the next command, and stores it all.
func (s *orderService) advance(ctx context.Context, r commands.ReplyMessage, want string, step func(o *orderRow) (any, error)) error {
	tx := r.Tx
	id := r.Header("commandreply_order_id")
	o, err := loadOrder(ctx, tx, s.n.d, id)
	if err != nil {
		return fmt.Errorf("order %s: %w", id, err)
	}
	if o.Step == stepDone || (want != "" && o.Step != want) {
		return nil // a late reply for a step the order has left
	}
	before := o.State
	next, err := step(o)
	if err != nil {
		return err
	}
	if next != nil {
		if err := s.send(ctx, tx, o, next); err != nil {
			return err
		}
	}
	for _, e := range o.pending {
		if err := events.NewPublisher(s.n.outbox(tx)).Publish(ctx, OrderAggregate, o.ID, e); err != nil {
			return err
		}
	}
	notification := s.notification(o)
	if o.State != before {
		if err := s.send(ctx, tx, o, notification); err != nil {
			return err
		}
	}
	if err := o.update(ctx, tx, s.n.d); err != nil {
		return err
	}
	what := fmt.Sprintf("%s %s", shortType(r.Message), id)
	switch {
	case o.State != before:
		s.n.trace.Printf(s.n.label, "%s → order %s; outbox: %s, %s", what, o.State, eventNames(o.pending), typeName(notification))
	case next != nil:
		s.n.trace.Printf(s.n.label, "%s → outbox: %s", what, typeName(next))
	}
	return nil
}

// notification is the one-way command that tells the consumer the order's
// state: NotifyConsumer with its text from release 1, NotifyConsumerV2
// from release 2, whose text the notification service writes.
func (s *orderService) notification(o *orderRow) any {
	if s.release == release1 {
		return NotifyConsumer{ConsumerID: o.ConsumerID, OrderID: o.ID, State: o.State, Text: notificationText(o.ID, o.State, o.Reason)}
	}
	return NotifyConsumerV2{ConsumerID: o.ConsumerID, OrderID: o.ID, State: o.State, Reason: o.Reason}
}

// orderRow is an order as stored.
type orderRow struct {
	ID, ConsumerID, ConsumerName, RestaurantID string
	Items                                      []OrderLine // priced when the order was created
	Total                                      int
	State, Step, Reason, PricedBy              string
	Seq                                        int
	pending                                    []any // events to publish
}

// Reasons of the rejections that cancel the order's ticket (compensation)
// start with these.
const (
	reasonCardDeclined = "card declined: "
	reasonTicketTotal  = "ticket total differs: "
)

// reasonCancelled is the reason of a cancelled order.
const reasonCancelled = "cancelled by the consumer"

// ticketCancelled reports whether an order rejected for reason had a
// ticket, which the saga cancelled.
func ticketCancelled(reason string) bool {
	return strings.HasPrefix(reason, reasonCardDeclined) || strings.HasPrefix(reason, reasonTicketTotal)
}

// ticketCreated takes the kitchen's TicketCreated and returns the next
// command: the card's authorization for the order's total when the ticket
// recorded that total, or else the ticket's cancellation, since the
// kitchen and the order would disagree on what the consumer pays.
func (o *orderRow) ticketCreated(v TicketCreated) any {
	if v.Total != o.Total {
		o.Step, o.Reason = stepCancelTicket, fmt.Sprintf("%sthe kitchen recorded %s, the order says %s", reasonTicketTotal, cents(v.Total), cents(o.Total))
		return CancelTicket{OrderID: o.ID}
	}
	o.Step = stepAuthorizeCard
	return AuthorizeCard{OrderID: o.ID, ConsumerID: o.ConsumerID, Amount: o.Total}
}

// notificationText is what the consumer is told when an order reaches
// state.
func notificationText(orderID, state, reason string) string {
	text := fmt.Sprintf("order %s is %s", orderID, state)
	if reason != "" {
		text += ": " + reason
	}
	return text
}

// validItems reports whether items is a non-empty list of positive
// quantities.
func validItems(items []LineItem) bool {
	for _, it := range items {
		if it.MenuItem == "" || it.Quantity < 1 {
			return false
		}
	}
	return len(items) > 0
}

// priceItems prices items at menu's prices; missing names an item not on
// it.
func priceItems(menu []MenuItem, items []LineItem) (lines []OrderLine, missing string) {
	prices := menuPrices(menu)
	lines = make([]OrderLine, 0, len(items))
	for _, it := range items {
		p, ok := prices[it.MenuItem]
		if !ok {
			return nil, it.MenuItem
		}
		lines = append(lines, OrderLine{MenuItem: it.MenuItem, Quantity: it.Quantity, Price: p})
	}
	return lines, ""
}

// menuPrices maps the menu's item ids to their prices.
func menuPrices(menu []MenuItem) map[string]int {
	prices := make(map[string]int, len(menu))
	for _, m := range menu {
		prices[m.ID] = m.Price
	}
	return prices
}

func (o *orderRow) approve() error {
	o.State, o.Step, o.Seq = Approved, stepDone, o.Seq+1
	o.pending = append(o.pending, OrderApproved{Seq: o.Seq})
	return nil
}

func (o *orderRow) reject(reason string) error {
	o.State, o.Step, o.Reason, o.Seq = Rejected, stepDone, reason, o.Seq+1
	o.pending = append(o.pending, OrderRejected{Seq: o.Seq, Reason: reason})
	return nil
}

func (o *orderRow) cancel() error {
	o.State, o.Step, o.Reason, o.Seq = Cancelled, stepDone, reasonCancelled, o.Seq+1
	o.pending = append(o.pending, OrderCancelled{Seq: o.Seq})
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadOrder(ctx context.Context, q querier, d interface{ Rebind(string) string }, id string) (*orderRow, error) {
	o := &orderRow{ID: id}
	var items string
	err := q.QueryRowContext(ctx, d.Rebind("SELECT consumer_id, consumer_name, restaurant_id, items, total, state, step, reason, seq, priced_by FROM fd_orders WHERE id = ?"), id).
		Scan(&o.ConsumerID, &o.ConsumerName, &o.RestaurantID, &items, &o.Total, &o.State, &o.Step, &o.Reason, &o.Seq, &o.PricedBy)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return nil, fmt.Errorf("items of order %s: %w", id, err)
	}
	return o, nil
}

func (o *orderRow) insert(ctx context.Context, tx *sql.Tx, d interface{ Rebind(string) string }) error {
	items, err := json.Marshal(o.Items)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, d.Rebind("INSERT INTO fd_orders (id, consumer_id, consumer_name, restaurant_id, items, total, state, step, reason, seq, priced_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		o.ID, o.ConsumerID, o.ConsumerName, o.RestaurantID, string(items), o.Total, o.State, o.Step, o.Reason, o.Seq, o.PricedBy)
	if err != nil {
		return fmt.Errorf("insert order %s: %w", o.ID, err)
	}
	return nil
}

func (o *orderRow) update(ctx context.Context, tx *sql.Tx, d interface{ Rebind(string) string }) error {
	_, err := tx.ExecContext(ctx, d.Rebind("UPDATE fd_orders SET consumer_name = ?, state = ?, step = ?, reason = ?, seq = ? WHERE id = ?"),
		o.ConsumerName, o.State, o.Step, o.Reason, o.Seq, o.ID)
	if err != nil {
		return fmt.Errorf("update order %s: %w", o.ID, err)
	}
	return nil
}

// errChanged means an order changed between reading and updating it.
var errChanged = errors.New("the order changed meanwhile")

// updateFrom stores o's state and step if the stored order is still in
// state and step, or fails with errChanged.
func (o *orderRow) updateFrom(ctx context.Context, tx *sql.Tx, d interface{ Rebind(string) string }, state, step string) error {
	res, err := tx.ExecContext(ctx, d.Rebind("UPDATE fd_orders SET state = ?, step = ? WHERE id = ? AND state = ? AND step = ?"),
		o.State, o.Step, o.ID, state, step)
	if err != nil {
		return fmt.Errorf("update order %s: %w", o.ID, err)
	}
	if k, err := res.RowsAffected(); err != nil || k != 1 {
		return fmt.Errorf("update order %s: %w", o.ID, errors.Join(errChanged, err))
	}
	return nil
}

// typeName names a message for the trace: its type without the package,
// with its version if it has one (NotifyConsumer.v2).
func typeName(v any) string {
	if c, ok := v.(interface{ CommandType() string }); ok {
		return strings.TrimPrefix(c.CommandType(), "fooddelivery.")
	}
	s := fmt.Sprintf("%T", v)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return s[i+1:]
		}
	}
	return s
}

func eventNames(evs []any) string {
	out := ""
	for i, e := range evs {
		if i > 0 {
			out += ", "
		}
		out += typeName(e)
	}
	return out
}
