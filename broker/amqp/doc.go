// Package amqp is Courier's RabbitMQ broker: a broker.Broker on the AMQP
// 0-9-1 client github.com/rabbitmq/amqp091-go. It needs RabbitMQ 3.10 or
// later and no plugin.
//
// # Topology
//
// Every name below is declared by whoever needs it first, idempotently, and
// again after a reconnection:
//
//   - Each channel is a durable topic exchange named after the channel.
//     Send publishes to it with a routing key made of the top ten bits of a
//     hash of the message's partition key (PARTITION_ID), one word per bit:
//     "0.1.1.0.1.0.0.1.1.0". A message without a key gets random bits.
//   - Each subscriber id of a channel has N durable shard queues,
//     "<channel>:<subscriber id>:000" and on (N from WithShards, a power of
//     two, 8 by default), and binds shard i to the channel's exchange with
//     the log2(N) bits of i as a prefix: with 8 shards, shard 5 binds
//     "1.0.1.#". The prefixes split the routing keys into N equal parts, so
//     every subscriber id gets every message, in exactly one of its shard
//     queues, and all the messages of a key land in the same one. (Names
//     longer than RabbitMQ's 255 bytes are shortened with a hash.)
//   - Shard queues are declared with x-single-active-consumer. Every
//     instance (Subscription) of a subscriber id consumes every shard queue
//     of it, each on its own AMQP channel with a prefetch of 16
//     (WithPrefetch), and RabbitMQ delivers each queue to one instance at a
//     time: the shard's owner. The owner handles the shard's messages one at
//     a time, in order, through adapter.Processor (which retries a failed
//     handler in process rather than requeueing its message), and
//     acknowledges each after its handler succeeded or it was dead-lettered.
//     The prefetch only saves round trips: the messages behind the one being
//     handled wait in the client, and go back to the head of the queue, in
//     order, if the shard changes owner. Acknowledgements are batched: while
//     further deliveries are already waiting, handled messages are
//     acknowledged together (one basic.ack with multiple set) after at most
//     half the prefetch, and always before the consumer waits, hands its
//     shard over or closes. An instance that dies may thus leave up to that
//     many handled messages unacknowledged, which RabbitMQ delivers again,
//     as at-least-once delivery allows (the inbox absorbs them).
//
// The hashing is done by producers, so that a key's shard is fixed for
// good; RabbitMQ's consistent-hash exchange would spare producers even the
// hash, but it rebuilds its table in a different order when the node
// restarts and then sends keys to other queues than before, behind the
// messages still queued for them. The bit prefixes keep what that exchange
// offered: producers know nothing of consumers, and each subscriber id
// picks its own number of shards.
//
// # Dead letters
//
// RabbitMQ drops a message that no queue is bound for, and a dead-letter
// channel often has no subscriber id reading it. So dead letters (those of
// subscriptions, and the rows the outbox relay dead-letters, through
// Broker.DeadLetterProducer) are kept in a queue of their own,
// "<channel>:kept": durable, of the configured type, bound to every
// routing key, never expiring and read by no Courier subscription, where
// operators find them with any AMQP tool. It is declared before the first
// dead letter on each connection, and dead letters are published with the
// mandatory flag: one that no queue takes (the kept queue was deleted)
// fails with ErrUnroutable and is sent again once the queue is declared
// again, rather than vanishing. A Courier subscription to a dead-letter
// channel receives the dead letters sent after it subscribed, as for any
// channel. RemoveChannel deletes the kept queue with the exchange.
//
// # Moving shards between instances
//
// A shard changes owner only when the owning instance closes the AMQP
// channel on which it consumes the shard queue, which it does between two
// messages. RabbitMQ then, in one step, puts the messages that were
// delivered to it but not yet handled back at the head of the queue and
// makes the next waiting consumer active, so the next owner resumes exactly
// where the previous one stopped: per-key order holds and no handled message
// is delivered again. Instances never cancel a consumer with basic.cancel
// instead: RabbitMQ would activate the next consumer at once, while the
// messages delivered to the cancelled one are still unacknowledged, and
// those would be redelivered after messages that follow them.
//
// Single-active-consumer queues do not spread the shards by themselves: the
// first instance owns them all until it leaves. So that instances share the
// load, each instance consumes a presence queue per channel,
// "<channel>:<subscriber id>:members", which never holds a message but
// whose consumer count is the number of running instances; periodically
// (WithRebalanceInterval) each instance reads that count and hands over the
// shards it owns beyond its fair share by closing their channels and
// consuming them again, which puts it at the back of the line.
// An instance knows that it owns a shard once it received a delivery from it,
// so idle shards move only when they carry traffic again. Correctness never
// depends on this balancing: exclusivity and order come from RabbitMQ.
//
// # Queues
//
// Shard queues are quorum queues by default (WithQueueType): replicated,
// fsync'd before a publish is confirmed, and the queue type RabbitMQ
// recommends for data that must not be lost. Classic queues are faster on a
// single node and can be chosen instead. The queue type and the other
// queue arguments must be the same for every instance of a subscriber id,
// as RabbitMQ refuses to redeclare a queue with other arguments.
//
// Queues are durable and outlive their subscribers: a subscriber id that
// closes its last instance and subscribes again later receives the
// messages sent in between. WithQueueExpiry lets RabbitMQ delete the queues
// of a subscriber id that has been gone for a while. Messages sent to a
// channel that no subscriber id consumes are dropped, as nothing would ever
// read them.
//
// A subscription made with broker.WithEphemeral, such as a
// commands.Caller's reply channel, gets one classic queue per channel of
// its own, "<channel>:<subscriber id>:ephemeral-<instance>:000", bound with
// "#", with no presence queue and no balancing. It is consumed and
// acknowledged like a shard queue, so order per key, retries and
// dead-lettering hold, and it survives reconnections. Close deletes it;
// the queue of an instance that died without closing expires after five
// minutes unconsumed. Without the option a Caller would leave its shard
// queues (quorum queues by default) behind for good.
//
// A subscription made with broker.WithConcurrentDelivery(n) has no shard
// queues either: the subscriber id has one queue per channel,
// "<channel>:<subscriber id>:all", of the configured type, without single
// active consumer, bound with "0.#" and "1.#" (every routing key Send
// makes) and to the channel's alternate exchange (every other key), so it
// gets what the shard queues of an ordered subscriber id would. Every
// instance consumes it with a prefetch of n and n workers, as competing
// consumers of a work queue, acknowledging each message when it is
// handled; what an instance received but did not acknowledge goes back to
// the queue when its AMQP channel closes. There is no presence queue and
// no balancing. A subscriber id's ordered and concurrent queues are
// separate: one that switches mode starts its new queue empty when first
// subscribed in that mode, while the old queues keep what arrives until
// they are removed (RemoveSubscriber) or expire (WithQueueExpiry); start
// the new instances before stopping the old ones so that nothing waits in
// the old queues (messages in between are handled by both).
//
// Changing the number of shards of an existing subscriber id moves keys
// between shard queues and can reorder the messages already queued for
// them; the queues and bindings of the old number stay and must be deleted
// by hand. Choose the number of shards once per subscriber id.
//
// # Sending
//
// Send publishes persistent messages with publisher confirms and returns
// once RabbitMQ confirmed every one of them. Each message carries its
// headers as AMQP headers, its ID both as the "ID" header (Eventuate's wire
// convention) and as the AMQP message-id, DESTINATION set to the channel
// (a dead letter's copy of its original DESTINATION is replaced) and DATE
// unless the message has one. Consumers get the ID back in Message.ID,
// without the "ID" header. Messages of one Send are published in order on
// one AMQP channel. Concurrent Sends share a few confirm-mode AMQP channels
// (WithPublishChannels): a Send waits for its own confirmations while
// others publish on the same channel. If RabbitMQ closes a channel, for
// instance for a message to an exchange deleted behind the Broker's back,
// the Sends on it declare their exchanges again and publish their
// unconfirmed messages on a fresh channel. The headers must fit in one AMQP frame (128 KiB by
// default), which the default message.Limits guarantee for all but
// pathological numbers of tiny headers; Send refuses the rest with
// message.ErrHeadersTooLarge.
//
// # Eventuate Tram's format
//
// The headers follow Eventuate Tram's names, but the topology and the
// message are Courier's: Eventuate declares a fanout exchange per channel
// and a consistent-hash exchange with partition queues per subscriber id,
// and sends a JSON envelope as the body, so a Broker in Courier's format
// and Eventuate's services cannot share a channel (whichever declares the
// channel's exchange second is refused with PRECONDITION_FAILED). A Broker
// opened WithEventuateFormat (amqp://...?format=eventuate with package
// brokerurl) declares and speaks Eventuate's instead; see its
// documentation for what it does and does not do.
//
// # Publishing with a plain AMQP client
//
// A producer that does not use Courier publishes to the channel's exchange
// (named as the channel), persistent and preferably with publisher
// confirms. With the routing key RoutingKey gives its partition key (the
// PARTITION_ID header it sets), a message joins its key's shard queue,
// behind the key's earlier messages, as Send's would. With any other
// routing key, RabbitMQ passes it to the exchange's alternate exchange,
// "<channel>:other", a fanout exchange bound to shard 0 of every
// subscriber id: such messages reach every subscriber id, in the order
// they were published, though not in order with Courier's messages of the
// same key. Headers are read as they are. The message-id property (or an
// ID header) is the message ID; a message with neither gets an ID hashed
// from its exchange, routing key, timestamp, headers and body, the same on
// every delivery, so that the inbox recognises a redelivery (two messages
// identical in all of these get the same ID: set message-id).
//
// A channel's exchange declared by an earlier version of Courier has no
// alternate exchange, and RabbitMQ cannot add one to an existing exchange:
// Courier uses it as it is and logs a warning; messages with other routing
// keys are dropped on it until it is deleted (RemoveChannel) and declared
// again.
//
// # Connections and failures
//
// A Broker holds two connections, one for publishing and one for
// consuming, so that flow control applied to publishers never delays
// acknowledgements. When a connection is lost (a restart of the server, a
// network failure) it is re-established with backoff; meanwhile Send waits
// for it, as long as its context allows, and republishes the messages that
// were not confirmed (which may deliver them twice, as at-least-once
// delivery permits), and subscriptions declare their topology again and
// resume consuming. A message whose Send returned nil was stored by
// RabbitMQ and is delivered after the reconnection; a message whose
// handling was not acknowledged before the connection was lost is
// delivered again.
//
// RabbitMQ refuses exchange names that start with "amq.", so channels with
// such names cannot be used.
package amqp
