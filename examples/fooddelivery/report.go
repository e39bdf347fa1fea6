package fooddelivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// ErrDisagreement means that the services' final states do not agree: a
// value one service holds differs from the order service's (or, for the
// kitchen's replica, from the restaurant service's) copy of it.
var ErrDisagreement = errors.New("fooddelivery: services disagree")

// Report is what a scenario run ends with: the final states, read from
// every service's own database. Check compares every value one service
// keeps of another's data with its source.
type Report struct {
	// Orders are the order service's orders, as version 2 of its REST API
	// gives them: the source of every value the other services keep of an
	// order.
	Orders []OrderV2
	// Expected is the final state each order should reach.
	Expected map[string]string
	// Consumers are the consumer service's consumers: id → name.
	Consumers map[string]string
	// Restaurants are the restaurant service's restaurants and Replica
	// the kitchen's copy of them, kept from their events, by id.
	Restaurants, Replica map[string]MenuResponse
	// Tickets are the kitchen's tickets, by order id.
	Tickets map[string]Ticket
	// Authorizations are the accounting service's card authorizations, by
	// order id, and Reserved what each account has reserved, by consumer
	// id.
	Authorizations map[string]Authorization
	Reserved       map[string]int
	// Notifications are what the notification service told consumers, and
	// History its record of each order's events, by order id.
	Notifications map[string][]Notification
	History       map[string]History
	Quotes        []Quote
	Elapsed       time.Duration
}

// Ticket is the kitchen's ticket of an order.
type Ticket struct {
	RestaurantID string
	Items        []OrderLine
	Total        int
	State        string
}

// Authorization is an amount the accounting service reserved on a
// consumer's card for an order.
type Authorization struct {
	ConsumerID string
	Amount     int
}

// Notification is one notification the notification service handled.
type Notification struct {
	ConsumerID, State, Text string
}

// History is the notification service's record of an order's events:
// how many arrived, how many out of order, the last one's sequence number
// and the state it left the order in.
type History struct {
	Events, OutOfOrder, LastSeq int
	State                       string
}

// collect reads the final states from every service's database, waiting
// up to 15 seconds for the services that learn of the outcome
// asynchronously to agree.
func (r *Report) collect(ctx context.Context, env *Env, c *Client) error {
	r.Orders = r.Orders[:0]
	ids := make([]string, 0, len(r.Expected))
	for id := range r.Expected {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if len(ids[i]) != len(ids[j]) {
			return len(ids[i]) < len(ids[j])
		}
		return ids[i] < ids[j]
	})
	for _, id := range ids {
		v, err := c.V2().Order(ctx, id)
		if err != nil {
			return err
		}
		r.Orders = append(r.Orders, v)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		err := r.read(ctx, env)
		if err == nil {
			err = r.Check()
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// query is one SQL query of read and what to do with each row.
type query struct {
	sql string
	row func(rows *sql.Rows) error
}

// readDB runs queries on the service's database.
func readDB(ctx context.Context, env *Env, service string, queries ...query) error {
	return withDB(ctx, env, service, func(db *sql.DB, _ interface{ Rebind(string) string }) error {
		for _, q := range queries {
			if err := readRows(ctx, db, q); err != nil {
				return fmt.Errorf("%s: %w", service, err)
			}
		}
		return nil
	})
}

func readRows(ctx context.Context, db *sql.DB, q query) error {
	rows, err := db.QueryContext(ctx, q.sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := q.row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// restaurantQuery reads restaurants (id, name, menu) into into.
func restaurantQuery(table string, into map[string]MenuResponse) query {
	return query{"SELECT id, name, menu FROM " + table, func(rows *sql.Rows) error {
		var r MenuResponse
		var menu string
		if err := rows.Scan(&r.RestaurantID, &r.Name, &menu); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(menu), &r.Menu); err != nil {
			return fmt.Errorf("menu of %s in %s: %w", r.RestaurantID, table, err)
		}
		into[r.RestaurantID] = r
		return nil
	}}
}

// read reads every service's copy of the orders' data, and of the
// restaurants and consumers they refer to.
func (r *Report) read(ctx context.Context, env *Env) error {
	r.Consumers, r.Restaurants, r.Replica = map[string]string{}, map[string]MenuResponse{}, map[string]MenuResponse{}
	r.Tickets, r.Authorizations, r.Reserved = map[string]Ticket{}, map[string]Authorization{}, map[string]int{}
	r.Notifications, r.History = map[string][]Notification{}, map[string]History{}
	var id string
	return errors.Join(
		readDB(ctx, env, ConsumerService, query{"SELECT id, name FROM fd_consumers", func(rows *sql.Rows) error {
			var name string
			err := rows.Scan(&id, &name)
			r.Consumers[id] = name
			return err
		}}),
		readDB(ctx, env, RestaurantService, restaurantQuery("fd_restaurants", r.Restaurants)),
		readDB(ctx, env, KitchenService, restaurantQuery("fd_restaurant_replica", r.Replica),
			query{"SELECT order_id, restaurant_id, items, total, state FROM fd_tickets", func(rows *sql.Rows) error {
				var t Ticket
				var items string
				if err := rows.Scan(&id, &t.RestaurantID, &items, &t.Total, &t.State); err != nil {
					return err
				}
				if err := json.Unmarshal([]byte(items), &t.Items); err != nil {
					return fmt.Errorf("items of ticket t-%s: %w", id, err)
				}
				r.Tickets[id] = t
				return nil
			}}),
		readDB(ctx, env, AccountingService,
			query{"SELECT order_id, consumer_id, amount FROM fd_authorizations", func(rows *sql.Rows) error {
				var a Authorization
				err := rows.Scan(&id, &a.ConsumerID, &a.Amount)
				r.Authorizations[id] = a
				return err
			}},
			query{"SELECT consumer_id, reserved FROM fd_accounts", func(rows *sql.Rows) error {
				var reserved int
				err := rows.Scan(&id, &reserved)
				r.Reserved[id] = reserved
				return err
			}}),
		readDB(ctx, env, NotificationService,
			query{"SELECT order_id, consumer_id, state, text FROM fd_notifications ORDER BY order_id, state", func(rows *sql.Rows) error {
				var n Notification
				err := rows.Scan(&id, &n.ConsumerID, &n.State, &n.Text)
				r.Notifications[id] = append(r.Notifications[id], n)
				return err
			}},
			query{"SELECT order_id, events, out_of_order, last_seq, state FROM fd_order_history", func(rows *sql.Rows) error {
				var h History
				err := rows.Scan(&id, &h.Events, &h.OutOfOrder, &h.LastSeq, &h.State)
				r.History[id] = h
				return err
			}}),
	)
}

// disagreements collects what Check finds.
type disagreements []error

// same notes a disagreement when got, a service's value, differs from
// want, its source's.
func (d *disagreements) same(subject, what string, got, want any) {
	if !reflect.DeepEqual(got, want) {
		*d = append(*d, fmt.Errorf("%s: %s is %v, want %v", subject, what, got, want))
	}
}

// Check compares every value a service keeps of another's data with its
// source: for each order, its state with the expected one, its lines with
// its total, and with the order the consumer's name (consumer service),
// the kitchen's ticket (restaurant, lines, total, state), the card
// authorization (consumer, amount; none for a cancelled order), the
// notifications (consumer, state, text, one per final state) and the
// history of its events (two, or three for a cancelled order, in order,
// the final state); besides, the kitchen's replica of each restaurant with the
// restaurant service's, and each account's reserved amount with its
// authorizations. Nothing lost, nothing done twice, nothing priced or
// copied differently. The error wraps ErrDisagreement and lists every
// difference.
func (r *Report) Check() error {
	var d disagreements
	for _, o := range r.Orders {
		r.checkOrder(&d, o)
	}
	d.same("report", "number of orders", len(r.Orders), len(r.Expected))
	for id, rest := range r.Restaurants {
		d.same("restaurant "+id, "kitchen's replica", r.Replica[id], rest)
	}
	for id := range r.Replica {
		if _, ok := r.Restaurants[id]; !ok {
			d = append(d, fmt.Errorf("restaurant %s: in the kitchen's replica, unknown to the restaurant service", id))
		}
	}
	charged := map[string]int{}
	for _, a := range r.Authorizations {
		charged[a.ConsumerID] += a.Amount
	}
	for c, reserved := range r.Reserved {
		d.same("account "+c, "reserved amount", reserved, charged[c])
	}
	for c := range charged {
		if _, ok := r.Reserved[c]; !ok {
			d = append(d, fmt.Errorf("account %s: authorized %d without an account", c, charged[c]))
		}
	}
	if len(d) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n%w", ErrDisagreement, errors.Join(d...))
}

// checkOrder compares each service's copy of o's values with o's.
func (r *Report) checkOrder(d *disagreements, o OrderV2) {
	subject := "order " + o.ID
	d.same(subject, "state", o.State, r.Expected[o.ID])
	d.same(subject, "total of its lines", LinesTotal(o.Items), o.Total)
	d.same(subject, "consumer name", o.ConsumerName, r.Consumers[o.ConsumerID])

	t, ticketed := r.Tickets[o.ID]
	wantTicket := ""
	switch {
	case o.State == Approved:
		wantTicket = TicketAwaitingAcceptance
	case o.State == Cancelled, o.State == Rejected && ticketCancelled(o.Reason):
		wantTicket = TicketStateCancelled
	}
	switch {
	case wantTicket == "" && ticketed:
		*d = append(*d, fmt.Errorf("%s: the kitchen has a %s ticket, want none", subject, t.State))
	case wantTicket != "" && !ticketed:
		*d = append(*d, fmt.Errorf("%s: the kitchen has no ticket, want one %s", subject, wantTicket))
	case ticketed:
		d.same(subject, "kitchen's ticket state", t.State, wantTicket)
		d.same(subject, "kitchen's ticket total", t.Total, o.Total)
		d.same(subject, "kitchen's ticket lines", t.Items, o.Items)
		d.same(subject, "kitchen's ticket restaurant", t.RestaurantID, o.RestaurantID)
	}

	a, authorized := r.Authorizations[o.ID]
	switch {
	case o.State == Approved && !authorized:
		*d = append(*d, fmt.Errorf("%s: no card authorization, want %d", subject, o.Total))
	case o.State != Approved && authorized:
		*d = append(*d, fmt.Errorf("%s is %s but its card was charged %d", subject, o.State, a.Amount))
	case authorized:
		d.same(subject, "authorized amount", a.Amount, o.Total)
		d.same(subject, "authorized consumer", a.ConsumerID, o.ConsumerID)
	}

	notified := []Notification{{ConsumerID: o.ConsumerID, State: o.State, Text: notificationText(o.ID, o.State, o.Reason)}}
	events := 2
	if o.State == Cancelled { // approved first
		notified = append([]Notification{{ConsumerID: o.ConsumerID, State: Approved, Text: notificationText(o.ID, Approved, "")}}, notified...)
		events = 3
	}
	d.same(subject, "notifications", r.Notifications[o.ID], notified)
	d.same(subject, "event history", r.History[o.ID], History{Events: events, LastSeq: events, State: o.State})
}

// Print writes the summary: a table of the orders with each service's
// copy of their main values, then whether every service agrees.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tCONSUMER\tSTATE\tPRICED BY\tTOTAL\tTICKET\tCARD\tTICKET STATE\tNOTIFIED\tREASON")
	count := map[string]int{}
	for _, o := range r.Orders {
		count[o.State]++
		ticketTotal, ticketState := "-", "-"
		if t, ok := r.Tickets[o.ID]; ok {
			ticketTotal, ticketState = cents(t.Total), t.State
		}
		card := "-"
		if a, ok := r.Authorizations[o.ID]; ok {
			card = cents(a.Amount)
		}
		var notified []string
		for _, n := range r.Notifications[o.ID] {
			notified = append(notified, n.State)
		}
		name := o.ConsumerName
		if name == "" {
			name = o.ConsumerID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, name, o.State, o.PricedBy, cents(o.Total),
			ticketTotal, card, ticketState, strings.Join(notified, "+"), o.Reason)
	}
	tw.Flush()
	summary := fmt.Sprintf("%d orders: %d approved, %d rejected", len(r.Orders), count[Approved], count[Rejected])
	if n := count[Cancelled]; n > 0 {
		summary += fmt.Sprintf(", %d cancelled", n)
	}
	if err := r.Check(); err != nil {
		fmt.Fprintf(w, "\n%s; THE SERVICES DISAGREE:\n%s\n", summary, strings.TrimPrefix(err.Error(), ErrDisagreement.Error()+":\n"))
	} else {
		fmt.Fprintf(w, "\n%s; every service's copy of every value agrees with its source, each order's events arrived in order, no effect applied twice\n", summary)
	}
	if len(r.Quotes) > 0 {
		var qs []string
		for _, q := range r.Quotes {
			qs = append(qs, fmt.Sprintf("%s %s", q.Fleet, cents(q.Price)))
		}
		fmt.Fprintf(w, "courier quotes for o-1: %s\n", strings.Join(qs, ", "))
	}
	fmt.Fprintf(w, "done in %s\n", r.Elapsed.Round(time.Millisecond))
}
