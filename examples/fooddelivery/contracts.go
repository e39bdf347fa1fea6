package fooddelivery

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/courier-go/courier/apispec"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/examples/fooddelivery/restaurantpb"
)

// Every service publishes its contracts: an AsyncAPI document of its
// messaging, built from what its dispatchers handle (their HandledTypes)
// and what it publishes and sends; an OpenAPI document of its REST
// operations (health at least); and its gRPC IDL. It serves them beside
// /healthz and /readyz:
//
//	/api/asyncapi.json, /api/asyncapi.yaml   messaging
//	/api/openapi.json, /api/openapi.yaml     REST outside a version (health, consumers)
//	/api/v1/openapi.json, ...                a version of a REST API (the orders)
//	/api/restaurant.proto                    the gRPC IDL
//
// The released contracts are committed under api/, one directory per
// service, and `courier api check -baseline examples/fooddelivery/api`
// compares them with what Contracts generates: a change that breaks a
// consumer without a new major version fails the build.

// commandContract is what every party to one command type agrees on: its
// channel and the replies it is answered with. The sender's and the
// handler's documents both say it.
type commandContract struct {
	typeName string
	channel  string
	replies  []apispec.DeclOption
	// send declares that a service sends the command.
	send func(s *apispec.Spec)
}

// command returns the contract of command type C.
func command[C any](channel string, replies ...apispec.DeclOption) commandContract {
	return commandContract{typeName: commands.TypeName[C](), channel: channel, replies: replies,
		send: func(s *apispec.Spec) { apispec.Sends[C](s, channel, replies...) }}
}

// The example's commands.
var (
	verifyConsumerCmd = command[VerifyConsumer](ConsumerCommands, apispec.Replies[ConsumerVerified](), apispec.Fails[ConsumerNotValid]())
	createTicketCmd   = command[CreateTicket](KitchenCommands, apispec.Replies[TicketCreated](), apispec.Fails[TicketRefused]())
	approveTicketCmd  = command[ApproveTicket](KitchenCommands, apispec.Replies[TicketApproved]())
	cancelTicketCmd   = command[CancelTicket](KitchenCommands, apispec.Replies[TicketCancelled]())
	authorizeCardCmd  = command[AuthorizeCard](AccountingCommands, apispec.Replies[CardAuthorized](), apispec.Fails[CardDeclined]())
	notifyConsumerCmd = command[NotifyConsumer](NotificationCommands) // one-way: no reply
	requestQuoteCmd   = command[RequestQuote](CourierQuotes, apispec.Replies[Quote]())
	// Release 2 of the order service's.
	reverseAuthorizationCmd = command[ReverseAuthorization](AccountingCommands, apispec.Replies[AuthorizationReversed]())
	notifyConsumerV2Cmd     = command[NotifyConsumerV2](NotificationCommands)

	// commandContracts are the commands by type name.
	commandContracts = contractsByType(verifyConsumerCmd, createTicketCmd, approveTicketCmd, cancelTicketCmd, authorizeCardCmd,
		notifyConsumerCmd, requestQuoteCmd, reverseAuthorizationCmd, notifyConsumerV2Cmd)
)

func contractsByType(cs ...commandContract) map[string]commandContract {
	m := make(map[string]commandContract, len(cs))
	for _, c := range cs {
		m[c.typeName] = c
	}
	return m
}

// handlersOf is one type of a dispatcher's handlers.
type handlersOf struct {
	r        apispec.HandlerRegistry
	typeName string
}

func (h handlersOf) HandledTypes(yield func(channel, typeName string, payload reflect.Type)) {
	h.r.HandledTypes(func(channel, typeName string, payload reflect.Type) {
		if typeName == h.typeName {
			yield(channel, typeName, payload)
		}
	})
}

// receivesCommands declares every command d handles, on its channel and
// with its replies; a command without a contract is a declaration error
// (its channel is empty).
func receivesCommands(s *apispec.Spec, d apispec.HandlerRegistry) {
	d.HandledTypes(func(_, typeName string, _ reflect.Type) {
		c := commandContracts[typeName]
		s.Receives(apispec.Command, c.channel, handlersOf{d, typeName}, c.replies...)
	})
}

// healthStatus is the body of /healthz and /readyz when they answer 200.
type healthStatus struct {
	Status string `json:"status"`
}

// newSpec returns a service's Spec with its health operations, which every
// service serves.
func newSpec(service, version, description string) *apispec.Spec {
	s := apispec.New(service, version, apispec.WithDescription(description))
	apispec.Operation[apispec.NoBody, healthStatus](s, "GET /healthz", apispec.Summary("Liveness: the process serves HTTP"),
		apispec.OperationID("liveness"), apispec.Tags("health"))
	apispec.Operation[apispec.NoBody, healthStatus](s, "GET /readyz", apispec.Summary("Readiness: the database and the broker answer"),
		apispec.OperationID("readiness"), apispec.Tags("health"), apispec.Problems(http.StatusServiceUnavailable))
	return s
}

// serviceAPI is what a service publishes of its API.
type serviceAPI struct {
	// spec is the service's messaging and its REST operations outside a
	// version.
	spec *apispec.Spec
	// versions are the versions of a REST API, by path prefix ("v1").
	versions map[string]*apispec.Spec
	// idl are IDL files (.proto), by name.
	idl map[string][]byte
}

// documents returns the service's documents by their paths under /api/
// and in the baseline: YAML, which reads best in a diff.
func (a *serviceAPI) documents() (map[string][]byte, error) {
	files := map[string][]byte{}
	add := func(name string, build func() (*apispec.Document, error)) error {
		doc, err := build()
		if err != nil {
			return err
		}
		y, err := doc.YAML()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		files[name] = y
		return nil
	}
	errs := []error{add("asyncapi.yaml", a.spec.AsyncAPI), add("openapi.yaml", a.spec.OpenAPI)}
	for prefix, s := range a.versions {
		errs = append(errs, add(prefix+"/openapi.yaml", s.OpenAPI))
	}
	for name, data := range a.idl {
		files[name] = data
	}
	return files, errors.Join(errs...)
}

// register serves the documents on mux under /api/.
func (a *serviceAPI) register(mux *http.ServeMux) {
	mux.Handle("/api/", http.StripPrefix("/api", a.spec.Handler()))
	for prefix, s := range a.versions {
		base := "/api/" + prefix
		h := http.StripPrefix(base, s.Handler())
		mux.Handle("GET "+base+"/openapi.json", h) // a version's API is REST alone
		mux.Handle("GET "+base+"/openapi.yaml", h)
	}
	for name, data := range a.idl {
		mux.HandleFunc("GET /api/"+name, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(data)
		})
	}
}

// metadata is what the service's registration says of its API: the
// version of each REST API it serves ("api.v1": "1.0.0"), so that a router
// or a client can send each request to an instance that serves its
// version.
func (a *serviceAPI) metadata() map[string]string {
	m := map[string]string{}
	for prefix, s := range a.versions {
		m[metaAPI(prefix)] = s.Version()
	}
	return m
}

// describe returns a service's API without running it: its handlers are
// registered on dispatchers that nothing subscribes.
func describe(name string) (*serviceAPI, error) {
	switch name {
	case OrderService:
		return orderAPI(release2, newOrderHandlers(release2)), nil
	case LegacyOrderService:
		return orderAPI(release1, newOrderHandlers(release1)), nil
	case ConsumerService:
		return consumerAPI(newConsumerHandlers(nil)), nil
	case KitchenService:
		return kitchenAPI(newKitchenHandlers(nil)), nil
	case AccountingService:
		return accountingAPI(newAccountingHandlers(nil)), nil
	case RestaurantService:
		return restaurantAPI(), nil
	case NotificationService:
		return notificationAPI(newNotificationHandlers(nil, nil)), nil
	case DeliveryService:
		return deliveryAPI(newFleetHandlers(nil, fleets[0])), nil
	}
	return nil, fmt.Errorf("fooddelivery: unknown service %q (known: %s)", name, strings.Join(Services, ", "))
}

// Contracts returns the API documents of every service, generated from
// the code, by their paths in the baseline (examples/fooddelivery/api):
// <service>/asyncapi.yaml, <service>/openapi.yaml,
// order-service/v1/openapi.yaml, restaurant-service/restaurant.proto.
func Contracts() (map[string][]byte, error) {
	all := map[string][]byte{}
	var errs []error
	for _, name := range Services {
		api, err := describe(name)
		if err == nil {
			var docs map[string][]byte
			docs, err = api.documents()
			for file, data := range docs {
				all[name+"/"+file] = data
			}
		}
		errs = append(errs, err)
	}
	return all, errors.Join(errs...)
}

// WriteContracts writes Contracts into dir, for `courier api check`.
func WriteContracts(dir string) error {
	docs, err := Contracts()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(docs))
	for name := range docs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("fooddelivery: %w", err)
		}
		if err := os.WriteFile(p, docs[name], 0o644); err != nil {
			return fmt.Errorf("fooddelivery: %w", err)
		}
	}
	return nil
}

// The services' APIs.

// handlers are a service's dispatchers: what it receives.
type handlers struct {
	events  *events.Dispatcher
	cmds    *commands.Dispatcher
	replies *commands.ReplyDispatcher // the order service's, on OrderReplies
}

// messagingAPI returns the API, at version, of a service that receives
// what h handles.
func messagingAPI(service, version, description string, h handlers) *serviceAPI {
	s := newSpec(service, version, description)
	if h.events != nil {
		s.Receives(apispec.Event, "", h.events)
	}
	if h.cmds != nil {
		receivesCommands(s, h.cmds)
	}
	return &serviceAPI{spec: s}
}

func consumerAPI(h handlers) *serviceAPI {
	a := messagingAPI(ConsumerService, "1.0.0", "The consumers who order: verified for each order, and looked up over REST.", h)
	apispec.Operation[apispec.NoBody, ConsumerInfo](a.spec, "GET /consumers/{id}", apispec.Summary("Get a consumer"),
		apispec.Tags("consumers"), apispec.Problems(http.StatusNotFound, http.StatusInternalServerError))
	return a
}

func kitchenAPI(h handlers) *serviceAPI {
	return messagingAPI(KitchenService, "1.0.0", "Tickets for the orders the kitchen prepares, checked against its replica of the restaurants' menus.", h)
}

func accountingAPI(h handlers) *serviceAPI {
	return messagingAPI(AccountingService, "1.1.0", "The consumers' accounts: card authorizations for the orders.", h)
}

func notificationAPI(h handlers) *serviceAPI {
	return messagingAPI(NotificationService, "1.1.0", "Tells consumers about their orders (one-way notifications) and keeps the history of every order's events.", h)
}

func deliveryAPI(h handlers) *serviceAPI {
	return messagingAPI(DeliveryService, "1.0.0", "Courier fleets: each answers every quote request on the publish-subscribe channel courier-quotes.", h)
}

func restaurantAPI() *serviceAPI {
	s := newSpec(RestaurantService, "1.0.0", "Restaurants and their menus: events for the replicas, and the gRPC API of restaurant.proto.")
	apispec.Publishes[RestaurantCreated](s, RestaurantAggregate, apispec.Summary("A restaurant opened, with its menu."))
	apispec.Publishes[MenuRevised](s, RestaurantAggregate, apispec.Summary("A restaurant's menu changed."))
	return &serviceAPI{spec: s, idl: map[string][]byte{"restaurant.proto": restaurantpb.IDL}}
}

// orderAPI is the API of a release of the order service. Release 2's
// messaging is version 2.0.0: it no longer sends NotifyConsumer, which
// breaks that message's readers (the notification service handles
// NotifyConsumer.v2 before release 2 runs).
func orderAPI(release int, h handlers) *serviceAPI {
	version, versions := "1.0.0", map[string]*apispec.Spec{"v1": orderAPIV1()}
	if release != release1 {
		version, versions["v2"] = "2.0.0", orderAPIV2()
	}
	a := messagingAPI(OrderService, version, "Orders: the saga that approves or rejects each one, through commands and their replies.", h)
	a.versions = versions
	s := a.spec
	apispec.Publishes[OrderCreated](s, OrderAggregate, apispec.Summary("An order was placed; its saga starts."))
	apispec.Publishes[OrderApproved](s, OrderAggregate, apispec.Summary("The saga approved the order."))
	apispec.Publishes[OrderRejected](s, OrderAggregate, apispec.Summary("The saga rejected the order."))
	if release != release1 {
		apispec.Publishes[OrderCancelled](s, OrderAggregate, apispec.Summary("The consumer cancelled the approved order."))
	}
	for _, c := range orderSends[release] {
		c.send(s)
	}
	// After the commands, whose Replies and Fails say each reply's outcome.
	if release == release1 {
		s.Receives(apispec.Reply, OrderReplies, h.replies)
	} else {
		s.Receives(apispec.Reply, OrderRepliesV2, h.replies)
		// The replies to release 1's commands, whose sagas it takes over.
		s.Receives(apispec.Reply, OrderReplies, newOrderHandlers(release1).replies)
	}
	return a
}

// orderAPIV1 is version 1 of the order service's REST API (orderapi.go).
func orderAPIV1() *apispec.Spec {
	return orderOperations[OrderView]("v1", "1.0.0", "Version 1 of the orders API: place an order, then poll it until its saga ends.")
}

// orderOperations declares the operations every version of the orders
// API has, version's order resource being V.
func orderOperations[V any](version, docVersion, description string) *apispec.Spec {
	s := apispec.New(OrderService, docVersion, apispec.WithDescription(description))
	suffix := strings.ToUpper(version[:1]) + version[1:]
	apispec.Operation[CreateOrderRequest, V](s, "POST /"+version+"/orders", apispec.Summary("Place an order"),
		apispec.Description("Answers at once with the order APPROVAL_PENDING; its saga approves or rejects it later. A retried POST with the same id answers with the order as it is."),
		apispec.OperationID("createOrder"+suffix), apispec.Tags("orders"), apispec.Status(http.StatusAccepted),
		apispec.Problems(http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusInternalServerError, http.StatusServiceUnavailable))
	apispec.Operation[apispec.NoBody, V](s, "GET /"+version+"/orders/{id}", apispec.Summary("Get an order"),
		apispec.OperationID("getOrder"+suffix), apispec.Tags("orders"),
		apispec.Query("expand", "related resources to include in the same answer, comma-separated: consumer, restaurant"),
		apispec.Problems(http.StatusBadRequest, http.StatusNotFound, http.StatusInternalServerError, http.StatusServiceUnavailable))
	return s
}

// orderAPIV2 is version 2 of the order service's REST API (orderapi.go),
// served by release 2 beside version 1.
func orderAPIV2() *apispec.Spec {
	s := orderOperations[OrderV2]("v2", "2.0.0", "Version 2 of the orders API: version 1's operations, "+
		"the cancellation of an approved order as an operation on its cancel sub-resource, and the states CANCEL_PENDING and CANCELLED.")
	apispec.Operation[apispec.NoBody, OrderV2](s, "POST /v2/orders/{id}/cancel", apispec.Summary("Cancel an approved order"),
		apispec.Description("Answers at once with the order CANCEL_PENDING (or as it is, if it was cancelled already); "+
			"a saga cancels its ticket and releases its card authorization, and the order becomes CANCELLED. "+
			"An order still APPROVAL_PENDING, or REJECTED, cannot be cancelled (409)."),
		apispec.OperationID("cancelOrderV2"), apispec.Tags("orders"), apispec.Status(http.StatusAccepted),
		apispec.Problems(http.StatusNotFound, http.StatusConflict, http.StatusInternalServerError))
	return s
}
