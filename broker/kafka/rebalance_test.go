package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/message"
)

// TestRevocationWaitsForInFlightMessage checks the hand-over of a
// partition: while the old owner's handler is busy, the new owner gets
// nothing; once it returns, the new owner starts right after it, with no
// message handled twice.
func TestRevocationWaitsForInFlightMessage(t *testing.T) {
	c := startCluster(t, kfake.NumBrokers(1))
	b := open(t, c, kafka.WithPartitions(2))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer b.Close(ctx)

	const ch, group = "handover.orders", "handover"
	var mu sync.Mutex
	handledBy := map[string][]string{} // message ID -> instances
	release := make(chan struct{})
	var blockedOnce sync.Map // partition -> true once its first message blocked
	handler := func(instance string) broker.HandlerFunc {
		return func(ctx context.Context, m *message.Message) error {
			if instance == "a" {
				info, _ := broker.Delivery(ctx)
				if _, loaded := blockedOnce.LoadOrStore(info.Shard, true); !loaded {
					select {
					case <-release:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			mu.Lock()
			handledBy[m.ID] = append(handledBy[m.ID], instance)
			mu.Unlock()
			return nil
		}
	}
	count := func(instance string) int {
		mu.Lock()
		defer mu.Unlock()
		return countLocked(handledBy, instance)
	}
	subA, err := b.Subscribe(ctx, group, []string{ch}, handler("a"), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer subA.Close(ctx)

	// Keys enough to fill both partitions, so that both of A's workers
	// hold a message.
	var msgs []*message.Message
	for i := range 20 {
		msgs = append(msgs, message.NewBuilder([]byte(fmt.Sprint(i))).WithPartitionKey(fmt.Sprint("key-", i)).Build())
	}
	if err := b.Send(ctx, ch, msgs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to hold a message of each partition", func() bool {
		n := 0
		blockedOnce.Range(func(_, _ any) bool { n++; return true })
		return n == 2
	})

	subB, err := b.Subscribe(ctx, group, []string{ch}, handler("b"), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close(ctx)
	time.Sleep(time.Second) // the rebalance starts and waits for A
	if n := count("b"); n != 0 {
		t.Fatalf("B handled %d messages while A still held the partitions' in-flight messages", n)
	}
	close(release)
	waitFor(t, "every message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handledBy) == len(msgs)
	})
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for id, by := range handledBy {
		if len(by) != 1 {
			t.Errorf("message %s handled by %v", id, by)
		}
	}
	t.Logf("A handled %d, B handled %d", countLocked(handledBy, "a"), countLocked(handledBy, "b"))
	if countLocked(handledBy, "b") == 0 {
		t.Error("B never got a partition")
	}
}

func countLocked(handledBy map[string][]string, instance string) int {
	n := 0
	for _, by := range handledBy {
		for _, i := range by {
			if i == instance {
				n++
			}
		}
	}
	return n
}
