package kafka

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// TestBackpressure holds a partition's handler until the partition's
// fetched records pile up: fetching of the partition pauses, and resumes
// once the worker catches up, without losing or reordering anything.
func TestBackpressure(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Open(ctx, c.ListenAddrs(), WithPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)

	release := make(chan struct{})
	var mu sync.Mutex
	var seqs []int
	sub, err := b.Subscribe(ctx, "bp", []string{"bp.ch"}, broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		<-release
		n, _ := strconv.Atoi(m.Header("seq"))
		mu.Lock()
		seqs = append(seqs, n)
		mu.Unlock()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)

	const total = 3 * maxQueued
	for i := 0; i < total; i += 500 {
		batch := make([]*message.Message, 500)
		for j := range batch {
			batch[j] = message.NewBuilder(nil).WithPartitionKey("k").WithHeader("seq", fmt.Sprint(i+j)).Build()
		}
		if err := b.Send(ctx, "bp.ch", batch...); err != nil {
			t.Fatal(err)
		}
	}
	s := sub.(*subscription)
	paused := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, w := range s.workers {
			w.mu.Lock()
			p := w.paused
			w.mu.Unlock()
			if p {
				return true
			}
		}
		return false
	}
	for !paused() {
		if ctx.Err() != nil {
			t.Fatal("the partition never paused")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(s.cl.PauseFetchPartitions(nil)["bp.ch"]); got != 1 {
		t.Errorf("%d partitions paused in the client, want 1", got)
	}
	close(release)
	for {
		mu.Lock()
		n := len(seqs)
		mu.Unlock()
		if n >= total {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d messages after resuming", n, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range seqs {
		if n != i {
			t.Fatalf("message %d has seq %d: out of order or duplicated", i, n)
		}
	}
	if paused() || len(s.cl.PauseFetchPartitions(nil)) != 0 {
		t.Error("the partition is still paused after the worker caught up")
	}
}
