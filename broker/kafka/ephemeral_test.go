package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// An ephemeral subscription joins no consumer group and starts at the end
// of its topic: it gets what is sent after Subscribe returns, and nothing
// sent before.
func TestEphemeralJoinsNoGroup(t *testing.T) {
	c := startCluster(t)
	b := open(t, c)
	defer b.Close(context.Background())
	ctx := t.Context()
	const ch = "replies.a"

	send := func(n int) []string {
		var ids []string
		for i := range n {
			m := message.NewBuilder([]byte("reply")).WithPartitionKey(fmt.Sprint(i)).Build()
			if err := b.Send(ctx, ch, m); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		return ids
	}
	before := send(10)

	var mu sync.Mutex
	var got []string
	sub, err := b.Subscribe(ctx, ch, []string{ch}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		mu.Lock()
		got = append(got, m.ID)
		mu.Unlock()
		return nil
	}), broker.WithEphemeral(), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	after := send(20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(after) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered", n, len(after))
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	for _, id := range before {
		if slices.Contains(got, id) {
			t.Errorf("message %s, sent before Subscribe, was delivered", id)
		}
	}
	mu.Unlock()

	groups, err := kadm.NewClient(b.Client()).ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := groups.Groups(); slices.Contains(names, ch) {
		t.Errorf("groups %v include the ephemeral subscriber id", names)
	}
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
