// Package direct is Courier's brokerless broker: a broker.Broker whose
// senders deliver each message straight to a live instance of every
// subscriber id of the channel, found through a discovery.Registry, with
// no server in between.
//
// # How it works
//
//   - Subscribe starts the broker's receiver (a gRPC server, on
//     WithListenAddress) if it has none, and registers the instance under
//     the discovery service "courier-direct.<channel>" for each of its
//     channels, with the subscriber id, the delivery mode and the shard
//     count as metadata, under a lease kept alive by heartbeats.
//   - Send resolves the channel's instances (one registry watch per
//     channel, through discovery.Resolver), groups them by subscriber id
//     and sends each message to one instance of each subscriber id, over
//     one gRPC stream per receiver address carrying frames of its own
//     binary format. It returns once every chosen instance answered that
//     it queued the message: a nil error means that live receivers hold
//     every message.
//   - Ordered delivery (the default): a partition key maps to one of the
//     subscriber id's shards (WithShards, 64), and each shard to one
//     instance by the sticky assignment of package internal/sharding over
//     the live instances, so a key's messages go to one instance, which
//     handles each shard's queue in order. When a shard's instance changes
//     (one joined or left), the sender first asks the old instance to
//     finish what it holds of the shard, so that order per key holds while
//     instances join and leave, for the messages of one sender.
//   - Concurrent delivery (broker.WithConcurrentDelivery(n)): any
//     instance, in turn, and n workers per instance.
//   - Retries with backoff and dead-lettering run in the receiver, through
//     adapter.Processor, as in every adapter. A dead letter is sent
//     through the broker to the dead-letter channel's subscribers.
//
// # What it does not promise
//
// There is no broker to keep messages, so:
//
//   - A receiver that crashes loses the messages it had queued and not
//     handled: Send had returned, and nothing delivers them again. A
//     process that stops cleanly (Subscription.Close, Broker.Close)
//     first deregisters, then handles everything it had queued.
//   - A subscriber id receives only what is sent while one of its
//     instances is registered and seen by the sender: there is no
//     position to resume from (brokertest.Features.Resume is false), and
//     a Send to a channel that no instance is registered for delivers
//     the message to nobody and returns nil, unless the broker has
//     WithRequireSubscribers, where it fails with ErrNoSubscribers.
//   - A subscriber id whose instances are registered but none takes the
//     message (they crashed and their leases have not expired, or they
//     are unreachable) makes Send wait, within its context, and fail
//     with an error wrapping ErrNoLiveInstance: the message is never
//     dropped silently.
//   - A dead letter for a channel that nobody subscribes to is logged at
//     ERROR and counted as discarded (see Broker.DeadLetterProducer):
//     subscribe a reader to each dead-letter channel that matters.
//   - A new subscription is seen by other processes when their registry
//     watch reports it; Subscribe waits only for its own broker's view.
//   - broker.WithEphemeral changes nothing: every subscription is
//     already as ephemeral as the hint allows.
//
// # Transport
//
// gRPC streams over HTTP/2, which Courier already depends on, rather than
// ZeroMQ (the pure-Go go-zeromq/zmq4): measured side by side on one
// machine, a gRPC stream carrying raw frames had the lower round-trip
// latency and about twice the pipelined throughput, and it brings TLS
// (WithTLS), flow control and keepalives with it. BENCHMARKS.md has the
// numbers.
//
// A Broker is safe for concurrent use.
package direct
