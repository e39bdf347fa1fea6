package bench

import (
	"context"
	"fmt"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/message"
)

// kafkaSystems are the systems of the Kafka suite.
func kafkaSystems() []System {
	return []System{
		CourierKafka(),
		CourierKafkaConcurrent(),
		RawFranzGo(),
		WatermillKafka(),
	}
}

// kafkaChecks are the targets of issue 3 for the Kafka suite.
var kafkaChecks = []Check{
	{System: "courier-kafka", Peer: "raw-franz-go", Min: 0.8, Goal: "issue 3: >= 80% of raw franz-go"},
	{System: "courier-kafka", Peer: "watermill-kafka", Min: 1, Goal: "issue 3: >= Watermill's Kafka adapter"},
	{System: "courier-kafka-concurrent", Peer: "raw-franz-go", Min: 0.9, Goal: "issue 21, concurrent: >= 0.9x raw franz-go"},
	{System: "courier-kafka", Peer: "raw-franz-go", Min: 0.85, Goal: "issue 21, ordered: >= 0.85x raw franz-go"},
	{System: "courier-kafka", Peer: "watermill-kafka", Min: 1.2, Goal: "issue 21, ordered: >= 1.2x Watermill's Kafka adapter"},
}

// CourierKafka is Courier's Kafka broker (broker/kafka, on franz-go) with
// its defaults (16 partitions per channel, handled offsets committed every
// second) on a fresh kfake cluster; consumers instances of one subscriber
// id form its consumer group. As for the other Kafka systems, Start
// returns once every instance owns partitions.
func CourierKafka() System { return courierKafka("courier-kafka") }

// CourierKafkaConcurrent is CourierKafka in concurrent delivery mode, with
// benchInFlight records in flight per instance.
func CourierKafkaConcurrent() System {
	return courierKafka("courier-kafka-concurrent", broker.WithConcurrentDelivery(benchInFlight))
}

func courierKafka(name string, opts ...broker.SubscribeOption) System {
	opts = append([]broker.SubscribeOption{broker.WithLogger(quietLogger)}, opts...)
	return funcSystem{name: name, start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		cluster, err := startKafka(&c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		b, err := kafka.Open(ctx, cluster.ListenAddrs())
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(b.Close)
		var p probes
		for i := range consumers {
			d := p.wrap(i, deliver)
			h := broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
				d(m.Payload)
				return nil
			})
			if _, err := b.Subscribe(ctx, benchSubscriber, []string{kafkaTopic}, h, opts...); err != nil {
				return nil, c.fail(ctx, fmt.Errorf("subscribe instance %d: %w", i, err))
			}
		}
		publish := func(ctx context.Context, key string, payload []byte) error {
			m := message.New(payload)
			m.SetHeader(message.HeaderPartitionID, key)
			return b.Send(ctx, kafkaTopic, m)
		}
		if err := p.await(ctx, consumers, publish); err != nil {
			return nil, c.fail(ctx, err)
		}
		return funcSession{publish: publish, close: c.run}, nil
	}}
}
