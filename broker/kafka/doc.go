// Package kafka is Courier's broker on Apache Kafka, built on franz-go. It
// works with any cluster that speaks the Kafka protocol (Kafka 2.4 or later,
// Redpanda, and the in-process kfake cluster the tests use).
//
// # Channels, topics and partitions
//
// Each channel is a topic of the same name; message.ValidateChannel already
// keeps channel names within Kafka's rules for topic names (at most 249
// characters from [A-Za-z0-9._-]). A Broker creates a channel's topic the
// first time it sends to it or subscribes to it, with the partition count,
// replication factor and topic configuration of its options, through the
// admin API; a topic that exists is used as it is. WithoutTopicCreation
// leaves topic creation to the cluster's administrators. A Broker does not
// notice a topic deleted while it runs: sends to it fail until the process
// opens a new Broker, which creates the topic again. Kafka refuses topic
// names that differ only in '.' and '_' ("order.events", "order_events"),
// and names starting with "__" are refused as Kafka's own.
//
// A message's partition key (its PARTITION_ID header) is the record key, so
// Kafka's default partitioner (murmur2 of the key, the same as the Java
// client's) picks its partition and a Java service reading the topic sees
// the same key. Messages without a key are spread over the partitions and
// have no order.
//
// # Sending
//
// Send waits until every in-sync replica has the records (acks=all) and uses
// the idempotent producer, so the client's retries neither duplicate nor
// reorder records of a partition. The messages of one Send are produced in
// order.
//
// # Subscriber ids, consumer groups and ordering
//
// A subscriber id is a consumer group, and each Subscribe adds one member to
// it, balanced with the cooperative-sticky assignor: a rebalance moves only
// the partitions that must move, and the other partitions keep being
// handled meanwhile. A group with no committed offsets starts at the oldest
// retained record of each partition (Kafka's auto.offset.reset=earliest, as
// Eventuate's consumers do), so a subscriber id that subscribes for the first
// time also gets what was sent before.
//
// Each member polls its client in one goroutine and hands the records of
// each assigned partition to a worker of that partition, which runs them
// through adapter.Processor one at a time, in offset order: partitions are
// handled concurrently, the records of one partition (and so of one key)
// in order. The Processor retries a failing handler with backoff and then
// sends the message to the dead-letter channel through the same Broker,
// after which the worker moves on. A worker whose fetched records pile up
// pauses fetching of its partition until it catches up.
//
// A subscription made with broker.WithConcurrentDelivery(n) uses the same
// consumer group, partitions and offsets, so a subscriber id can switch
// modes without losing or skipping anything. Its workers hand each batch of
// their partition's records to the Processor at once, each as soon as one
// of the member's n slots (shared by all its partitions) is free, and once
// they all returned mark the longest run of handled records from the start
// of the batch: the committed offset is still the end of a contiguous run
// of handled records, and a revocation in the middle of a batch leaves the
// rest to the next owner, which may handle some of them again.
//
// A subscription made with broker.WithEphemeral, such as a
// commands.Caller's reply channel, joins no consumer group: it reads every
// partition its topics have when it subscribes, from their end offsets at
// that moment, through the same per-partition workers, and commits
// nothing. It thus skips the group's join (which a real cluster delays by
// group.initial.rebalance.delay.ms, 3 s by default) and leaves no group
// behind. Partitions added to a topic later are not read.
//
// # Offsets and rebalances
//
// Offsets are committed only for handled (or dead-lettered) records: a
// worker marks the records the Processor is done with (after each batch it
// takes from its queue, at least every 100ms, and when it stops), and since
// a partition's records are handled in order, the marked offset is always
// the end of a contiguous run of handled records. Marked offsets are
// committed every second (WithCommitInterval) and whenever partitions leave
// the member.
//
// Rebalances wait while the poller hands records out (franz-go's
// BlockRebalanceOnPoll), so no record reaches a worker after its partition
// was revoked. When the group revokes partitions from a member, the member
// stops their workers between messages, waits for the in-flight ones to
// finish, commits every handled offset, and only then lets the rebalance go
// on: the next owner starts right after the last handled record, with no
// message handled twice. A message whose handler was still being retried
// is left uncommitted and goes, with everything after it, to the next owner.
// Subscription.Close does the same for all the member's partitions and then
// leaves the group, so that the others take them over at once.
//
// Messages can be handled twice after a member loses its partitions without
// revoking them: when it missed its session timeout (a long pause, a network
// partition) the coordinator has already given them to another member, so
// nothing can be committed, and the records handled since the last commit
// are delivered again. A Close whose context ends before the final commit
// has the same effect. Delivery is at least once; the inbox absorbs the
// duplicates by message ID.
//
// # Wire format
//
// A record carries the message's payload as its value, the partition key as
// its key and the headers as record headers, plus ID, DESTINATION (the
// channel) and DATE (if absent), under Eventuate Tram's header names.
// Consumers get the ID in Message.ID, not as a header. A record from
// another producer without an ID header gets the ID
// "<topic>-<partition>-<offset>", the same on every delivery.
//
// That is Courier's format, not Eventuate's: Eventuate's CDC writes the
// value as a JSON envelope {"payload":"...","headers":{...}} with no
// record headers. A Broker opened WithEventuateFormat (kafka://...?format=eventuate
// with package brokerurl) reads and writes Eventuate's records instead, so
// that Go services on Courier and Java services on Eventuate share topics.
//
// # Settings for a real cluster
//
//   - Replication: create topics with replication factor 3
//     (WithReplicationFactor) and min.insync.replicas 2
//     (WithTopicConfig("min.insync.replicas", "2"), or the broker default):
//     with acks=all a send then succeeds only once two brokers have it, and
//     losing one broker loses nothing. Replication factor 1 loses what a
//     dead broker's disk held.
//   - Partitions: the partition count is fixed per channel when its topic is
//     created (WithPartitions, 16 by default). It bounds the concurrency of a
//     subscriber id on that channel: more instances than partitions sit
//     idle. Do not add partitions to a topic later: the partition of a key is
//     its hash modulo the count, so keys move to other partitions, where
//     their new messages can be handled before the old ones still waiting in
//     the old partition, and per-key order breaks. Create a new channel
//     instead, and move consumers over once the old one is drained.
//   - Session timeout and heartbeats: WithSessionTimeout (45s) is how long a
//     dead instance keeps its partitions; WithHeartbeatInterval (3s) is how
//     soon the others notice a rebalance. The session timeout must be within
//     the broker's group.min.session.timeout.ms and
//     group.max.session.timeout.ms. A handler that runs longer than the
//     rebalance timeout (60s) delays the rebalances of its group.
//   - Message size: the Broker refuses messages over its limits
//     (WithLimits; 1 MiB of payload by default) and creates topics with a
//     max.message.bytes large enough for them. Topics created otherwise need
//     the same (Kafka's default is about 1 MB, which does not hold a 1 MiB
//     payload with its headers), and consumers of other clients need
//     max.partition.fetch.bytes at least as large.
//   - Retention: a group that falls behind a topic's retention.ms loses what
//     was deleted; set it with WithTopicConfig("retention.ms", ...).
//   - Security: pass SASL and TLS settings with WithClientOptions
//     (kgo.SASL, kgo.DialTLSConfig).
package kafka
