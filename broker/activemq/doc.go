// Package activemq is Courier's Apache ActiveMQ broker: a broker.Broker on
// ActiveMQ 5 (5.17, Debian's activemq package, is what the tests run),
// spoken to over STOMP 1.2.
//
// # Why STOMP
//
// ActiveMQ speaks OpenWire, AMQP 1.0, STOMP and MQTT, each through a
// transport module. Debian's package ships OpenWire, STOMP and MQTT but
// not AMQP 1.0 (its module needs Qpid Proton-J, which Debian does not
// package), OpenWire has no Go client, and MQTT has no queues. STOMP has
// what Courier needs: persistent sends confirmed by receipts, queues and
// topics with ActiveMQ's virtual topics, message groups, individual
// acknowledgements and a prefetch limit. No STOMP client module could be
// used, so the package has a small one of its own (internal/stomp, its
// frame decoder fuzzed).
//
// # Topology
//
//   - Each channel is the virtual topic "VirtualTopic.<channel>". Send
//     publishes persistent messages to it, and returns once ActiveMQ
//     confirmed each (a STOMP receipt, sent after the message is stored).
//   - Each subscriber id of a channel has a queue,
//     "Consumer.<subscriber id>.VirtualTopic.<channel>" (dots in the
//     subscriber id written '~'), into which ActiveMQ copies every message
//     of the topic. It is made by the first Subscribe and outlives the
//     subscriber id's instances: one that closes its last instance and
//     subscribes again receives the messages sent in between. Messages
//     sent to a channel before any subscriber id's queue exists are
//     dropped, as nothing would read them.
//   - A partition key maps to one of N message groups (JMSXGroupID
//     "courier-<n>", N from WithShards, 32 by default), and ActiveMQ
//     delivers each group of a queue to one consumer at a time, in order;
//     when that consumer leaves, the messages it had not acknowledged go
//     back to the queue in order and the group moves with its next message
//     to another consumer. An instance handles each group's messages one
//     at a time through adapter.Processor (retries with backoff, then the
//     dead-letter channel), and acknowledges each one after it.
//
// # Balancing
//
// ActiveMQ never moves a group while its owner lives, so an instance that
// joins would get only the groups nobody owned. The instances of a
// subscriber id announce themselves every rebalance interval on the
// non-persistent topic "courier.presence.<queue>", with the number of
// groups each owns; an instance that owns more than its share (by more
// than one) while another owns less hands its groups over: it stops
// taking messages, lets its handlers in flight finish, disconnects and
// connects again, and ActiveMQ gives the groups to the consumers their
// next messages find. Order and exclusivity never depend on this.
//
// # Concurrent delivery
//
// A subscription with broker.WithConcurrentDelivery(n) consumes the same
// queue with a prefetch of n and n workers, acknowledging each message
// when it is handled, in no order; it takes no part in balancing.
//
// # Dead letters
//
// A dead letter is a message to the dead-letter channel's virtual topic.
// Since a topic copies messages only into queues that exist, the dead
// letter producer (Broker.DeadLetterProducer, used by subscriptions and by
// the outbox relay) first makes the queue of the subscriber id
// KeptSubscriberID on the dead-letter channel, where dead letters stay
// until an operator reads them. Courier retries a failed handler in the
// process and dead-letters on its own; ActiveMQ's redelivery policy and
// its ActiveMQ.DLQ see only what STOMP clients reject, which Courier never
// does.
//
// # Ephemeral subscriptions
//
// A subscription made with broker.WithEphemeral reads the channel's
// virtual topic itself, as a plain topic subscriber: it receives what is
// sent while it is subscribed, with retries and dead-lettering, and
// leaves no queue behind.
//
// # Connections and failures
//
// Send uses one connection of the Broker; each subscription instance has
// a connection of its own, so that its disconnecting returns exactly its
// unacknowledged messages. STOMP heart-beats (WithHeartBeat) find a dead
// server. A lost connection is made again with backoff: Send waits for
// it, as long as its context allows, and sends again the messages not yet
// confirmed (which may deliver them twice, as at-least-once delivery
// allows); a subscription lets its handlers in flight finish and
// subscribes again, and ActiveMQ delivers again what was not
// acknowledged.
//
// # Limits and what is not supported
//
// ActiveMQ refuses a STOMP header line over 10 KiB; Send refuses such a
// header with message.ErrHeadersTooLarge. Header names that STOMP or
// ActiveMQ use themselves (destination, type, expires, names starting
// with JMS or activemq, ...) are sent with the prefix "courier-h-" and
// come back under their own names. The Broker implements neither
// broker.ChannelRemover nor broker.SubscriberRemover: STOMP cannot delete
// destinations (ActiveMQ's gcInactiveDestinations policy can delete empty,
// unconsumed queues).
package activemq
