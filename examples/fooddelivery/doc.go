// Package fooddelivery is a small food-delivery system in the spirit of the
// FTGO example of Microservices Patterns, built on Courier: seven services,
// each with its own database schema, that talk only through Courier's
// channels, its outbox and inbox, and REST and gRPC calls found through the
// registry.
//
//	go run ./cmd/courier demo                  every service in one process, a traced scenario
//	go run ./cmd/courier demo -trace stdout    the same, exporting every service's OpenTelemetry spans
//	go run ./examples/fooddelivery/cmd/fooddelivery -h
//
// Where each pattern lives:
//
//   - respond first, finish later; saga orchestration with commands and
//     asynchronous replies; poll or be notified: order.go (POST /v1/orders
//     answers 202 APPROVAL_PENDING; replies advance the saga);
//   - transactional outbox: every state change writes its events, commands
//     and replies in the same transaction (order.go, restaurant.go; the
//     command dispatchers write handlers' replies through the outbox,
//     node.commandDispatcher in runtime.go);
//   - idempotent consumers: every handler runs in an inbox transaction,
//     one per message, that the dispatchers hand to it (HandleTx;
//     node.subscribe in runtime.go), and accounting.go and kitchen.go are
//     idempotent by order id as well;
//   - data replication instead of a synchronous call: kitchen.go keeps a
//     replica of the restaurants from restaurant.go's events, and checks
//     each ticket's items against it;
//   - one price per order: order.go prices an order once, from the
//     restaurant service's menu or its cached copy, and every later step
//     carries the priced lines and total (CreateTicket, AuthorizeCard);
//     the kitchen records them rather than pricing the order again from
//     its replica, which may hold another revision of the menu, and the
//     saga cancels a ticket whose total is not the order's;
//   - synchronous REST and gRPC calls found through the registry, guarded
//     by circuit breakers and timeouts, with fallbacks: sync.go (the
//     callers), consumer.go (REST server), restaurant.go (gRPC server),
//     server.go (self-registration);
//   - one-way notification: NotifyConsumer in notification.go;
//   - publish / asynchronous responses: courier quotes in delivery.go;
//   - sharded channels with per-order ordering: every command and event of
//     an order carries its id as partition key; the kitchen runs two
//     competing instances; notification.go checks each order's event
//     sequence;
//   - REST by the book: orderapi.go (a version prefix, related resources
//     in one request with ?expand=, RFC 9457 problems); gRPC from its IDL,
//     restaurantpb/restaurant.proto, with generated code;
//   - published contracts: contracts.go declares every service's AsyncAPI
//     document (from its dispatchers' registrations and what it publishes
//     and sends) and OpenAPI documents; each service serves them under
//     /api/ beside /healthz and /readyz, and the released ones are
//     committed under api/, which `courier api check` compares them with
//     (go run ./cmd/courier demo -write-contracts DIR writes them);
//   - versions side by side: release 2 of the order service (order.go,
//     orderapi.go) serves version 2 of the orders API under /v2 beside
//     version 1 under /v1, registers the versions it serves in the
//     registry ("api.v1", "api.v2"), and a router (OrderRoutes, client.go)
//     sends each request to an instance that serves its version, while
//     release 1 still runs; its sagas send NotifyConsumer.v2, a message
//     type of its own, which notification.go handles beside NotifyConsumer
//     until release 1 is retired; scenario.go's phase 3 shows it;
//   - one trace per order: with Env.TracerProvider set (courier demo
//     -trace), every REST and gRPC call, outbox write, relay send and
//     handler joins the trace the order's request started, each service
//     with its own service.name: tracing.go, export.go;
//   - the scripted scenario: scenario.go; its cross-service check, which
//     compares every value a service keeps of another's data with its
//     source and fails the run on any difference: report.go;
//     single-process wiring on embedded defaults and one process per
//     service on PostgreSQL/MySQL, NATS and etcd: system.go and cli.go.
//
// # One process per service, with courier relay and courier router
//
// From the repository's root, with PostgreSQL at $DB: each service runs in
// a process of its own and creates its schema (fd_kitchen, ..., fd_order);
// a courier relay per schema publishes that service's outbox; a courier
// router in front of the order service takes the scenario's REST calls.
//
//	DB='postgres://courier:courier@127.0.0.1:5432/courier?sslmode=disable'
//	S='-broker nats://127.0.0.1:4222 -registry etcd://127.0.0.1:2379'
//	go build ./cmd/courier
//	./courier registry &                                               # etcd on 127.0.0.1:2379
//	go run github.com/nats-io/nats-server/v2 -js -sd "$(mktemp -d)" &  # NATS on 127.0.0.1:4222
//	for s in kitchen notification consumer accounting delivery restaurant order; do
//	    ./courier demo -service $s-service -external-relay -db "$DB" $S &
//	done    # then wait for the seven "running" lines
//	for s in kitchen notification consumer accounting delivery restaurant order; do
//	    ./courier relay -db "$DB&search_path=fd_$s" -broker 'nats://127.0.0.1:4222?shards=4' -listen '' &
//	done
//	./courier router -routes /v1/orders=order-service,/v2/orders=order-service -listen 127.0.0.1:8080 &
//	./courier demo -scenario -order-url http://127.0.0.1:8080 -db "$DB" $S
//
// The relays start once the services run: the services' subscriptions
// then exist before anything is published, and the schemas before the
// relays read them. A relay's -db is the server's URL with the service's
// schema as search_path (ServiceDBURL gives it; on MySQL/MariaDB it is the
// service's database, mysql://.../fd_order); ?shards=4 is the example's
// number of shards per channel. A relay may instead tail PostgreSQL's log
// (wal_level=logical) with -mode tail -slot fd_order -publication fd_order,
// a slot and publication of its own per schema; the slot sees only what
// commits after it exists, which suits the order service, whose outbox
// stays empty until the first order. Drop the slot when done:
// SELECT pg_drop_replication_slot('fd_order'). The services and the relays
// take any other broker URL the same way (kafka://, amqp://), and the
// relays' and the router's flags may also come from a -config JSON file or
// COURIER_* environment variables. Killing a relay loses nothing: the one
// started after it, or a second one running on the same -db, publishes
// what it left. TestOneProcessPerServiceWithCourierRelayAndRouter in
// cmd/courier runs these commands, on ports and schemas of its own.
package fooddelivery
