package amqp_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// queuesOf lists the queues, with their types, whose names start with
// prefix, as rabbitmqctl reports them.
func queuesOf(t *testing.T, prefix string) []string {
	t.Helper()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		msg := fmt.Sprintf("rabbitmqctl not found; cannot list the queues: %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	out, err := exec.Command("rabbitmqctl", "-q", "list_queues", "name", "type").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl list_queues: %v: %s", err, out)
	}
	var qs []string
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, prefix) {
			qs = append(qs, strings.Join(strings.Fields(line), " "))
		}
	}
	return qs
}

// An ephemeral subscription reads one classic queue of its own, and Close
// deletes it.
func TestEphemeralQueue(t *testing.T) {
	u := serverURL(t)
	b := open(t, u)
	defer b.Close(context.Background())
	ctx := t.Context()
	ch := fmt.Sprintf("eph-%06x.replies", rand.Uint32()&0xffffff)

	var mu sync.Mutex
	got := map[string]bool{}
	sub, err := b.Subscribe(ctx, ch, []string{ch}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		mu.Lock()
		got[m.ID] = true
		mu.Unlock()
		return nil
	}), broker.WithEphemeral(), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	qs := queuesOf(t, ch+":")
	if len(qs) != 1 || !strings.Contains(qs[0], ":ephemeral-") || !strings.HasSuffix(qs[0], " classic") {
		t.Errorf("queues while subscribed: %q, want one classic queue of the instance's own", qs)
	}
	var ids []string
	for i := range 20 {
		m := message.NewBuilder([]byte("reply")).WithPartitionKey(fmt.Sprint(i)).Build()
		if err := b.Send(ctx, ch, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered", n, len(ids))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if qs := queuesOf(t, ch+":"); len(qs) != 0 {
		t.Errorf("queues after Close: %q, want none", qs)
	}
}
