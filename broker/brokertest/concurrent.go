package brokertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// testInFlightLimit checks broker.WithConcurrentDelivery's limit: messages
// of one partition key, which ordered delivery would hand over one at a
// time, reach the handler up to the limit at once, and never more.
func testInFlightLimit(t *testing.T, e *env) {
	const limit = 4
	ch := e.name("ch")
	var inFlight, most, handled atomic.Int32
	release := make(chan struct{})
	e.subscribe(e.name("sub"), []string{ch}, func(ctx context.Context, m *message.Message) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			old := most.Load()
			if n <= old || most.CompareAndSwap(old, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	}, broker.WithConcurrentDelivery(limit))

	const total = 3 * limit
	msgs := make([]*message.Message, total)
	for i := range msgs {
		msgs[i] = keyed("one-key", i)
	}
	e.send(ch, msgs...)
	e.eventually(fmt.Sprintf("%d handlers of one key in flight at once", limit), func() bool { return inFlight.Load() == limit })
	e.never(fmt.Sprintf("more than %d handlers in flight", limit), 200*time.Millisecond, func() bool { return most.Load() > limit })
	close(release)
	e.eventually(fmt.Sprintf("all %d messages", total), func() bool { return handled.Load() >= total })
	if got := most.Load(); got > limit {
		t.Fatalf("%d handlers were in flight at once, above the limit of %d", got, limit)
	}
}

// testEveryMessageWithRebalance sends a stream while instances join and
// leave, as testOrderWithRebalance does, and checks that every message
// arrives, without checking order.
func testEveryMessageWithRebalance(t *testing.T, e *env) {
	ch, id := e.name("ch"), e.name("unordered")
	const keys = 100
	total := 4000
	if testing.Short() {
		total = 1000
	}
	var mu sync.Mutex
	seen := make(map[string]int, total)
	h := broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		time.Sleep(50 * time.Microsecond)
		mu.Lock()
		seen[m.ID]++
		mu.Unlock()
		return nil
	})
	var subs []broker.Subscription
	join := func() {
		opts := e.with(fastRetry)
		e.track(id, []string{ch}, opts...)
		sub, err := e.b.Subscribe(e.ctx(), id, []string{ch}, h, opts...)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		subs = append(subs, sub)
		t.Cleanup(func() { closeSub(t, sub) })
	}
	leave := func(i int) {
		closeSub(t, subs[i])
		subs = append(subs[:i], subs[i+1:]...)
	}
	join()
	join()

	ids := make([]string, 0, total)
	const batch = 50
	for sent := 0; sent < total; {
		msgs := make([]*message.Message, 0, batch)
		for range batch {
			m := keyed(fmt.Sprintf("key-%03d", sent%keys), sent/keys)
			msgs = append(msgs, m)
			sent++
		}
		e.send(ch, msgs...)
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		switch sent {
		case total / 5:
			join()
		case 2 * total / 5:
			join()
		case 3 * total / 5:
			leave(0)
		case 4 * total / 5:
			leave(1)
			join()
		}
		time.Sleep(time.Millisecond)
	}
	count := func() (unique, dups int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range seen {
			dups += n - 1
		}
		return len(seen), dups
	}
	e.eventually(fmt.Sprintf("all %d messages", total), func() bool {
		unique, _ := count()
		return unique == total
	})
	mu.Lock()
	for _, id := range ids {
		if seen[id] == 0 {
			t.Errorf("message %s never arrived", id)
		}
	}
	mu.Unlock()
	unique, dups := count()
	if dups > 0 && !e.suite.Features.RebalanceDuplicates {
		t.Errorf("%d messages delivered twice while instances joined and left", dups)
	}
	t.Logf("%d messages, %d redelivered", unique, dups)
}
