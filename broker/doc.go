// Package broker is Courier's channel port: the small interfaces through
// which services send messages to named channels and consume them, and the
// semantics every broker adapter (in-memory, NATS JetStream, Kafka,
// RabbitMQ) must honour. The conformance suite in package brokertest checks
// those semantics.
//
// # Channels and subscriber ids
//
// A channel is a named, append-only stream of messages, like a Kafka topic.
// A consumer subscribes a subscriber id (a consumer group) to one or more
// channels. Every subscriber id receives each message sent to its channels
// (publish-subscribe); several subscriptions that share a subscriber id are
// instances of one logical consumer and compete for the messages
// (point-to-point).
//
// # Sharded channels
//
// The PARTITION_ID header of a message is its partition key. The key picks a
// shard of the channel; each shard is handled by exactly one instance of a
// subscriber id at a time, in order, and different shards are handled
// concurrently. When instances join or leave, shards move between them
// without reordering the messages of a key and without losing any. Messages
// without a key are spread over the shards and have no order.
//
// # Delivery modes
//
// Order per key costs throughput: a shard's messages are handled one at a
// time, and the adapters keep one owner per shard. A subscription that does
// not need order says so with WithConcurrentDelivery(n): its instances then
// handle up to n messages each at once, in no order, even for one key, and
// each adapter consumes the channel as a plain client of its broker would
// (one shared durable consumer on NATS, one work queue per subscriber id on
// RabbitMQ, records of a partition handled in parallel with contiguous
// offset commits on Kafka). Every other promise holds in both modes:
// at-least-once delivery, retries, dead-lettering, Close waiting for the
// handlers in flight. DeliveryOrdered, the default, keeps order per key.
// All instances of a subscriber id on a channel should use one mode: the
// two modes keep separate positions (NATS) or queues (RabbitMQ), so
// instances of both would each handle every message; see each adapter's
// documentation for how it starts a mode's position when a subscriber id
// switches.
//
// # Delivery
//
// Delivery is at least once. A handler that returns an error is called
// again after a backoff; after the configured number of attempts (or at once
// for an error marked with Permanent) the message goes to the subscriber's
// dead-letter channel with headers giving the reason, the original channel
// and the subscriber id, and the consumer moves on. A handler that panics is
// treated as one that returned an error. Closing a subscription stops
// delivery, lets in-flight handlers finish and leaves every message not yet
// handled to the remaining instances or to the next subscription with the
// same subscriber id.
//
// # Malformed messages
//
// A message from a client that is not Courier may be one that Courier's
// Send would refuse: a header with an empty name, or one that is not
// UTF-8, headers or a payload over the limits. Such a message still leaves
// its shard. If the broker refuses its dead letter as it is (an error
// whose Permanent method reports true, see IsPermanent), the dead letter
// goes in a bounded envelope (headers that not every broker carries, and
// those over a 16 KiB budget, dropped and listed in the reason; the
// payload cut to BoundedPayloadBytes, with its size and SHA-256 in
// headers), then in a minimal one (the ID, the partition key and the
// dead-letter headers); if the broker refuses even that, the message is
// acknowledged, logged at ERROR level and reported to the subscription's
// Observer as discarded. A dead-letter send that fails for another reason,
// such as an unreachable broker, is retried with backoff while the
// subscription runs, and nothing is acknowledged meanwhile.
//
// # Ephemeral subscriptions and removable channels
//
// A subscription made with WithEphemeral is the only instance of its
// subscriber id and its position need not outlive it, as for a reply
// channel that only the waiting process reads. Adapters may then keep it
// cheaper (an in-memory consumer, a queue of its own, no consumer group);
// those without a cheaper way subscribe durably. A broker that can also
// remove a channel that has served its purpose implements ChannelRemover.
//
// # Writing an adapter
//
// Adapters implement Broker. What only adapter authors need lives in
// package broker/adapter, as database/sql/driver sits beside database/sql:
// the validation of a Send and of a Subscribe, the Processor that runs
// the handler of one message with retries, dead-lettering and panic
// recovery, so that every adapter treats failures the same way, and the
// registry of a Broker's subscriptions. The conformance suite in
// broker/brokertest checks an adapter's semantics.
package broker
