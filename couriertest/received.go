package couriertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/message"
)

// Received is a broker.Handler that keeps what it is handed, in the order
// it was handed, and lets a test wait for it. It is safe for concurrent
// use.
//
//	var got couriertest.Received
//	sub, err := b.Subscribe(ctx, "kitchen", []string{"orders"}, &got)
//	...
//	msgs := got.Wait(t, 3, 10*time.Second)
type Received struct {
	mu   sync.Mutex
	msgs []*message.Message
}

// HandleMessage keeps msg and returns nil.
func (r *Received) HandleMessage(_ context.Context, msg *message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
	return nil
}

// Messages returns what was received so far.
func (r *Received) Messages() []*message.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*message.Message(nil), r.msgs...)
}

// Wait returns the messages received once there are at least n, and fails
// the test if there are not within timeout.
func (r *Received) Wait(t testing.TB, n int, timeout time.Duration) []*message.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.Messages()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages in %v, want %d", len(got), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
