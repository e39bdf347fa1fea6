package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

func testPayloadAndHeaders(t *testing.T, e *env) {
	ch := e.name("ch")
	rec := newRecorder()
	e.subscribe(e.name("sub"), []string{ch}, rec.handler(0))

	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = byte(i)
	}
	m := &message.Message{Payload: payload, Headers: message.Headers{
		"plain":                  "value",
		"unicode":                "주문 생성 ✓",
		"empty":                  "",
		"spaces and:punctuation": "a=b; c",
		message.HeaderEventType:  "OrderCreated",
	}}
	e.send(ch, m)
	if m.ID == "" {
		t.Fatal("Send did not assign an ID to a message without one")
	}
	e.eventually("the message", func() bool { return rec.has(m.ID) })

	got := rec.get(m.ID)
	if !bytes.Equal(got.Payload, payload) {
		t.Errorf("payload changed in transit: got %x", got.Payload)
	}
	for k, v := range m.Headers {
		if gv, ok := got.Headers.Lookup(k); !ok || gv != v {
			t.Errorf("header %q = %q (present %v), want %q", k, gv, ok, v)
		}
	}
	if got.Destination() != ch {
		t.Errorf("DESTINATION = %q, want %q", got.Destination(), ch)
	}
	if got.Header(message.HeaderDate) == "" {
		t.Errorf("DATE header missing; headers: %v", got.Headers)
	}
	if _, ok := got.Headers.Lookup(message.HeaderID); ok {
		t.Errorf("the ID header should be moved into Message.ID, headers: %v", got.Headers)
	}

	// A message with an ID keeps it.
	fixed := message.NewBuilder([]byte("x")).WithID(message.NewID()).Build()
	e.send(ch, fixed)
	e.eventually("a message with a preset ID", func() bool { return rec.has(fixed.ID) })
}

func testChannelsIsolated(t *testing.T, e *env) {
	a, b := e.name("a"), e.name("b")
	recA, recB := newRecorder(), newRecorder()
	e.subscribe(e.name("sub-a"), []string{a}, recA.handler(0))
	e.subscribe(e.name("sub-b"), []string{b}, recB.handler(0))
	for i := range 20 {
		e.send(a, keyed("a", i))
		e.send(b, keyed("b", i))
	}
	e.eventually("20 messages on each channel", func() bool { return recA.unique() == 20 && recB.unique() == 20 })
	e.never("a message crossed channels", 100*time.Millisecond, func() bool { return recA.total() > 20 || recB.total() > 20 })
	for _, m := range recA.all() {
		if m.PartitionKey() != "a" {
			t.Fatalf("subscriber of channel a got %q", m.Payload)
		}
	}
}

func testPublishSubscribe(t *testing.T, e *env) {
	ch := e.name("ch")
	one, two := newRecorder(), newRecorder()
	e.subscribe(e.name("one"), []string{ch}, one.handler(0))
	e.subscribe(e.name("two"), []string{ch}, two.handler(0))
	const n = 100
	for i := range n {
		e.send(ch, keyed(fmt.Sprint("k", i%7), i))
	}
	e.eventually("both subscriber ids to get every message", func() bool { return one.unique() == n && two.unique() == n })
}

func testCompetingInstances(t *testing.T, e *env) {
	ch, id := e.name("ch"), e.name("workers")
	rec := newRecorder()
	const instances = 4
	for i := range instances {
		e.subscribe(id, []string{ch}, rec.handler(i))
	}
	// Brokers that rebalance asynchronously may give every shard to the
	// first instance for a while, so keep sending until each instance has
	// had a share.
	sent := 0
	deadline := time.Now().Add(e.timeout())
	for len(rec.instances()) < instances {
		if time.Now().After(deadline) {
			t.Fatalf("after %d messages only instances %v got any; want all %d to share the load", sent, rec.instances(), instances)
		}
		batch := make([]*message.Message, 50)
		for i := range batch {
			batch[i] = keyed(fmt.Sprint("key-", sent), 0)
			sent++
		}
		e.send(ch, batch...)
		time.Sleep(10 * time.Millisecond)
	}
	e.eventually("every message", func() bool { return rec.unique() == sent })
	if total := rec.total(); total != sent && !e.suite.Features.RebalanceDuplicates {
		t.Fatalf("%d deliveries of %d messages: instances of one subscriber id must not each get a message", total, sent)
	}
	t.Logf("%d messages split over instances: %v", sent, rec.instances())
}

func testOrderWithRebalance(t *testing.T, e *env) {
	ch, id := e.name("ch"), e.name("ordered")
	const keys = 100
	total := 10000
	if testing.Short() {
		total = 1000
	}
	checker := newOrderChecker(50 * time.Microsecond)
	var subs []broker.Subscription
	join := func() {
		e.track(id, []string{ch})
		sub, err := e.b.Subscribe(e.ctx(), id, []string{ch}, broker.HandlerFunc(checker.handle), fastRetry)
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

	seq := make([]int, keys)
	const batch = 50
	for sent := 0; sent < total; {
		msgs := make([]*message.Message, 0, batch)
		for range batch {
			k := sent % keys
			msgs = append(msgs, keyed(fmt.Sprintf("key-%03d", k), seq[k]))
			seq[k]++
			sent++
		}
		e.send(ch, msgs...)
		switch sent {
		case total / 5:
			join() // 3 instances
		case 2 * total / 5:
			join() // 4 instances
		case 3 * total / 5:
			leave(0) // 3 instances
		case 4 * total / 5:
			leave(1)
			join() // 3 instances, one of them new
		}
		time.Sleep(time.Millisecond)
	}
	e.eventually(fmt.Sprintf("%d messages in order", total), func() bool {
		received, _, problems := checker.snapshot()
		return received == total || len(problems) > 0
	})
	received, dups, problems := checker.snapshot()
	for _, p := range problems {
		t.Error(p)
	}
	if dups > 0 && !e.suite.Features.RebalanceDuplicates {
		t.Errorf("%d messages delivered twice while instances joined and left", dups)
	}
	t.Logf("%d messages over %d keys in order, %d redelivered", received, keys, dups)
}

// testOrderWithRetries checks order per key for one instance whose
// handler fails now and then: a retried message holds back the messages
// of its key behind it.
func testOrderWithRetries(t *testing.T, e *env) {
	ch := e.name("ch")
	const keys, total = 20, 1000
	checker := newOrderChecker(0)
	e.subscribe(e.name("sub"), []string{ch}, func(ctx context.Context, m *message.Message) error {
		info, _ := broker.Delivery(ctx)
		if info.Attempt == 1 && m.Header("seq") != "" && m.Header("seq")[len(m.Header("seq"))-1] == '3' {
			return errors.New("transient failure") // the first attempt of every tenth message
		}
		return checker.handle(ctx, m)
	}, fastRetry)
	seq := make([]int, keys)
	for sent := 0; sent < total; {
		msgs := make([]*message.Message, 0, 50)
		for range 50 {
			k := sent % keys
			msgs = append(msgs, keyed(fmt.Sprintf("key-%02d", k), seq[k]))
			seq[k]++
			sent++
		}
		e.send(ch, msgs...)
	}
	e.eventually(fmt.Sprintf("%d messages in order", total), func() bool {
		received, _, problems := checker.snapshot()
		return received == total || len(problems) > 0
	})
	_, dups, problems := checker.snapshot()
	for _, p := range problems {
		t.Error(p)
	}
	if dups > 0 {
		t.Errorf("%d messages delivered twice to a single instance", dups)
	}
}

// testRemoveChannel checks a broker.ChannelRemover: the messages of a
// removed channel are gone for a new subscriber id, removing twice is not
// an error, and the channel works again once sent to.
func testRemoveChannel(t *testing.T, e *env) {
	remover, ok := e.b.(broker.ChannelRemover)
	if !ok {
		t.Skip("the broker cannot remove channels")
	}
	ch := e.name("ch")
	first := newRecorder()
	sub := e.subscribe(e.name("first"), []string{ch}, first.handler(0))
	old := message.New([]byte("before"))
	e.send(ch, old)
	e.eventually("the message before the removal", func() bool { return first.has(old.ID) })
	closeSub(t, sub)

	for range 2 {
		if err := remover.RemoveChannel(e.ctx(), ch); err != nil {
			t.Fatalf("RemoveChannel: %v", err)
		}
	}
	if err := remover.RemoveChannel(e.ctx(), "bad channel name"); err == nil {
		t.Error("RemoveChannel accepted an invalid channel name")
	}

	second := newRecorder()
	e.subscribe(e.name("second"), []string{ch}, second.handler(0))
	fresh := message.New([]byte("after"))
	e.send(ch, fresh)
	e.eventually("a message sent after the removal", func() bool { return second.has(fresh.ID) })
	if second.has(old.ID) {
		t.Error("a subscriber id that started after the removal got a message sent before it")
	}
}

// testRemoveSubscriber checks a broker.SubscriberRemover: a subscriber id
// removed while away starts afresh when it comes back, as a new subscriber
// id does (on some brokers with the messages retained, on others with
// those sent after it subscribed), and not where it stopped; removing
// twice is not an error.
func testRemoveSubscriber(t *testing.T, e *env) {
	remover, ok := e.b.(broker.SubscriberRemover)
	if !ok {
		t.Skip("the broker cannot remove subscriber ids")
	}
	if !e.suite.Features.Resume {
		t.Skip("a subscriber id does not resume on this broker, so there is nothing to remove")
	}
	ch, id := e.name("ch"), e.name("sub")
	first := newRecorder()
	sub := e.subscribe(id, []string{ch}, first.handler(0))
	before := keyed("k", 0)
	e.send(ch, before)
	e.eventually("the message before the removal", func() bool { return first.has(before.ID) })
	closeSub(t, sub)

	away := keyed("k", 1)
	e.send(ch, away)
	for range 2 {
		if err := remover.RemoveSubscriber(e.ctx(), id, []string{ch}); err != nil {
			t.Fatalf("RemoveSubscriber: %v", err)
		}
	}
	if err := remover.RemoveSubscriber(e.ctx(), "bad subscriber id", []string{ch}); err == nil {
		t.Error("RemoveSubscriber accepted an invalid subscriber id")
	}

	again, fresh := newRecorder(), newRecorder()
	e.subscribe(id, []string{ch}, again.handler(0))
	e.subscribe(e.name("fresh"), []string{ch}, fresh.handler(0))
	after := keyed("k", 2) // behind the others in their shard
	e.send(ch, after)
	e.eventually("a message sent after the removal", func() bool { return again.has(after.ID) && fresh.has(after.ID) })
	for _, m := range []*message.Message{before, away} {
		if again.has(m.ID) != fresh.has(m.ID) {
			t.Errorf("message %s (payload %q): received by the removed subscriber id come back: %v, by a new one: %v; want the same",
				m.ID, m.Payload, again.has(m.ID), fresh.has(m.ID))
		}
	}
}

func testShardsConcurrent(t *testing.T, e *env) {
	ch := e.name("ch")
	var first atomic.Bool
	release := make(chan struct{})
	var others atomic.Int32
	e.subscribe(e.name("sub"), []string{ch}, func(ctx context.Context, m *message.Message) error {
		if first.CompareAndSwap(false, true) {
			// Hold this shard until another shard makes progress.
			select {
			case <-release:
			case <-ctx.Done():
			case <-time.After(e.timeout()):
			}
			return nil
		}
		if others.Add(1) == 1 {
			close(release)
		}
		return nil
	})
	msgs := make([]*message.Message, 64)
	for i := range msgs {
		msgs[i] = keyed(fmt.Sprint("key-", i), 0)
	}
	e.send(ch, msgs...)
	e.eventually("another shard to progress while one handler is busy", func() bool { return others.Load() > 0 })
}

func testRedelivery(t *testing.T, e *env) {
	ch := e.name("ch")
	var mu sync.Mutex
	attempts := map[string]int{}
	lastInfo := map[string]broker.DeliveryInfo{}
	const failures = 2
	e.subscribe(e.name("sub"), []string{ch}, func(ctx context.Context, m *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[m.ID]++
		info, _ := broker.Delivery(ctx)
		lastInfo[m.ID] = info
		if attempts[m.ID] <= failures {
			return fmt.Errorf("transient failure %d", attempts[m.ID])
		}
		return nil
	}, fastRetry, broker.WithMaxAttempts(failures+2))
	dead := newRecorder()
	e.subscribe(e.name("dlq-reader"), []string{e.name("sub") + broker.DeadLetterSuffix}, dead.handler(0))

	const n = 10
	ids := make([]string, n)
	for i := range n {
		m := keyed("k", i)
		e.send(ch, m)
		ids[i] = m.ID
	}
	e.eventually("every message handled after its failures", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if attempts[id] < failures+1 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	for _, id := range ids {
		if attempts[id] != failures+1 {
			t.Errorf("message %s handled %d times, want %d", id, attempts[id], failures+1)
		}
		info := lastInfo[id]
		if info.Attempt != failures+1 || info.Channel != ch || info.SubscriberID != e.name("sub") {
			t.Errorf("DeliveryInfo on the last attempt = %+v, want attempt %d on %s", info, failures+1, ch)
		}
	}
	mu.Unlock()
	e.never("a message that succeeded on retry was dead-lettered", 100*time.Millisecond, func() bool { return dead.total() > 0 })
}

func testDeadLetter(t *testing.T, e *env) {
	ch, id := e.name("ch"), e.name("sub")
	dlq := e.name("sub-dlq")
	var calls sync.Map // message ID -> *atomic.Int32
	count := func(id string) int32 {
		v, _ := calls.LoadOrStore(id, new(atomic.Int32))
		return v.(*atomic.Int32).Load()
	}
	e.subscribe(id, []string{ch}, func(_ context.Context, m *message.Message) error {
		v, _ := calls.LoadOrStore(m.ID, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
		switch m.Header("kind") {
		case "fails":
			return errors.New("cannot reserve credit")
		case "permanent":
			return broker.Permanent(errors.New("undecodable payload"))
		case "panics":
			panic("handler bug")
		}
		return nil
	}, fastRetry, broker.WithMaxAttempts(3), broker.WithDeadLetterChannel(dlq))
	dead := newRecorder()
	e.subscribe(e.name("dlq-reader"), []string{dlq}, dead.handler(0))

	kinds := []struct {
		kind, reason string
		attempts     int32
	}{
		{"fails", "cannot reserve credit", 3},
		{"permanent", "undecodable payload", 1},
		{"panics", "handler bug", 3},
	}
	var msgs []*message.Message
	for _, k := range kinds {
		msgs = append(msgs, message.NewBuilder([]byte(k.kind)).WithHeader("kind", k.kind).WithPartitionKey("k1").Build())
	}
	e.send(ch, msgs...)
	e.eventually("three dead letters", func() bool { return dead.unique() == 3 })
	for i, k := range kinds {
		got := dead.get(msgs[i].ID)
		if got == nil {
			t.Fatalf("%s: message not dead-lettered", k.kind)
		}
		if !bytes.Equal(got.Payload, msgs[i].Payload) || got.Header("kind") != k.kind || got.PartitionKey() != "k1" {
			t.Errorf("%s: dead letter lost the original payload or headers: %v %q", k.kind, got.Headers, got.Payload)
		}
		want := map[string]string{
			message.HeaderDeadLetterChannel:      ch,
			message.HeaderDeadLetterSubscriberID: id,
			message.HeaderDeadLetterAttempts:     fmt.Sprint(k.attempts),
		}
		for h, v := range want {
			if got.Header(h) != v {
				t.Errorf("%s: header %s = %q, want %q", k.kind, h, got.Header(h), v)
			}
		}
		if !strings.Contains(got.Header(message.HeaderDeadLetterReason), k.reason) {
			t.Errorf("%s: reason %q does not say %q", k.kind, got.Header(message.HeaderDeadLetterReason), k.reason)
		}
		if _, err := time.Parse(time.RFC3339Nano, got.Header(message.HeaderDeadLetterTime)); err != nil {
			t.Errorf("%s: dead-letter time: %v", k.kind, err)
		}
		if n := count(msgs[i].ID); n != k.attempts {
			t.Errorf("%s: handler called %d times, want %d", k.kind, n, k.attempts)
		}
	}
}

func testPoisonDoesNotStall(t *testing.T, e *env) {
	ch := e.name("ch")
	rec := newRecorder()
	inner := rec.handler(0)
	e.subscribe(e.name("sub"), []string{ch}, func(ctx context.Context, m *message.Message) error {
		if m.Header("poison") == "yes" {
			return errors.New("poison")
		}
		return inner(ctx, m)
	}, fastRetry, broker.WithMaxAttempts(2))
	// One key, so the poison message sits in front of the others in its shard.
	var msgs []*message.Message
	for i := range 20 {
		m := keyed("same-key", i)
		if i == 5 {
			m.SetHeader("poison", "yes")
		}
		msgs = append(msgs, m)
	}
	e.send(ch, msgs...)
	e.eventually("the 19 good messages behind the poison one", func() bool { return rec.unique() == 19 })
}

func testCloseWaits(t *testing.T, e *env) {
	ch := e.name("ch")
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var calls atomic.Int32
	e.track(e.name("sub"), []string{ch}, e.with()...)
	sub, err := e.b.Subscribe(e.ctx(), e.name("sub"), []string{ch}, broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		calls.Add(1)
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		return nil
	}), e.with()...)
	if err != nil {
		t.Fatal(err)
	}
	e.send(ch, keyed("k", 0), keyed("k", 1))
	select {
	case <-started:
	case <-time.After(e.timeout()):
		t.Fatal("handler never started")
	}
	closed := make(chan error, 1)
	go func() { closed <- sub.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a handler was still running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(e.timeout()):
		t.Fatal("Close did not return after the handler finished")
	}
	after := calls.Load()
	e.send(ch, keyed("k", 2))
	e.never("a handler ran after Close returned", 150*time.Millisecond, func() bool { return calls.Load() != after })
	if err := sub.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testCloseAndResume(t *testing.T, e *env) {
	if !e.suite.Features.Resume {
		t.Skip("adapter does not declare Features.Resume")
	}
	ch, id := e.name("ch"), e.name("sub")
	rec := newRecorder()
	var slow atomic.Bool
	slow.Store(true)
	h := func(ctx context.Context, m *message.Message) error {
		if slow.Load() {
			time.Sleep(2 * time.Millisecond)
		}
		return rec.handler(0)(ctx, m)
	}
	e.track(id, []string{ch}, e.with()...)
	sub, err := e.b.Subscribe(e.ctx(), id, []string{ch}, broker.HandlerFunc(h), e.with()...)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n / 2 {
		e.send(ch, keyed(fmt.Sprint("k", i%10), i/10))
	}
	// Close in the middle of the stream.
	e.eventually("some messages", func() bool { return rec.unique() >= 10 })
	closeSub(t, sub)
	for i := n / 2; i < n; i++ {
		e.send(ch, keyed(fmt.Sprint("k", i%10), i/10))
	}
	slow.Store(false)
	e.subscribe(id, []string{ch}, h)
	e.eventually(fmt.Sprintf("all %d messages after resuming", n), func() bool { return rec.unique() == n })
}

func testConcurrentPublishers(t *testing.T, e *env) {
	ch := e.name("ch")
	checker := newOrderChecker(0)
	e.subscribe(e.name("sub"), []string{ch}, checker.handle)
	const publishers, each = 16, 100
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				if err := e.b.Send(context.Background(), ch, keyed(fmt.Sprint("publisher-", p), i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Send: %v", err)
	}
	e.eventually("every message", func() bool {
		received, _, problems := checker.snapshot()
		return received == publishers*each || len(problems) > 0
	})
	if _, _, problems := checker.snapshot(); len(problems) > 0 {
		t.Fatal(strings.Join(problems, "\n"))
	}
}

func testContextCancellation(t *testing.T, e *env) {
	ch := e.name("ch")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.b.Send(cancelled, ch, keyed("k", 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := e.b.Subscribe(cancelled, e.name("sub"), []string{ch}, broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with a cancelled context = %v, want context.Canceled", err)
	}

	// A handler that ignores everything but its context is stopped by a
	// Close whose context expires.
	started := make(chan struct{}, 1)
	sawCancel := make(chan struct{})
	e.track(e.name("stuck"), []string{ch}, e.with()...)
	sub, err := e.b.Subscribe(e.ctx(), e.name("stuck"), []string{ch}, broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		close(sawCancel)
		return ctx.Err()
	}), e.with()...)
	if err != nil {
		t.Fatal(err)
	}
	e.send(ch, keyed("k", 1))
	select {
	case <-started:
	case <-time.After(e.timeout()):
		t.Fatal("handler never started")
	}
	ctx, cancelClose := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelClose()
	if err := sub.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with an expiring context = %v, want context.DeadlineExceeded", err)
	}
	select {
	case <-sawCancel:
	default:
		t.Error("Close returned before the handler saw its context cancelled")
	}
}

func testLargePayload(t *testing.T, e *env) {
	ch := e.name("ch")
	rec := newRecorder()
	e.subscribe(e.name("sub"), []string{ch}, rec.handler(0))
	size := e.suite.Features.maxPayload()
	big := make([]byte, size)
	for i := range big {
		big[i] = byte(i * 7)
	}
	m := message.New(big)
	e.send(ch, m)
	e.eventually("the large message", func() bool { return rec.has(m.ID) })
	if got := rec.get(m.ID); !bytes.Equal(got.Payload, big) {
		t.Fatalf("a %d-byte payload arrived damaged (%d bytes)", size, len(got.Payload))
	}
	err := e.b.Send(e.ctx(), ch, message.New(make([]byte, size+1)))
	if !errors.Is(err, message.ErrPayloadTooLarge) {
		t.Fatalf("Send of %d bytes = %v, want message.ErrPayloadTooLarge", size+1, err)
	}
}

func testInvalidInput(t *testing.T, e *env) {
	ok := broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })
	ctx := e.ctx()
	for _, bad := range []string{"", "has space", "wild.*", "a..b", strings.Repeat("x", 300)} {
		if err := e.b.Send(ctx, bad, message.New(nil)); err == nil {
			t.Errorf("Send to channel %q succeeded", bad)
		}
		if _, err := e.b.Subscribe(ctx, e.name("sub"), []string{bad}, ok); !errors.Is(err, broker.ErrInvalidSubscription) {
			t.Errorf("Subscribe to channel %q = %v, want ErrInvalidSubscription", bad, err)
		}
		if _, err := e.b.Subscribe(ctx, bad, []string{e.name("ch")}, ok); !errors.Is(err, broker.ErrInvalidSubscription) {
			t.Errorf("Subscribe as %q = %v, want ErrInvalidSubscription", bad, err)
		}
	}
	if err := e.b.Send(ctx, e.name("ch"), nil); err == nil {
		t.Error("Send of a nil message succeeded")
	}
	if _, err := e.b.Subscribe(ctx, e.name("sub"), nil, ok); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Errorf("Subscribe to no channels = %v, want ErrInvalidSubscription", err)
	}
	if _, err := e.b.Subscribe(ctx, e.name("sub"), []string{e.name("ch")}, nil); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Errorf("Subscribe with a nil handler = %v, want ErrInvalidSubscription", err)
	}
	if _, err := e.b.Subscribe(ctx, e.name("sub"), []string{e.name("ch")}, ok, broker.WithMaxAttempts(0)); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Errorf("Subscribe with zero attempts = %v, want ErrInvalidSubscription", err)
	}
	hdr := message.New(nil)
	hdr.SetHeader("big", strings.Repeat("h", message.DefaultMaxHeaderBytes+1))
	if err := e.b.Send(ctx, e.name("ch"), hdr); !errors.Is(err, message.ErrHeadersTooLarge) {
		t.Errorf("Send with oversized headers = %v, want message.ErrHeadersTooLarge", err)
	}
}

func testClosedBroker(t *testing.T, e *env) {
	b := e.suite.New(t)
	ctx := e.ctx()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Send(ctx, e.name("ch"), message.New(nil)); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Send after Close = %v, want broker.ErrClosed", err)
	}
	ok := broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })
	if _, err := b.Subscribe(ctx, e.name("sub"), []string{e.name("ch")}, ok); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want broker.ErrClosed", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
