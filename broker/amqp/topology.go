package amqp

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/bits"
	"strconv"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// maxName is RabbitMQ's limit on exchange and queue names, in bytes.
const maxName = 255

// groupName is the base of the names of a subscriber id's queues on a
// channel: the shard queues add ":NNN", the presence queue ":members". ':'
// cannot occur in channel names or subscriber ids, so the names of
// different pairs never collide. Names too long for RabbitMQ keep a prefix
// and end with a hash of the whole.
func groupName(channel, subscriberID string) string {
	name := channel + ":" + subscriberID
	const room = maxName - len(":members")
	if len(name) <= room {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return fmt.Sprintf("%s~%016x", name[:room-17], h.Sum64())
}

// shardQueueName names shard i of a group.
func shardQueueName(group string, i int) string {
	return fmt.Sprintf("%s:%03d", group, i)
}

// poolQueueName names the one queue of a group in concurrent delivery
// mode, which every instance consumes.
func poolQueueName(group string) string { return group + ":all" }

// presenceQueueName names the queue that counts a group's instances.
func presenceQueueName(group string) string { return group + ":members" }

// keptQueueName names the queue that keeps every message sent to a
// dead-letter channel (see publisher.publishDeadLetters). Channel names
// are at most 249 bytes and cannot contain ':', so the name fits and
// collides with no group's queue.
func keptQueueName(channel string) string { return channel + ":kept" }

// shardPattern is the binding key of shard i of n (a power of two): the
// log2(n) bits of i, most significant first, as the first words of the
// routing key, then anything. The patterns of the n shards split the
// routing keys (see RoutingKey) into n disjoint, equally likely sets.
func shardPattern(i, n int) string {
	width := bits.TrailingZeros(uint(n))
	var b strings.Builder
	for bit := width - 1; bit >= 0; bit-- {
		b.WriteByte('0' + byte(i>>bit&1))
		b.WriteByte('.')
	}
	b.WriteByte('#')
	return b.String()
}

// queueArgs are the arguments of the shard queues of g, or of its pool's
// queue.
func (c *config) queueArgs(g *group) amqp091.Table {
	if g.ephemeral {
		// A queue of one instance: classic, as nothing else reads it,
		// and removed by RabbitMQ if the instance dies without
		// deleting it.
		return amqp091.Table{"x-queue-type": string(ClassicQueue), "x-expires": ephemeralExpiry.Milliseconds()}
	}
	args := amqp091.Table{"x-queue-type": string(c.queueType)}
	if g.pool == nil {
		args["x-single-active-consumer"] = true
	}
	if c.queueExpiry > 0 {
		args["x-expires"] = c.queueExpiry.Milliseconds()
	}
	return args
}

// otherExchangeName names the fanout exchange that is the alternate
// exchange of a channel's: it takes the messages whose routing key matches
// no shard queue's pattern (those of producers that do not use RoutingKey)
// and passes them to shard 0 of every subscriber id.
func otherExchangeName(channel string) string { return channel + ":other" }

// declareChannel declares a channel's topic exchange, with its alternate
// exchange. An exchange declared by an earlier version of Courier, without
// the alternate exchange, cannot be declared again with it (RabbitMQ
// refuses, PRECONDITION_FAILED, and closes the AMQP channel): it is then
// used as it is, with a warning. The declarations run on AMQP channels of
// their own, so that such a refusal cannot close the caller's.
func (c *config) declareChannel(conn *amqp091.Connection, channel string) error {
	other := otherExchangeName(channel)
	err := withChannel(conn, func(ch *amqp091.Channel) error {
		if err := ch.ExchangeDeclare(other, amqp091.ExchangeFanout, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %q: %w", other, err)
		}
		return ch.ExchangeDeclare(channel, amqp091.ExchangeTopic, true, false, false, false, amqp091.Table{"alternate-exchange": other})
	})
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.PreconditionFailed {
		c.logger.Warn("courier: amqp: a channel's exchange was declared without the alternate exchange that takes messages with other routing keys; "+
			"messages published with routing keys other than amqp.RoutingKey's are dropped by RabbitMQ until the exchange is deleted and declared again",
			"channel", channel, "alternate_exchange", other, "error", err)
		err = withChannel(conn, func(ch *amqp091.Channel) error {
			return ch.ExchangeDeclarePassive(channel, amqp091.ExchangeTopic, true, false, false, false, nil)
		})
	}
	if err != nil {
		return fmt.Errorf("declare the exchange of channel %q: %w", channel, err)
	}
	return nil
}

// withChannel runs fn on a new AMQP channel of conn and closes it.
func withChannel(conn *amqp091.Connection, fn func(*amqp091.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close()
	return fn(ch)
}

// declareKept declares a dead-letter channel's exchange and its kept
// queue, bound to every routing key. The queue is durable, of the
// configured type, never expires and is read by no Courier subscription:
// it holds the dead letters for operators, whatever reads the channel.
func (c *config) declareKept(conn *amqp091.Connection, ch *amqp091.Channel, channel string) error {
	if err := c.declareChannel(conn, channel); err != nil {
		return err
	}
	q := keptQueueName(channel)
	if _, err := ch.QueueDeclare(q, true, false, false, false, amqp091.Table{"x-queue-type": string(c.queueType)}); err != nil {
		return fmt.Errorf("declare the dead-letter queue %q: %w", q, err)
	}
	if err := ch.QueueBind(q, "#", channel, false, nil); err != nil {
		return fmt.Errorf("bind the dead-letter queue %q to %q: %w", q, channel, err)
	}
	return nil
}

// declare declares the channel's exchange and the group's queues: the
// given shard queues, or the queue of its pool.
func (c *config) declare(conn *amqp091.Connection, ch *amqp091.Channel, g *group, shards []*shard) error {
	if g.pool == nil {
		return c.declareGroup(conn, ch, g, shards)
	}
	if err := c.declareChannel(conn, g.channel); err != nil {
		return err
	}
	q := g.pool.queue
	if _, err := ch.QueueDeclare(q, true, false, false, false, c.queueArgs(g)); err != nil {
		return fmt.Errorf("declare queue %q: %w", q, err)
	}
	// Every routing key Send makes starts with a bit, "0." or "1.":
	// binding both patterns takes them all, while the keys of other
	// producers still match nothing and go on to the alternate exchange,
	// which the queue is bound to as well ("#" would take those too, and
	// leave the alternate exchange, and the shard 0 queues of the
	// subscriber ids in ordered mode, without them).
	for bit := range 2 {
		pattern := shardPattern(bit, 2)
		if err := ch.QueueBind(q, pattern, g.channel, false, nil); err != nil {
			return fmt.Errorf("bind queue %q to %q with %q: %w", q, g.channel, pattern, err)
		}
	}
	other := otherExchangeName(g.channel)
	if err := ch.QueueBind(q, "", other, false, nil); err != nil {
		return fmt.Errorf("bind queue %q to %q: %w", q, other, err)
	}
	return nil
}

// declareGroup declares the channel's exchange and the given shard queues
// of the group, bound to it; shard 0 is bound to the channel's alternate
// exchange as well (see otherExchangeName).
func (c *config) declareGroup(conn *amqp091.Connection, ch *amqp091.Channel, g *group, shards []*shard) error {
	if c.eventuate {
		return c.declareEventuateGroup(conn, ch, g, shards)
	}
	if err := c.declareChannel(conn, g.channel); err != nil {
		return err
	}
	args := c.queueArgs(g)
	for _, sh := range shards {
		if _, err := ch.QueueDeclare(sh.queue, true, false, false, false, args); err != nil {
			return fmt.Errorf("declare queue %q: %w", sh.queue, err)
		}
		pattern := shardPattern(sh.index, len(g.shards))
		if err := ch.QueueBind(sh.queue, pattern, g.channel, false, nil); err != nil {
			return fmt.Errorf("bind queue %q to %q with %q: %w", sh.queue, g.channel, pattern, err)
		}
		if sh.index == 0 {
			other := otherExchangeName(g.channel)
			if err := ch.QueueBind(sh.queue, "", other, false, nil); err != nil {
				return fmt.Errorf("bind queue %q to %q: %w", sh.queue, other, err)
			}
		}
	}
	return nil
}

// declarePresence declares the group's presence queue and consumes it on
// ch. The queue is bound to nothing and never holds a message; its consumer
// count is the number of running instances of the subscriber id on the
// channel. (The shard queues cannot tell: a quorum queue does not count
// the consumers waiting behind its single active one.) RabbitMQ deletes it
// when its last consumer goes.
func (c *config) declarePresence(ch *amqp091.Channel, g *group, tag string) error {
	var args amqp091.Table
	if c.queueExpiry > 0 {
		args = amqp091.Table{"x-expires": c.queueExpiry.Milliseconds()}
	}
	if _, err := ch.QueueDeclare(g.presence, true, true, false, false, args); err != nil {
		return fmt.Errorf("declare queue %q: %w", g.presence, err)
	}
	if _, err := ch.Consume(g.presence, tag, true, false, false, false, nil); err != nil {
		return fmt.Errorf("consume queue %q: %w", g.presence, err)
	}
	return nil
}

// instances reports how many instances of the group's subscriber id are
// running: the consumers of its presence queue.
func instances(ch *amqp091.Channel, g *group) (int, error) {
	q, err := ch.QueueDeclarePassive(g.presence, true, true, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("inspect queue %q: %w", g.presence, err)
	}
	return q.Consumers, nil
}

// consumerTag names a consumer of an instance in RabbitMQ's tools; it is
// unique within the connection.
func consumerTag(instance string, n uint64) string {
	return "courier-" + instance + "-" + strconv.FormatUint(n, 10)
}
