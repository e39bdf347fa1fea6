package memory

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

func TestOptionsAreValidated(t *testing.T) {
	if _, err := New(WithShards(0)); err == nil {
		t.Error("WithShards(0) accepted")
	}
	if _, err := New(WithLimits(message.Limits{MaxPayloadBytes: -1})); err == nil {
		t.Error("negative limits accepted")
	}
}

func TestHandledMessagesAreReleased(t *testing.T) {
	ctx := context.Background()
	b, err := New(WithShards(1))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	var handled atomic.Int64
	sub, err := b.Subscribe(ctx, "s", []string{"c"}, broker.HandlerFunc(func(context.Context, *message.Message) error {
		handled.Add(1)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	const n = 20 * trimEvery
	for range n {
		if err := b.Send(ctx, "c", message.New([]byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for handled.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("handled %d of %d", handled.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	// The worker trims once it has caught up, just after the last handler
	// returned.
	s := b.channels["c"].shards[0]
	for {
		s.mu.Lock()
		retained := len(s.log)
		s.mu.Unlock()
		if retained <= 2*trimEvery {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d handled messages still held in memory", retained)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMessagesWithoutSubscribersAreDropped(t *testing.T) {
	ctx := context.Background()
	b, _ := New()
	defer b.Close(ctx)
	for range 100 {
		if err := b.Send(ctx, "nobody-listens", message.New(nil)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range b.channels["nobody-listens"].shards {
		if len(s.log) != 0 {
			t.Fatal("a channel without subscribers keeps messages")
		}
	}
}
