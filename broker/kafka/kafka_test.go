package kafka_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/broker/kafka"
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
	})
}

// testLogger sends logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}
