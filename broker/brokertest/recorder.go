package brokertest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// recorder collects what handlers received.
type recorder struct {
	mu         sync.Mutex
	msgs       []*message.Message
	seen       map[string]int // message ID -> deliveries
	byInstance map[int]int
}

func newRecorder() *recorder {
	return &recorder{seen: make(map[string]int), byInstance: make(map[int]int)}
}

func (r *recorder) handler(instance int) broker.HandlerFunc {
	return func(_ context.Context, m *message.Message) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.msgs = append(r.msgs, m)
		r.seen[m.ID]++
		r.byInstance[instance]++
		return nil
	}
}

// unique is the number of distinct messages received.
func (r *recorder) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) instances() map[int]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int]int, len(r.byInstance))
	for k, v := range r.byInstance {
		out[k] = v
	}
	return out
}

func (r *recorder) all() []*message.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*message.Message(nil), r.msgs...)
}

func (r *recorder) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[id] > 0
}

func (r *recorder) get(id string) *message.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// orderChecker verifies per-key order and that no two instances handle one
// key at the same time. Messages carry their key's sequence number in the
// "seq" header, starting at 0.
type orderChecker struct {
	mu         sync.Mutex
	next       map[string]int // next expected sequence number per key
	inflight   map[string]int
	received   int // messages received for the first time, in order
	duplicates int
	problems   []string
	hold       time.Duration // how long each handler call lasts
}

func newOrderChecker(hold time.Duration) *orderChecker {
	return &orderChecker{next: make(map[string]int), inflight: make(map[string]int), hold: hold}
}

func (c *orderChecker) problem(format string, args ...any) {
	if len(c.problems) < 10 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

func (c *orderChecker) handle(_ context.Context, m *message.Message) error {
	key := m.PartitionKey()
	seq, err := strconv.Atoi(m.Header("seq"))
	if err != nil {
		return broker.Permanent(fmt.Errorf("bad seq header %q", m.Header("seq")))
	}
	c.mu.Lock()
	c.inflight[key]++
	if c.inflight[key] > 1 {
		c.problem("key %s: two handlers ran at once (seq %d)", key, seq)
	}
	switch next := c.next[key]; {
	case seq == next:
		c.next[key] = seq + 1
		c.received++
	case seq < next:
		c.duplicates++
	default:
		c.problem("key %s: got seq %d, expected %d (a message was skipped or reordered)", key, seq, next)
		c.next[key] = seq + 1
	}
	c.mu.Unlock()
	if c.hold > 0 {
		time.Sleep(c.hold)
	}
	c.mu.Lock()
	c.inflight[key]--
	c.mu.Unlock()
	return nil
}

func (c *orderChecker) snapshot() (received, duplicates int, problems []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received, c.duplicates, append([]string(nil), c.problems...)
}
