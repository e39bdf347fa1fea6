package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker/amqp"
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
			ErrUnavailable, redactURL(amqpURL()), err, AMQPURLEnv)
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
				RawAMQP(),
				WatermillAMQP(),
			}
		},
		FullMessages:  50_000,
		QuickMessages: 2_000,
		Checks: []Check{
			{System: "courier-amqp-classic", Peer: "raw-amqp091-go", Min: 0.8, Goal: "issue 3: >= 80% of raw amqp091-go (classic queues)"},
			{System: "courier-amqp-classic", Peer: "watermill-amqp", Min: 1, Goal: "issue 3: >= Watermill's AMQP adapter (classic queues)"},
		},
	}
}

// courierAMQP is Courier's RabbitMQ broker with the given shard queue type
// (8 shards, the default) on a channel and subscriber id of its own, whose
// exchange and queues it deletes at Close.
func courierAMQP(label string, qt amqp.QueueType) System {
	return funcSystem{name: label, probe: probeAMQP, start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		channel, subscriber := uniqueName("bench.events"), uniqueName("bench-consumer")
		sys := CourierBroker{Label: label, Channel: channel, Subscriber: subscriber,
			Open: func(ctx context.Context) (brokerCloser, error) {
				b, err := amqp.Open(ctx, amqpURL(), amqp.WithQueueType(qt), amqp.WithLogger(quietLogger))
				if err != nil {
					return brokerCloser{}, err
				}
				return brokerCloser{Broker: b, after: func(ctx context.Context) error {
					group := channel + ":" + subscriber
					queues := []string{group + ":members"}
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
		pconn, err := amqp091.Dial(amqpURL())
		if err != nil {
			return nil, err
		}
		c.add(func(context.Context) error { return pconn.Close() })
		cconn, err := amqp091.Dial(amqpURL())
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return cconn.Close() })
		c.add(func(context.Context) error { return deleteAMQP([]string{queue}, nil) })
		var ackErrs atomic.Int64
		for i := range consumers {
			ch, err := cconn.Channel()
			if err != nil {
				return nil, c.fail(ctx, err)
			}
			if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
				return nil, c.fail(ctx, err)
			}
			if err := ch.Qos(amqpPrefetch, 0, false); err != nil {
				return nil, c.fail(ctx, err)
			}
			deliveries, err := ch.Consume(queue, fmt.Sprintf("bench-%d", i), false, false, false, false, nil)
			if err != nil {
				return nil, c.fail(ctx, err)
			}
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
			c.add(func(context.Context) error { err := ch.Close(); <-done; return err })
		}
		pool := make(chan *amqp091.Channel, DefaultPublishers)
		for range DefaultPublishers {
			ch, err := pconn.Channel()
			if err != nil {
				return nil, c.fail(ctx, err)
			}
			if err := ch.Confirm(false); err != nil {
				return nil, c.fail(ctx, err)
			}
			pool <- ch
		}
		return funcSession{
			publish: func(ctx context.Context, _ string, payload []byte) error {
				ch := <-pool
				defer func() { pool <- ch }()
				dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
					amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: payload})
				if err != nil {
					return err
				}
				ok, err := dc.WaitContext(ctx)
				if err == nil && !ok {
					err = errors.New("raw amqp091-go: publish nacked")
				}
				return err
			},
			close: func(ctx context.Context) error {
				err := c.run(ctx)
				if n := ackErrs.Load(); n > 0 {
					err = errors.Join(err, fmt.Errorf("raw amqp091-go: %d acks failed", n))
				}
				return err
			},
		}, nil
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
