package amqp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/eventuate"
	"github.com/courier-go/courier/message"
)

// DefaultEventuatePartitions is the number of queues of a subscriber id on
// a channel in Eventuate's format: Eventuate's default
// eventuate.rabbitmq.partition.count.
const DefaultEventuatePartitions = 2

// eventuateWeight is the binding key of a partition queue to its
// subscriber id's consistent-hash exchange: its weight in the hash ring,
// "10" as Eventuate binds it.
const eventuateWeight = "10"

// eventuateTakeover is how often an instance tries to consume a
// partition queue that another consumer holds exclusively: the longest a
// partition waits for a new owner once its owner is gone.
const eventuateTakeover = time.Second

// eventuateHandover waits, in Eventuate's format, after a shard consumer
// handed its partition over: long enough for another instance, which
// tries every eventuateTakeover, to take it before this one tries again
// (an exclusive consumer has no line to join at the back of). It reports
// false if the subscription stops meanwhile.
func (b *Broker) eventuateHandover(s *subscription) bool {
	if !b.cfg.eventuate {
		return true
	}
	return s.sleep(2 * eventuateTakeover)
}

// WithEventuateFormat makes the Broker speak Eventuate Tram's RabbitMQ
// format and declare Eventuate's topology, so that Go services on Courier
// and Java services on Eventuate share channels:
//
//   - A channel is a fanout exchange of its name (not durable, as
//     Eventuate declares it); Send publishes to it the JSON envelope
//     {"payload":"...","headers":{...}} as the body, with the PARTITION_ID
//     header or, without one, the message ID as the routing key and as the
//     "key" header, as Eventuate's CDC does. Payloads must be UTF-8 text.
//   - A subscriber id has, per channel, a consistent-hash exchange
//     "<channel>-<subscriber id>" bound to the channel's exchange, and
//     WithEventuatePartitions durable queues "<channel>-<subscriber id>-<n>"
//     bound to it with the weight "10", as Eventuate's consumers declare
//     them (the rabbitmq_consistent_hash_exchange plugin must be enabled).
//     Each queue is one partition, consumed in order by one instance at a
//     time: Courier consumes it exclusively, and another instance takes it
//     over within a second of its owner closing or dying. Instances share
//     the partitions: one that owns more than its share (counted as in
//     Courier's format) hands the surplus over. Eventuate's instances
//     coordinate through ZooKeeper instead, so one subscriber id must not
//     have instances of both.
//   - Deliveries are read as Eventuate's consumer reads them. One that
//     carries an ID header is read in Courier's own format (a dead letter);
//     one that is neither is dead-lettered at once, untouched, and the
//     handler never sees it. Dead letters keep Courier's format and
//     topology (a topic exchange and the kept queue).
//
// An ephemeral subscription (such as a commands.Caller's) gets a queue of
// its instance's own bound to the channel's exchange. Concurrent delivery,
// which Eventuate's partitions have no place for, is refused in this
// format.
func WithEventuateFormat() Option {
	return func(c *config) error {
		c.eventuate = true
		if c.eventuatePartitions == 0 {
			c.eventuatePartitions = DefaultEventuatePartitions
		}
		return nil
	}
}

// WithEventuatePartitions sets the number of partition queues of a
// subscriber id on a channel in Eventuate's format (default 2, Eventuate's
// eventuate.rabbitmq.partition.count): the same number as the Java
// services of the subscriber id declare, from 1 to 1024.
func WithEventuatePartitions(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1024 {
			return fmt.Errorf("eventuate partitions must be between 1 and 1024, got %d", n)
		}
		c.eventuatePartitions = n
		return nil
	}
}

// eventuateHashExchange names a subscriber id's consistent-hash exchange
// on a channel, and eventuateQueue its partition queues, as Eventuate's
// Subscription names them ("%s-%s" and "%s-%s-%s").
func eventuateHashExchange(channel, subscriberID string) string {
	return channel + "-" + subscriberID
}

func eventuateQueue(channel, subscriberID string, i int) string {
	return eventuateHashExchange(channel, subscriberID) + "-" + strconv.Itoa(i)
}

// checkEventuate refuses, in Eventuate's format, the subscriptions its
// topology cannot serve.
func (b *Broker) checkEventuate(cfg broker.SubscribeConfig) error {
	if !b.cfg.eventuate {
		return nil
	}
	if cfg.Delivery == broker.DeliveryConcurrent {
		return fmt.Errorf("%w: subscriber %q: concurrent delivery is not available in Eventuate's format, whose partitions are each consumed in order", broker.ErrInvalidSubscription, cfg.SubscriberID)
	}
	for _, ch := range cfg.Channels {
		q := eventuateQueue(ch, cfg.SubscriberID, b.cfg.eventuatePartitions-1)
		if cfg.Ephemeral {
			q = eventuateEphemeralQueue(ch, cfg.SubscriberID, "00000000")
		}
		if len(q) > maxName {
			return fmt.Errorf("%w: subscriber %q on %q: the queue name %q is over RabbitMQ's %d bytes", broker.ErrInvalidSubscription, cfg.SubscriberID, ch, q, maxName)
		}
	}
	return nil
}

// eventuateEphemeralQueue names the one queue of an ephemeral
// subscription, instance, in Eventuate's format.
func eventuateEphemeralQueue(channel, subscriberID, instance string) string {
	return eventuateHashExchange(channel, subscriberID) + "-ephemeral-" + instance
}

// eventuateShards names the shard queues of s as Eventuate's partition
// queues, or the queue of an ephemeral subscription after its instance.
func (s *subscription) eventuateShards() {
	for _, g := range s.groups {
		for _, sh := range g.shards {
			sh.queue = eventuateQueue(g.channel, s.cfg.SubscriberID, sh.index)
			if g.ephemeral {
				sh.queue = eventuateEphemeralQueue(g.channel, s.cfg.SubscriberID, s.id)
			}
		}
	}
}

// declareEventuateChannel declares a channel's exchange as Eventuate's
// producer does: channel.exchangeDeclare(topic, "fanout").
func declareEventuateChannel(ch *amqp091.Channel, channel string) error {
	if err := ch.ExchangeDeclare(channel, amqp091.ExchangeFanout, false, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %q (fanout, as Eventuate declares it): %w", channel, err)
	}
	return nil
}

// declareEventuateGroup declares what Eventuate's Subscription declares for
// the given partitions of a subscriber id on a channel, in its order: the
// consistent-hash exchange, each queue (durable, without arguments) bound
// to it with the weight "10", the channel's fanout exchange and the
// binding of the consistent-hash exchange to it. An ephemeral
// subscription, which Eventuate does not have, gets a queue of its own,
// which expires as Courier's ephemeral queues do, bound to the channel's
// fanout exchange.
func (c *config) declareEventuateGroup(conn *amqp091.Connection, ch *amqp091.Channel, g *group, shards []*shard) error {
	if len(shards) == 0 {
		return nil
	}
	if g.ephemeral {
		if err := withChannel(conn, func(x *amqp091.Channel) error { return declareEventuateChannel(x, g.channel) }); err != nil {
			return err
		}
		q := shards[0].queue
		if _, err := ch.QueueDeclare(q, true, false, false, false, c.queueArgs(g)); err != nil {
			return fmt.Errorf("declare queue %q: %w", q, err)
		}
		if err := ch.QueueBind(q, "", g.channel, false, nil); err != nil {
			return fmt.Errorf("bind queue %q to %q: %w", q, g.channel, err)
		}
		return nil
	}
	hash := strings.TrimSuffix(shards[0].queue, "-"+strconv.Itoa(shards[0].index))
	if err := ch.ExchangeDeclare(hash, "x-consistent-hash", false, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %q (x-consistent-hash: is the rabbitmq_consistent_hash_exchange plugin enabled?): %w", hash, err)
	}
	for _, sh := range shards {
		if _, err := ch.QueueDeclare(sh.queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare queue %q: %w", sh.queue, err)
		}
		if err := ch.QueueBind(sh.queue, eventuateWeight, hash, false, nil); err != nil {
			return fmt.Errorf("bind queue %q to %q: %w", sh.queue, hash, err)
		}
	}
	if err := withChannel(conn, func(c *amqp091.Channel) error { return declareEventuateChannel(c, g.channel) }); err != nil {
		return err
	}
	if err := ch.ExchangeBind(hash, "", g.channel, false, nil); err != nil {
		return fmt.Errorf("bind exchange %q to %q: %w", hash, g.channel, err)
	}
	return nil
}

// encodeEventuate turns m, sent to channel, into the publishing of
// Eventuate's CDC (EventuateRabbitMQProducer.send): the envelope as the
// body, the key as the routing key and the "key" header. It is persistent,
// which Eventuate's is not, so that RabbitMQ keeps it across a restart.
func encodeEventuate(channel string, m *message.Message, date string) (outgoing, error) {
	body, key, err := eventuate.Message(channel, date, m)
	if err != nil {
		return outgoing{}, broker.Permanent(err)
	}
	if len(key) > maxShortString {
		return outgoing{}, fmt.Errorf("%w: message %s has a partition key of %d bytes; an AMQP routing key takes %d", message.ErrInvalidHeader, m.ID, len(key), maxShortString)
	}
	return outgoing{id: m.ID, key: key, pub: amqp091.Publishing{
		Headers:      amqp091.Table{"key": key},
		DeliveryMode: amqp091.Persistent,
		Body:         body,
	}}, nil
}

// decodeDelivery decodes d as the Broker's format says. A delivery that is
// not an Eventuate envelope comes back as Courier's decoding makes it,
// with a context that makes the subscription's handler refuse it.
func (b *Broker) decodeDelivery(ctx context.Context, d *amqp091.Delivery) (context.Context, *message.Message) {
	if _, courier := d.Headers[message.HeaderID]; !b.cfg.eventuate || courier {
		return ctx, decode(d)
	}
	payload, headers, err := eventuate.ParseEnvelope(d.Body)
	if err != nil {
		return eventuate.WithMalformed(ctx, err), decode(d)
	}
	m := &message.Message{ID: headers[message.HeaderID], Headers: headers, Payload: []byte(payload)}
	delete(headers, message.HeaderID)
	if m.ID == "" {
		m.ID = contentID(d)
	}
	if _, ok := headers[message.HeaderDestination]; !ok {
		headers[message.HeaderDestination] = d.Exchange
	}
	if _, ok := headers[message.HeaderPartitionID]; !ok && d.RoutingKey != "" {
		headers[message.HeaderPartitionID] = strings.ToValidUTF8(d.RoutingKey, "\uFFFD")
	}
	return ctx, m
}

// newProcessor returns the Processor of a subscription with cfg: in
// Eventuate's format, its handler refuses deliveries that are not
// envelopes.
func (b *Broker) newProcessor(cfg broker.SubscribeConfig) *adapter.Processor {
	if b.cfg.eventuate {
		cfg.Handler = eventuate.Handler(cfg.Handler)
	}
	return adapter.NewProcessor(cfg, b.DeadLetterProducer())
}

// ownedElsewhere reports whether err is RabbitMQ's refusal of an exclusive
// consumer on a queue that another consumer holds: in Eventuate's format,
// another instance owns the partition.
func (b *Broker) ownedElsewhere(err error) bool {
	var amqpErr *amqp091.Error
	return b.cfg.eventuate && errors.As(err, &amqpErr) && amqpErr.Code == amqp091.AccessRefused
}

// removeEventuateSubscriber deletes a subscriber id's partition queues
// and consistent-hash exchange on channel.
func (b *Broker) removeEventuateSubscriber(ch *amqp091.Channel, subscriberID, channel string) error {
	for i := range b.cfg.eventuatePartitions {
		q := eventuateQueue(channel, subscriberID, i)
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("delete queue %q: %w", q, err)
		}
	}
	x := eventuateHashExchange(channel, subscriberID)
	if err := ch.ExchangeDelete(x, false, false); err != nil {
		return fmt.Errorf("delete exchange %q: %w", x, err)
	}
	return nil
}
