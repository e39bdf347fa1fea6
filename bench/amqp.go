package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/internal/connurl"
)

// AMQPURLEnv names the RabbitMQ server of the AMQP suite.
const (
	AMQPURLEnv     = "COURIER_AMQP_URL"
	AMQPURLDefault = "amqp://guest:guest@127.0.0.1:5672/"
)

func amqpURL() string {
	if v := os.Getenv(AMQPURLEnv); v != "" {
		return v
	}
	return AMQPURLDefault
}

// probeAMQP dials the server once.
func probeAMQP(context.Context) error {
	conn, err := amqp091.Dial(amqpURL())
	if err != nil {
		return fmt.Errorf("%w: RabbitMQ at %s: %v; start it with scripts/services/rabbitmq.sh (or set %s)",
			ErrUnavailable, connurl.Redacted(amqpURL()), err, AMQPURLEnv)
	}
	return conn.Close()
}

// uniqueName returns prefix plus a random suffix, so that each run uses
// queues of its own on a shared server.
func uniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// amqpPrefetch is the prefetch of every consuming AMQP channel of the
// suite: Courier's default, given to the raw client and to Watermill as
// well (Watermill's own default is 1), so that all three keep as many
// unacknowledged messages in flight per consumer.
const amqpPrefetch = amqp.DefaultPrefetch

// amqpSuite is Courier's RabbitMQ broker beside Watermill's AMQP adapter and
// raw amqp091-go on the same server, every message persistent, published
// with a publisher confirm awaited before Publish returns, consumed with a
// prefetch of amqpPrefetch per consuming AMQP channel and acknowledged one
// by one.
// Courier's default shard queues are quorum queues, which RabbitMQ fsyncs
// before confirming; Watermill's and the raw client's are classic durable
// queues, so Courier also runs with classic queues for the like-for-like
// comparison.
func amqpSuite() Suite {
	return BrokerSuite{
		ID: "amqp",
		Systems: func() []System {
			return []System{
				courierAMQP("courier-amqp-quorum", amqp.QuorumQueue),
				courierAMQP("courier-amqp-classic", amqp.ClassicQueue),
				courierAMQP("courier-amqp-concurrent", amqp.ClassicQueue, broker.WithConcurrentDelivery(benchInFlight)),
				RawAMQP(),
				RawAMQPSharded(),
				RawAMQPDirectSharded(),
				RawAMQPHashSharded(),
				RawAMQPTopic(),
				WatermillAMQP(),
			}
		},
		FullMessages:  50_000,
		QuickMessages: 2_000,
		Rounds:        3,
		Checks: []Check{
			{System: "courier-amqp-classic", Peer: "raw-amqp091-go", Min: 0.8, Goal: "issue 3: >= 80% of raw amqp091-go (classic queues)"},
			{System: "courier-amqp-classic", Peer: "watermill-amqp", Min: 1, Goal: "issue 3: >= Watermill's AMQP adapter (classic queues)"},
			{System: "courier-amqp-classic", Peer: "raw-amqp091-go-sharded", Min: 0.8, Goal: ">= 80% of raw amqp091-go on Courier's topology"},
			{System: "courier-amqp-concurrent", Peer: "raw-amqp091-go", Min: 0.9, Goal: "issue 21, concurrent: >= 0.9x raw amqp091-go (classic queues)"},
			{System: "courier-amqp-concurrent", Peer: "raw-amqp091-go-topic", Min: 0.9, Goal: "concurrent: >= 0.9x raw amqp091-go on Courier's topology"},
			{System: "courier-amqp-classic", Peer: "watermill-amqp", Min: 1, Goal: "issue 21, ordered: >= Watermill's AMQP adapter (classic queues)"},
		},
	}
}

// courierAMQP is Courier's RabbitMQ broker with the given shard queue type
// (8 shards, the default) on a channel and subscriber id of its own, whose
// exchange and queues it deletes at Close.
func courierAMQP(label string, qt amqp.QueueType, opts ...broker.SubscribeOption) System {
	return funcSystem{name: label, probe: probeAMQP, start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		channel, subscriber := uniqueName("bench.events"), uniqueName("bench-consumer")
		sys := CourierBroker{Label: label, Channel: channel, Subscriber: subscriber, SubscribeOptions: opts,
			Open: func(ctx context.Context) (brokerCloser, error) {
				b, err := amqp.Open(ctx, amqpURL(), amqp.WithQueueType(qt), amqp.WithLogger(quietLogger))
				if err != nil {
					return brokerCloser{}, err
				}
				return brokerCloser{Broker: b, after: func(ctx context.Context) error {
					group := channel + ":" + subscriber
					queues := []string{group + ":members", group + ":all"}
					for i := range amqp.DefaultShards {
						queues = append(queues, fmt.Sprintf("%s:%03d", group, i))
					}
					return deleteAMQP(queues, []string{channel})
				}}, nil
			}}
		return sys.Start(ctx, consumers, deliver)
	}}
}

// deleteAMQP deletes queues and exchanges, ignoring those that do not
// exist.
func deleteAMQP(queues, exchanges []string) error {
	conn, err := amqp091.Dial(amqpURL())
	if err != nil {
		return err
	}
	defer conn.Close()
	var errs []error
	for _, q := range queues {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		if _, err := ch.QueueDelete(q, false, false, false); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete queue %s: %w", q, err))
		}
		_ = ch.Close()
	}
	for _, x := range exchanges {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		if err := ch.ExchangeDelete(x, false, false); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete exchange %s: %w", x, err))
		}
		_ = ch.Close()
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var ae *amqp091.Error
	return errors.As(err, &ae) && ae.Code == amqp091.NotFound
}

// amqpShards is the number of shard queues of Courier's broker in the
// suite (its default), which RawAMQPSharded declares as well.
const amqpShards = amqp.DefaultShards

// dialPair dials a publishing and a consuming connection, closed by c.
func dialPair(c *cleanup) ([2]*amqp091.Connection, error) {
	var conns [2]*amqp091.Connection
	for i := range conns {
		conn, err := amqp091.Dial(amqpURL())
		if err != nil {
			return conns, err
		}
		c.add(func(context.Context) error { return conn.Close() })
		conns[i] = conn
	}
	return conns, nil
}

// consumeQueue declares the durable queue with args on a channel of conn,
// runs bind (if any) on it, and consumes the queue with a prefetch of
// amqpPrefetch, acknowledging each delivery after deliver; c closes the
// channel and fails if an ack failed.
func consumeQueue(c *cleanup, conn *amqp091.Connection, queue string, args amqp091.Table, bind func(*amqp091.Channel) error,
	tag string, deliver func([]byte)) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
		return err
	}
	if bind != nil {
		if err := bind(ch); err != nil {
			return err
		}
	}
	if err := ch.Qos(amqpPrefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(queue, tag, false, false, false, false, nil)
	if err != nil {
		return err
	}
	var ackErrs atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range deliveries {
			deliver(d.Body)
			if d.Ack(false) != nil {
				ackErrs.Add(1)
			}
		}
	}()
	c.add(func(context.Context) error {
		err := ch.Close()
		<-done
		if n := ackErrs.Load(); n > 0 {
			err = errors.Join(err, fmt.Errorf("raw amqp091-go: %d acks failed", n))
		}
		return err
	})
	return nil
}

// confirmPool opens DefaultPublishers confirm-mode channels on conn and
// returns a publish function that takes one, publishes what build makes of
// the message and waits for its confirm.
func confirmPool(conn *amqp091.Connection, build func(key string, payload []byte) (exchange, routingKey string, p amqp091.Publishing)) (
	func(ctx context.Context, key string, payload []byte) error, error) {
	pool := make(chan *amqp091.Channel, DefaultPublishers)
	for range DefaultPublishers {
		ch, err := conn.Channel()
		if err != nil {
			return nil, err
		}
		if err := ch.Confirm(false); err != nil {
			return nil, err
		}
		pool <- ch
	}
	return func(ctx context.Context, key string, payload []byte) error {
		ch := <-pool
		defer func() { pool <- ch }()
		exchange, rk, p := build(key, payload)
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, rk, false, false, p)
		if err != nil {
			return err
		}
		ok, err := dc.WaitContext(ctx)
		if err == nil && !ok {
			err = errors.New("raw amqp091-go: publish nacked")
		}
		return err
	}, nil
}

// RawAMQP is the workload on amqp091-go directly: one classic durable
// queue, persistent messages published to it through the default exchange
// from a pool of confirm-mode channels (one per publishing goroutine at
// most), each Publish waiting for its confirm; consumers AMQP channels
// with a prefetch of amqpPrefetch consume the queue and acknowledge each
// delivery.
func RawAMQP() System {
	return funcSystem{name: "raw-amqp091-go", probe: probeAMQP, start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		queue := uniqueName("bench-raw")
		conns, err := dialPair(&c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return deleteAMQP([]string{queue}, nil) })
		for i := range consumers {
			if err := consumeQueue(&c, conns[1], queue, nil, nil, fmt.Sprintf("bench-%d", i), deliver); err != nil {
				return nil, c.fail(ctx, err)
			}
		}
		publish, err := confirmPool(conns[0], func(_ string, payload []byte) (string, string, amqp091.Publishing) {
			return "", queue, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: payload}
		})
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		return funcSession{publish: publish, close: c.run}, nil
	}}
}

// RawAMQPSharded is the workload on amqp091-go directly, on the topology
// Courier's broker declares and nothing else: a durable topic exchange,
// amqpShards classic single-active-consumer queues bound to it by the
// first bits of the routing key, and the message headers Courier sends
// (ID, DESTINATION, DATE, PARTITION_ID and the message-id property). The
// routing key is Courier's (amqp.RoutingKey: ten well-mixed bits of the
// partition key's hash, as words), so that the keys spread over the
// queues as they do for Courier; one consuming channel per queue, with a
// prefetch of amqpPrefetch. Publishing
// is RawAMQP's. It is the honest ceiling of Courier's adapter, as RawAMQP
// is of the server: the difference between the two is what RabbitMQ's
// topic routing and the headers cost.
func RawAMQPSharded() System {
	width := bits.TrailingZeros(amqpShards)
	return rawAMQPSharded("raw-amqp091-go-sharded", amqp091.ExchangeTopic, func(i int) string {
		var pattern strings.Builder
		for bit := width - 1; bit >= 0; bit-- {
			fmt.Fprintf(&pattern, "%d.", i>>bit&1)
		}
		pattern.WriteString("#")
		return pattern.String()
	}, amqp.RoutingKey)
}

// RawAMQPDirectSharded is RawAMQPSharded with a direct exchange instead of
// the topic exchange: each shard queue is bound with its number as the
// routing key, and a message is published with the number of its key's
// shard (the first bits of amqp.RoutingKey, as the topic patterns match
// them). It measures the first alternative to Courier's topology.
func RawAMQPDirectSharded() System {
	return rawAMQPSharded("raw-amqp091-go-direct", amqp091.ExchangeDirect, strconv.Itoa, func(key string) string {
		return strconv.Itoa(shardOfRoutingKey(amqp.RoutingKey(key)))
	})
}

// RawAMQPHashSharded is RawAMQPSharded with RabbitMQ's consistent-hash
// exchange (the rabbitmq_consistent_hash_exchange plugin) instead of the
// topic exchange: each shard queue is bound with weight 1, and a message is
// published with its partition key as the routing key, which the exchange
// hashes onto the queues. It measures the second alternative.
func RawAMQPHashSharded() System {
	return rawAMQPSharded("raw-amqp091-go-hash", "x-consistent-hash", func(int) string { return "1" },
		func(key string) string { return key })
}

// shardOfRoutingKey reads the shard of amqpShards that a Courier routing
// key's first words select.
func shardOfRoutingKey(rk string) int {
	shard := 0
	for i := 0; i < bits.TrailingZeros(amqpShards); i++ {
		shard = shard<<1 | int(rk[2*i]-'0')
	}
	return shard
}

// rawAMQPSharded is the workload on amqp091-go directly with amqpShards
// classic single-active-consumer queues behind one exchange of the given
// kind, queue i bound with binding(i), messages published with Courier's
// headers and the routing key route(partition key); one consuming channel
// per queue, with a prefetch of amqpPrefetch.
func rawAMQPSharded(name, kind string, binding func(int) string, route func(string) string) System {
	return funcSystem{name: name, probe: probeAMQP, start: func(ctx context.Context, _ int, deliver func([]byte)) (Session, error) {
		var c cleanup
		exchange := uniqueName("bench-" + name)
		queues := make([]string, amqpShards)
		for i := range queues {
			queues[i] = fmt.Sprintf("%s:%03d", exchange, i)
		}
		conns, err := dialPair(&c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return deleteAMQP(queues, []string{exchange}) })
		if err := declareExchange(conns[1], exchange, kind); err != nil {
			return nil, c.fail(ctx, err)
		}
		for i, q := range queues {
			if err := consumeQueue(&c, conns[1], q, amqp091.Table{"x-single-active-consumer": true},
				func(ch *amqp091.Channel) error { return ch.QueueBind(q, binding(i), exchange, false, nil) },
				fmt.Sprintf("bench-%d", i), deliver); err != nil {
				return nil, c.fail(ctx, err)
			}
		}
		publish, err := publishAsCourier(conns[0], exchange, route)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		return funcSession{publish: publish, close: c.run}, nil
	}}
}

// declareExchange declares a durable exchange of the given kind on a
// channel of conn.
func declareExchange(conn *amqp091.Connection, exchange, kind string) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	return ch.ExchangeDeclare(exchange, kind, true, false, false, false, nil)
}

// publishAsCourier returns a confirmPool publish function that sends to
// exchange as Courier's broker does: persistent, with Courier's headers
// (ID, DESTINATION, DATE, PARTITION_ID and the message-id property), and
// the routing key route makes of the partition key (Courier's is
// amqp.RoutingKey).
func publishAsCourier(conn *amqp091.Connection, exchange string, route func(string) string) (func(ctx context.Context, key string, payload []byte) error, error) {
	date := time.Now().UTC().Format(time.RFC3339)
	var seq atomic.Uint64
	return confirmPool(conn, func(key string, payload []byte) (string, string, amqp091.Publishing) {
		id := fmt.Sprintf("%016x-%016x", time.Now().UnixNano(), seq.Add(1))
		return exchange, route(key), amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: payload, MessageId: id,
			Headers: amqp091.Table{"ID": id, "DESTINATION": exchange, "DATE": date, "PARTITION_ID": key}}
	})
}

// RawAMQPTopic is the workload on amqp091-go directly, on the topology
// Courier's broker declares in concurrent delivery mode and nothing else:
// a durable topic exchange, one classic durable queue bound to it by the
// first word of the routing key ("0.#" and "1.#", which take every key
// amqp.RoutingKey makes), consumed by consumers AMQP channels with a
// prefetch of amqpPrefetch, and the message headers Courier sends. It is
// the ceiling of Courier's concurrent mode, as RawAMQPSharded is of its
// ordered mode.
func RawAMQPTopic() System {
	return funcSystem{name: "raw-amqp091-go-topic", probe: probeAMQP, start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		exchange := uniqueName("bench-raw-topic")
		queue := exchange + ":all"
		conns, err := dialPair(&c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return deleteAMQP([]string{queue}, []string{exchange}) })
		if err := declareExchange(conns[1], exchange, amqp091.ExchangeTopic); err != nil {
			return nil, c.fail(ctx, err)
		}
		bind := func(ch *amqp091.Channel) error {
			return errors.Join(ch.QueueBind(queue, "0.#", exchange, false, nil), ch.QueueBind(queue, "1.#", exchange, false, nil))
		}
		for i := range consumers {
			if err := consumeQueue(&c, conns[1], queue, nil, bind, fmt.Sprintf("bench-%d", i), deliver); err != nil {
				return nil, c.fail(ctx, err)
			}
		}
		publish, err := publishAsCourier(conns[0], exchange, amqp.RoutingKey)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		return funcSession{publish: publish, close: c.run}, nil
	}}
}

// WatermillAMQP is the workload on Watermill's AMQP adapter
// (watermill-amqp/v3) with its durable queue configuration
// (NewDurableQueueConfig: one classic durable queue named after the topic,
// persistent messages; its prefetch raised to amqpPrefetch), publisher confirms on
// (Publish.ConfirmDelivery) and a pool of one publishing channel per
// publishing goroutine (Publish.ChannelPoolSize 64; without a pool the
// adapter opens and closes an AMQP channel per message). The subscriber
// is subscribed consumers times, so consumers AMQP consumers compete on
// the queue, each acking what it handles.
func WatermillAMQP() System {
	return funcSystem{name: "watermill-amqp", probe: probeAMQP, start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		topic := uniqueName("bench-watermill")
		c.add(func(context.Context) error { return deleteAMQP([]string{topic}, nil) })
		cfg := wmamqp.NewDurableQueueConfig(amqpURL())
		cfg.Publish.ConfirmDelivery = true
		cfg.Publish.ChannelPoolSize = DefaultPublishers
		cfg.Consume.Qos.PrefetchCount = amqpPrefetch
		logger := watermill.NopLogger{}
		pub, err := wmamqp.NewPublisher(cfg, logger)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return pub.Close() })
		sub, err := wmamqp.NewSubscriber(cfg, logger)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return sub.Close() })
		publish := func(_ context.Context, key string, payload []byte) error {
			return pub.Publish(topic, watermillMessage(key, payload))
		}
		return watermillConsume(ctx, "watermill-amqp", c, sub, topic, consumers, 1, same(deliver), publish)
	}}
}
