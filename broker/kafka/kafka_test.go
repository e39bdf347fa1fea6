package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/message"
)

// testOptions make rebalances quick enough for tests: instances learn of a
// new member within 100ms.
var testOptions = []kafka.Option{
	kafka.WithSessionTimeout(3 * time.Second),
	kafka.WithHeartbeatInterval(100 * time.Millisecond),
	kafka.WithCommitInterval(100 * time.Millisecond),
}

// startCluster starts an in-process cluster speaking the Kafka protocol and
// closes it when the test ends.
func startCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(3), kfake.GroupMinSessionTimeout(time.Second)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("starting the kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func open(t testing.TB, c *kfake.Cluster, opts ...kafka.Option) *kafka.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := kafka.Open(ctx, c.ListenAddrs(), append(append([]kafka.Option{}, testOptions...), opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b
}

func TestConformance(t *testing.T) {
	c := startCluster(t)
	brokertest.Run(t, brokertest.Suite{
		New: func(t *testing.T) broker.Broker { return open(t, c) },
		Features: brokertest.Features{
			// Committed offsets outlive the group's instances.
			Resume: true,
			// A member that misses its session timeout loses its
			// partitions without committing, and a Close whose
			// context ends skips the final commit: the next owner
			// then handles again what was handled after the last
			// commit.
			RebalanceDuplicates: true,
			Timeout:             30 * time.Second,
		},
		Raw: rawPublisher(c),
	})
}

// rawPublisher produces as a plain franz-go client would: the partition
// key as the record key (so that the default partitioner picks the
// partition Courier's Send picks) and the headers as record headers.
func rawPublisher(c *kfake.Cluster) func(*testing.T, broker.Broker, string, string, message.Headers, []byte) error {
	return func(t *testing.T, _ broker.Broker, channel, key string, headers message.Headers, payload []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchMaxBytes(16<<20))
		if err != nil {
			return err
		}
		defer cl.Close()
		rec := &kgo.Record{Topic: channel, Key: []byte(key), Value: payload}
		for k, v := range headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
				return fmt.Errorf("%w: %w", brokertest.ErrUnpublishable, err)
			}
			return err
		}
		return nil
	}
}

// testLogger sends logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}
