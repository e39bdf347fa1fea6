// Package fooddelivery is a small food-delivery system in the spirit of the
// FTGO example of Microservices Patterns, built on Courier: seven services,
// each with its own database schema, that talk only through Courier's
// channels, its outbox and inbox, and REST and gRPC calls found through the
// registry.
//
//	go run ./cmd/courier demo           every service in one process, a traced scenario
//	go run ./examples/fooddelivery/cmd/fooddelivery -h
//
// Where each pattern lives:
//
//   - respond first, finish later; saga orchestration with commands and
//     asynchronous replies; poll or be notified: order.go (POST /orders
//     answers 202 APPROVAL_PENDING; replies advance the saga);
//   - transactional outbox: every state change writes its events, commands
//     and replies in the same transaction (order.go, restaurant.go, and
//     outboxProducer in runtime.go for handlers' replies);
//   - idempotent consumers: every handler runs in an inbox transaction
//     (node.subscribe in runtime.go), and accounting.go and kitchen.go are
//     idempotent by order id as well;
//   - data replication instead of a synchronous call: kitchen.go keeps a
//     replica of the restaurants from restaurant.go's events;
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
//   - the scripted scenario and its cross-service checks: scenario.go;
//     single-process wiring on embedded defaults and one process per
//     service on PostgreSQL/MySQL, NATS and etcd: system.go and cli.go.
package fooddelivery
