package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaTopic and kafkaPartitions are the topic of the Kafka systems, and
// its number of partitions (as many as Courier's default shards elsewhere).
const (
	kafkaTopic      = "bench.events"
	kafkaPartitions = 16
)

// kafkaSuite runs the Kafka systems, each against a fresh in-process
// kfake cluster (one broker, the topic seeded with 16 partitions, data in
// memory): raw franz-go and Watermill's Kafka adapter (watermill-kafka/v3,
// on sarama). Every message is keyed, so that a key's messages share a
// partition; consumers are the members of one consumer group, each
// marking every record it handled for the next offset commit.
func kafkaSuite() Suite {
	return BrokerSuite{
		ID:            "kafka",
		Systems:       kafkaSystems,
		FullMessages:  100_000,
		QuickMessages: 2_000,
		Rounds:        5,
		Checks:        kafkaChecks,
	}
}

// startKafka starts a kfake cluster and registers its shutdown in c.
func startKafka(c *cleanup) (*kfake.Cluster, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(kafkaPartitions, kafkaTopic))
	if err != nil {
		return nil, fmt.Errorf("kfake: %w", err)
	}
	c.add(func(context.Context) error { cluster.Close(); return nil })
	return cluster, nil
}

// probePrefix starts the payloads of the probe messages with which a
// session waits for its consumer group to settle; they are shorter than
// HeaderBytes and never reach the workload.
var probePrefix = []byte("probe")

// probes tracks which consumers of a session have received a probe
// message, that is, own partitions after the group's rebalances.
type probes struct {
	mu       sync.Mutex
	seen     map[int]bool
	received int
}

// wrap returns consumer i's delivery function: probes are recorded, the
// rest go to deliver.
func (p *probes) wrap(i int, deliver func([]byte)) func([]byte) {
	return func(b []byte) {
		if len(b) < HeaderBytes && bytes.HasPrefix(b, probePrefix) {
			p.mu.Lock()
			if p.seen == nil {
				p.seen = map[int]bool{}
			}
			p.seen[i] = true
			p.received++
			p.mu.Unlock()
			return
		}
		deliver(b)
	}
}

// await sends rounds of probes on many keys, so that they reach every
// partition, until each of the n consumers has received one and three
// rounds in a row were delivered in full within 200 ms: the consumer
// group has then assigned partitions to all its members and stopped
// rebalancing, and the measurement will not include its start-up.
func (p *probes) await(ctx context.Context, n int, publish func(ctx context.Context, key string, payload []byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	const perRound = 4 * kafkaPartitions
	settled := 0
	for round := 0; settled < 3; round++ {
		p.mu.Lock()
		before := p.received
		p.mu.Unlock()
		for k := range perRound {
			if err := publish(ctx, "probe-"+strconv.Itoa(round)+"-"+strconv.Itoa(k), probePrefix); err != nil {
				return fmt.Errorf("probe: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d consumers to own partitions: %w", n, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		p.mu.Lock()
		if len(p.seen) == n && p.received-before >= perRound {
			settled++
		} else {
			settled = 0
		}
		p.mu.Unlock()
	}
	return nil
}

// RawFranzGo is the workload on franz-go directly: a producer client
// shared by the publishers, each publish a ProduceSync of one keyed record
// (acks from all in-sync replicas, the client's default), and consumers
// consumer-group clients polling the topic from its start, marking each
// record after delivering it (AutoCommitMarks), the commit of marked
// offsets running in the background as it does by default.
func RawFranzGo() System {
	return funcSystem{name: "raw-franz-go", start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		cluster, err := startKafka(&c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		seeds := kgo.SeedBrokers(cluster.ListenAddrs()...)
		prod, err := kgo.NewClient(seeds, kgo.DefaultProduceTopic(kafkaTopic))
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { prod.Close(); return nil })
		var p probes
		var wg sync.WaitGroup
		pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		for i := range consumers {
			cl, err := kgo.NewClient(seeds, kgo.ConsumerGroup(benchSubscriber), kgo.ConsumeTopics(kafkaTopic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitMarks())
			if err != nil {
				stop()
				wg.Wait()
				return nil, c.fail(ctx, err)
			}
			d := p.wrap(i, deliver)
			wg.Go(func() {
				defer cl.Close()
				for {
					fetches := cl.PollFetches(pctx)
					if pctx.Err() != nil || fetches.IsClientClosed() {
						return
					}
					fetches.EachRecord(func(r *kgo.Record) {
						d(r.Value)
						cl.MarkCommitRecords(r)
					})
				}
			})
		}
		c.add(func(context.Context) error { stop(); wg.Wait(); return nil })
		publish := func(ctx context.Context, key string, payload []byte) error {
			return prod.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: payload}).FirstErr()
		}
		if err := p.await(ctx, consumers, publish); err != nil {
			return nil, c.fail(ctx, err)
		}
		return funcSession{publish: publish, close: c.run}, nil
	}}
}

// WatermillKafka is the workload on Watermill's Kafka adapter
// (watermill-kafka/v3, on sarama) with its default sarama configurations
// (DefaultSaramaSyncPublisherConfig, DefaultSaramaSubscriberConfig with
// the initial offset set to the oldest, as in Watermill's own benchmark),
// the message key taken from the metadata (NewWithPartitioningMarshaler)
// and one consumer group. The subscriber is subscribed consumers times,
// each subscription a member of the group whose output one goroutine
// drains, acking each message.
func WatermillKafka() System {
	return funcSystem{name: "watermill-kafka", start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		cluster, err := startKafka(&c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		marshaler := wmkafka.NewWithPartitioningMarshaler(func(_ string, m *wmessage.Message) (string, error) {
			return m.Metadata.Get("partition_key"), nil
		})
		logger := watermill.NopLogger{}
		pub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{Brokers: cluster.ListenAddrs(), Marshaler: marshaler}, logger)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return pub.Close() })
		scfg := wmkafka.DefaultSaramaSubscriberConfig()
		scfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		sub, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{Brokers: cluster.ListenAddrs(), Unmarshaler: marshaler,
			OverwriteSaramaConfig: scfg, ConsumerGroup: benchSubscriber}, logger)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return sub.Close() })
		var p probes
		publish := func(_ context.Context, key string, payload []byte) error {
			return pub.Publish(kafkaTopic, watermillMessage(key, payload))
		}
		s, err := watermillConsume(ctx, "watermill-kafka", c, sub, kafkaTopic, consumers, 1,
			func(i int) func([]byte) { return p.wrap(i, deliver) }, publish)
		if err != nil {
			return nil, err
		}
		if err := p.await(ctx, consumers, publish); err != nil {
			return nil, errors.Join(err, s.Close(context.WithoutCancel(ctx)))
		}
		return s, nil
	}}
}
