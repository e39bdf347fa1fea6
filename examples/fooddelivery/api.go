package fooddelivery

// The services' public contracts: channel names, commands, replies and
// events. Each service owns its tables; these types are all the others
// know of it.

// Service names, also their subscriber ids and registry names.
const (
	OrderService        = "order-service"
	ConsumerService     = "consumer-service"
	KitchenService      = "kitchen-service"
	AccountingService   = "accounting-service"
	RestaurantService   = "restaurant-service"
	NotificationService = "notification-service"
	DeliveryService     = "delivery-service"
)

// Channels.
const (
	ConsumerCommands     = "consumer-service.commands"
	KitchenCommands      = "kitchen-service.commands"
	AccountingCommands   = "accounting-service.commands"
	NotificationCommands = "notification-service.commands"
	OrderReplies         = "order-service.replies"
	// OrderRepliesV2 is where the order service's release 2 has its
	// commands answered: replies only it understands (those of the
	// cancellation) never reach an instance of release 1, which reads
	// OrderReplies, while both run.
	OrderRepliesV2 = "order-service.v2.replies"
	// CourierQuotes is a publish-subscribe channel: every courier fleet
	// answers each quote request.
	CourierQuotes = "courier-quotes"
	// OrderAggregate and RestaurantAggregate are the aggregate types, and
	// so the channels, of the domain events.
	OrderAggregate      = "Order"
	RestaurantAggregate = "Restaurant"
)

// Order states. Version 1 of the orders API knows the first three.
const (
	ApprovalPending = "APPROVAL_PENDING"
	Approved        = "APPROVED"
	Rejected        = "REJECTED"
	// CancelPending and Cancelled are version 2's: an approved order the
	// consumer cancels (POST /v2/orders/{id}/cancel) is CANCEL_PENDING
	// until its ticket and its card authorization are undone.
	CancelPending = "CANCEL_PENDING"
	Cancelled     = "CANCELLED"
)

// LineItem is one line of an order.
type LineItem struct {
	MenuItem string `json:"menuItem"`
	Quantity int    `json:"quantity"`
}

// OrderLine is a line of a priced order: the item, how many, and the unit
// price in cents at which the order service priced it. The order's lines
// and total travel with it, so that every service works with the prices
// the consumer was quoted, not with a price list of its own.
type OrderLine struct {
	MenuItem string `json:"menuItem"`
	Quantity int    `json:"quantity"`
	Price    int    `json:"price"`
}

// LinesTotal is what lines cost in cents.
func LinesTotal(lines []OrderLine) int {
	total := 0
	for _, l := range lines {
		total += l.Price * l.Quantity
	}
	return total
}

// MenuItem is an item of a restaurant's menu with its price in cents.
type MenuItem struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Price int    `json:"price"`
}

// Commands to the consumer service.
type (
	// VerifyConsumer asks whether a consumer may place an order.
	VerifyConsumer struct {
		ConsumerID string `json:"consumerId"`
		OrderID    string `json:"orderId"`
	}
	// ConsumerVerified is VerifyConsumer's success reply.
	ConsumerVerified struct {
		Name string `json:"name"`
	}
	// ConsumerNotValid is VerifyConsumer's failure reply.
	ConsumerNotValid struct {
		Reason string `json:"reason"`
	}
)

// Commands to the kitchen service.
type (
	// CreateTicket asks the kitchen to accept an order. It carries the
	// order's priced lines and total: the kitchen checks the items against
	// its replica of the restaurant's menu and records the order's prices,
	// which are the ones the consumer was quoted.
	CreateTicket struct {
		OrderID      string      `json:"orderId"`
		RestaurantID string      `json:"restaurantId"`
		Items        []OrderLine `json:"items"`
		Total        int         `json:"total"`
	}
	// TicketCreated is CreateTicket's success reply.
	TicketCreated struct {
		TicketID string `json:"ticketId"`
		Total    int    `json:"total"` // the total the ticket recorded: the order's
	}
	// TicketRefused is CreateTicket's failure reply.
	TicketRefused struct {
		Reason string `json:"reason"`
	}
	// ApproveTicket confirms a ticket once the payment is authorized.
	ApproveTicket struct {
		OrderID string `json:"orderId"`
	}
	// TicketApproved is ApproveTicket's reply.
	TicketApproved struct {
		TicketID string `json:"ticketId"`
	}
	// CancelTicket cancels a ticket of a rejected order.
	CancelTicket struct {
		OrderID string `json:"orderId"`
	}
	// TicketCancelled is CancelTicket's reply.
	TicketCancelled struct {
		TicketID string `json:"ticketId"`
	}
)

// Commands to the accounting service.
type (
	// AuthorizeCard reserves an order's total on the consumer's card.
	AuthorizeCard struct {
		OrderID    string `json:"orderId"`
		ConsumerID string `json:"consumerId"`
		Amount     int    `json:"amount"`
	}
	// CardAuthorized is AuthorizeCard's success reply.
	CardAuthorized struct {
		AuthorizationID string `json:"authorizationId"`
	}
	// CardDeclined is AuthorizeCard's failure reply.
	CardDeclined struct {
		Reason string `json:"reason"`
	}
	// ReverseAuthorization releases what AuthorizeCard reserved, for an
	// order the consumer cancelled.
	ReverseAuthorization struct {
		OrderID string `json:"orderId"`
	}
	// AuthorizationReversed is ReverseAuthorization's reply.
	AuthorizationReversed struct {
		AuthorizationID string `json:"authorizationId"`
		Amount          int    `json:"amount"` // released
	}
)

// NotifyConsumer is a one-way notification: it takes no reply. The order
// service's release 1 sends it with the text the consumer reads; release
// 2 sends NotifyConsumerV2.
type NotifyConsumer struct {
	ConsumerID string `json:"consumerId"`
	OrderID    string `json:"orderId"`
	State      string `json:"state"`
	Text       string `json:"text"`
}

// NotifyConsumerV2 is version 2 of NotifyConsumer, a message type of its
// own (fooddelivery.NotifyConsumer.v2), since it breaks version 1's
// readers: it carries the state and the reason, and the notification
// service writes the text. The notification service handles both
// versions while senders of version 1 run; the handler of version 1 goes
// once none is left.
type NotifyConsumerV2 struct {
	ConsumerID string `json:"consumerId"`
	OrderID    string `json:"orderId"`
	State      string `json:"state"`
	Reason     string `json:"reason,omitempty"`
}

// CommandType names version 2 on the wire.
func (NotifyConsumerV2) CommandType() string { return "fooddelivery.NotifyConsumer.v2" }

// Publish / asynchronous responses: quotes from courier fleets.
type (
	// RequestQuote asks every courier fleet for a delivery price.
	RequestQuote struct {
		OrderID    string `json:"orderId"`
		DistanceKM int    `json:"distanceKm"`
	}
	// Quote is one fleet's answer.
	Quote struct {
		Fleet string `json:"fleet"`
		Price int    `json:"price"`
		ETA   int    `json:"etaMinutes"`
	}
)

// Order events, published through the order service's outbox. Seq numbers
// the events of one order from 1, so that consumers can check the
// per-order ordering of the sharded channel.
type (
	// OrderCreated is published with the pending order.
	OrderCreated struct {
		Seq          int         `json:"seq"`
		ConsumerID   string      `json:"consumerId"`
		RestaurantID string      `json:"restaurantId"`
		Items        []OrderLine `json:"items"`
		Total        int         `json:"total"`
	}
	// OrderApproved ends an order that the saga approved.
	OrderApproved struct {
		Seq int `json:"seq"`
	}
	// OrderRejected ends an order that the saga rejected.
	OrderRejected struct {
		Seq    int    `json:"seq"`
		Reason string `json:"reason"`
	}
	// OrderCancelled ends an approved order that its consumer cancelled
	// (release 2).
	OrderCancelled struct {
		Seq int `json:"seq"`
	}
)

// Restaurant events, which the kitchen replicates.
type (
	// RestaurantCreated carries the whole restaurant.
	RestaurantCreated struct {
		Name string     `json:"name"`
		Menu []MenuItem `json:"menu"`
	}
	// MenuRevised replaces the restaurant's menu.
	MenuRevised struct {
		Menu []MenuItem `json:"menu"`
	}
)

// Synchronous APIs.
type (
	// ConsumerInfo is what GET /consumers/{id} of the consumer service
	// answers (REST).
	ConsumerInfo struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	// MenuResponse is a restaurant with its menu: what the restaurant
	// service's gRPC method Restaurants/GetMenu answers (as a
	// restaurantpb.Menu) and what its events carry.
	MenuResponse struct {
		RestaurantID string     `json:"restaurantId"`
		Name         string     `json:"name"`
		Menu         []MenuItem `json:"menu"`
	}
	// CreateOrderRequest is the body of POST /v1/orders.
	CreateOrderRequest struct {
		ID           string     `json:"id,omitempty"` // idempotency key; generated when empty
		ConsumerID   string     `json:"consumerId"`
		RestaurantID string     `json:"restaurantId"`
		Items        []LineItem `json:"items"`
	}
	// OrderView is the order service's answer to POST /v1/orders and
	// GET /v1/orders/{id}: version 1 of the order resource. Its State is
	// APPROVAL_PENDING, APPROVED or REJECTED: version 1 shows an order
	// being cancelled (version 2) as APPROVED and a cancelled one as
	// REJECTED.
	OrderView struct {
		ID           string `json:"id"`
		State        string `json:"state"`
		ConsumerID   string `json:"consumerId"`
		ConsumerName string `json:"consumerName,omitempty"`
		RestaurantID string `json:"restaurantId"`
		// Items are the order's priced lines; Total is what they cost.
		Items  []OrderLine `json:"items,omitempty"`
		Total  int         `json:"total"`
		Reason string      `json:"reason,omitempty"`
		// PricedBy says where the prices came from: "restaurant-service"
		// (gRPC) or "cached menu" (the fallback).
		PricedBy string `json:"pricedBy,omitempty"`
		// Consumer and Restaurant are the related resources, included
		// when GET /v1/orders/{id}?expand=consumer,restaurant asks for
		// them.
		Consumer   *ConsumerInfo `json:"consumer,omitempty"`
		Restaurant *MenuResponse `json:"restaurant,omitempty"`
	}
	// OrderV2 is version 2 of the order resource, the answer of
	// POST /v2/orders, GET /v2/orders/{id} and
	// POST /v2/orders/{id}/cancel: version 1's fields, the states
	// CANCEL_PENDING and CANCELLED, which version 1 clients do not know
	// (version 1 shows a cancelled order as REJECTED), and Cancellable.
	OrderV2 struct {
		ID           string      `json:"id"`
		State        string      `json:"state" jsonschema:"enum=APPROVAL_PENDING,enum=APPROVED,enum=REJECTED,enum=CANCEL_PENDING,enum=CANCELLED"`
		ConsumerID   string      `json:"consumerId"`
		ConsumerName string      `json:"consumerName,omitempty"`
		RestaurantID string      `json:"restaurantId"`
		Items        []OrderLine `json:"items,omitempty"`
		Total        int         `json:"total"`
		Reason       string      `json:"reason,omitempty"`
		PricedBy     string      `json:"pricedBy,omitempty"`
		// Cancellable says whether POST /v2/orders/{id}/cancel would
		// cancel the order now: it is approved.
		Cancellable bool          `json:"cancellable"`
		Consumer    *ConsumerInfo `json:"consumer,omitempty"`
		Restaurant  *MenuResponse `json:"restaurant,omitempty"`
	}
)
