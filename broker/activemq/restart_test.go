package activemq_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/testserver"
	"github.com/courier-go/courier/message"
)

// TestRestartLosesNoAcknowledgedMessage restarts ActiveMQ while a
// subscriber is behind: every message whose Send returned nil, before the
// restart (stored, waiting in the subscriber id's queue) and after it
// (sent once the connection came back), reaches the subscriber.
func TestRestartLosesNoAcknowledgedMessage(t *testing.T) {
	restart := testserver.ActiveMQ(t, testserver.ActiveMQURL(t))
	b := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	defer b.Close(context.Background())
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	ch, id := "restart-ch-"+suffix, "restart-sub-"+suffix

	var mu sync.Mutex
	seen := map[string]bool{}
	sub, err := b.Subscribe(ctx, id, []string{ch}, broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		time.Sleep(5 * time.Millisecond) // one key, one at a time: behind the producer
		mu.Lock()
		seen[m.ID] = true
		mu.Unlock()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())

	var sent []string
	send := func(n, from int) {
		for i := 0; i < n; i += 50 {
			msgs := make([]*message.Message, 50)
			for j := range msgs {
				msgs[j] = message.NewBuilder([]byte(fmt.Sprint(from + i + j))).WithPartitionKey("one-key").Build()
			}
			if err := b.Send(ctx, ch, msgs...); err != nil {
				t.Fatalf("Send: %v", err)
			}
			for _, m := range msgs {
				sent = append(sent, m.ID)
			}
		}
	}
	send(1000, 0)
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	t.Logf("%d of 1000 messages handled when the restart began", before)
	if err := restart(ctx); err != nil {
		t.Fatalf("restarting ActiveMQ: %v", err)
	}
	send(200, 1000) // waits for the connection to come back
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		missing := 0
		for _, id := range sent {
			if !seen[id] {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never arrived after the restart", missing, len(sent))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all %d acknowledged messages arrived across the restart", len(sent))
}
