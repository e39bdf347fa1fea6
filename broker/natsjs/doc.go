// Package natsjs is Courier's broker on NATS JetStream, and its default
// durable broker: package embedded (broker/natsjs/embedded) runs a
// nats-server inside the process with JetStream file storage in a
// directory of the caller's choosing, so that a service gets durable
// channels without running anything else. This package does not compile
// the server: a program that reaches an external cluster with Open
// links only the client.
//
// # Channels, streams and shards
//
// Each channel is a JetStream stream of its own, named after the channel
// ("courier-<channel>-<hash>", with dots turned into underscores), with the
// subjects courier.<channel>.<shard>. A stream per channel rather than one
// stream for every channel keeps retention, replication and deletion per
// channel, spreads the load over stream leaders in a cluster, and keeps
// JetStream's duplicate detection (Nats-Msg-Id, set to the message ID) to
// one channel: the same message may legitimately go to two channels, as a
// dead letter keeps the ID of the message it copies.
//
// A message's shard is the FNV-1a hash of its PARTITION_ID header modulo
// the channel's number of shards (16 unless WithShards says otherwise);
// messages without a key go round robin. The number of shards is fixed
// when the channel's stream is created and recorded in the stream's
// metadata, which every Broker then follows, whatever its own options say.
// Stream settings (shards, replicas, retention) apply when a Broker creates
// a channel's stream; an existing stream is used as it is.
//
// # Subscriber ids and sharded ownership
//
// A subscriber id has one durable pull consumer per channel and shard,
// filtered on that shard's subject, with explicit acks and MaxAckPending 1.
// Every subscriber id therefore gets every message, and the consumer's
// position survives restarts and the closing of every instance
// (Resume). A new subscriber id starts with the messages sent after its
// first Subscribe returned (DeliverPolicy new), as in the in-memory broker.
//
// The instances of a subscriber id divide the shards among them through a
// membership table in a JetStream key-value bucket (courier-members):
// each instance keeps a key per channel alive with heartbeats, and every
// instance follows the keys of its channels with an ordered consumer on the
// bucket's stream, which resumes by itself after a reconnection or a server
// restart. Keys expire through the bucket's TTL, and the markers JetStream
// leaves for expired keys tell the watchers. Every instance computes the
// owner of each shard from the members alone, with the sticky assignment
// every adapter that assigns shards shares (balanced rendezvous hashing):
// each member owns shards/n shards or one more, and when an instance joins
// or leaves few shards change owner besides those that must (4 to 6 of 16
// when a fourth instance joins three, where the round robin of earlier
// versions moved 10). The membership value says which assignment an
// instance follows; while any member is of an earlier version, all deal
// the shards out round robin, as it does, so that a rolling upgrade never
// leaves a shard with no owner or two. An instance pulls only from the consumers of
// the shards it owns. When the membership changes, an instance that loses a
// shard stops pulling it, lets its in-flight message finish, unsubscribes,
// returns the messages it had received but not started (Nak) and only then
// acknowledges the finished one; the new owner starts pulling when it sees
// the change. An instance that closes does the same for all its shards and
// then deletes its membership keys; one that dies stops heartbeating and its
// keys expire after the membership TTL (WithMembershipTTL).
//
// The membership table decides who should pull; it is MaxAckPending 1 that
// makes the ownership safe. JetStream hands a shard's next message to
// anyone only after the previous one was acknowledged (or its ack wait
// passed), so even while two instances briefly disagree about the
// membership, the messages of a shard are handled one at a time and in
// order, and a message is never lost in a handover: what the old owner did
// not acknowledge is delivered again, first, to whoever pulls next. A
// handler that runs longer than the ack wait keeps its message with
// periodic in-progress acks; if its instance dies, the message is
// delivered again after the ack wait (WithAckWait, 5 seconds by default).
// The ack wait also bounds how long a shard stalls when a delivery or an
// acknowledgement is lost in flight, on a connection that dies or by a
// server that restarts; and pull requests last 5 seconds, so that one the
// network lost is noticed, by its missing heartbeats, within as long.
//
// # Concurrent delivery
//
// A subscription made with broker.WithConcurrentDelivery(n) has no shards
// and no membership: the subscriber id has one more durable pull consumer
// per channel (named after it, ending in "-all"), over every subject of
// the channel, with MaxAckPending 8192, which all its instances consume,
// and each instance runs n workers fed by its pulls (up to 2n messages,
// at least 16, per pull request). Messages go to the workers as they come;
// each is acknowledged when handled, with in-progress acks while its
// handler runs long, and an instance that closes gives back what it
// received but did not start, which JetStream delivers at once to the
// other instances. The consumer is created the first time the subscriber
// id subscribes in this mode: after the last message stored then, or, if
// the subscriber id has shard consumers on the channel, after the last
// message all of them acknowledged, so that switching from ordered to
// concurrent delivery loses nothing (some messages may be delivered
// twice). Switching back resumes the shard consumers where they stopped,
// which delivers again what was handled meanwhile; retire a mode's
// consumers with RemoveSubscriber once no instance uses it, or let them
// expire (WithConsumerExpiry). broker.WithEphemeral is ignored in this
// mode.
//
// Messages a pull received and no worker has taken yet wait in the
// client, where no in-progress ack covers them; with handlers that each
// take longer than about half the ack wait, some of them pass it and
// JetStream delivers them again, to this instance or another (at least
// once, so handled twice at worst). Give such subscriptions a longer ack
// wait (WithAckWait) or a smaller MaxInFlight.
//
// # Ephemeral subscriptions
//
// A subscription made with broker.WithEphemeral, such as a
// commands.Caller's reply channel, has none of the above: no durable
// consumers and no membership. It reads each channel through one ordered
// consumer (nats.go's OrderedConsumer) that JetStream keeps in memory,
// without acknowledgements, starting with the messages sent after
// Subscribe returns. Messages go through adapter.Processor one at a time in
// the order of the stream, so order per key holds and retries and
// dead-lettering work as usual. After a reconnection or a server restart
// the ordered consumer is created again from the message after the last
// one it delivered, so nothing stored in the stream is skipped. Close
// deletes the consumers. Every instance of an ephemeral subscriber id
// receives every message, so each one needs a subscriber id of its own.
//
// This matters for latency: a durable consumer that acknowledges
// something rewrites its state file up to 10 times a second, and on a
// busy server those writes stall deliveries; an ephemeral subscription
// writes nothing but the messages themselves.
//
// # Delivery and failures
//
// Each shard's messages go through adapter.Processor in order: retries with
// backoff, panic recovery and dead-lettering through the same Broker. A
// message is acknowledged once the Processor has handled or dead-lettered
// it, and returned to JetStream (Nak) when the subscription stopped first.
// The attempt numbers handed to handlers start from the message's JetStream
// delivery count, so they survive restarts and handovers; a message that
// was received but never started during a handover counts as a delivery.
//
// # Wire format
//
// A message travels as a NATS message with the Courier headers as NATS
// headers, plus ID (the Eventuate convention), DESTINATION (always the
// channel it was sent to), DATE (if absent) and Nats-Msg-Id. Headers that
// NATS cannot carry verbatim (names with spaces or separators, names
// starting with Nats-, values with line breaks or surrounding blanks) travel
// URL-escaped under the name prefix Courier-Hdr- and arrive as they were
// sent. Consumers get the ID in Message.ID and no ID or Nats-* headers.
//
// # Publishing with a plain NATS client
//
// A producer that does not use Courier publishes, preferably through
// JetStream (so that the server acknowledges the message), either to
// "courier.<channel>" (the bare subject: the stream stores the message on
// shard 0, and all such messages are delivered in the order they were
// published, though not in order with Courier's messages of the same
// partition key), or, for per-key order with Courier's producers, to
// "courier.<channel>.<shard>" with the shard computed as above from the
// PARTITION_ID header it sets, and the shard count from the stream's
// "courier.shards" metadata. Headers are read as they are (ID, if set, is
// the message ID). A message without an ID header gets its Nats-Msg-Id
// header, or else "<stream>-<stream sequence>": the same on every delivery
// and for every subscriber id, so that the inbox recognises a redelivery.
// Streams created before the bare subject existed are given it (with the
// transform to shard 0) the first time a Broker uses them.
//
// A nats-server's max_payload (1 MiB by default) bounds a message with its
// headers, so a server that must carry payloads of message.DefaultMaxPayloadBytes
// needs a larger one; the embedded server allows 8 MiB.
package natsjs
