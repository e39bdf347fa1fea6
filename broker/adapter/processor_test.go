package adapter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// fakeProducer records sends and fails the first failN of them.
type fakeProducer struct {
	mu    sync.Mutex
	failN int
	err   error
	sent  map[string][]*message.Message
	calls int
}

func (f *fakeProducer) Send(_ context.Context, channel string, msgs ...*message.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failN {
		return f.err
	}
	if f.sent == nil {
		f.sent = map[string][]*message.Message{}
	}
	for _, m := range msgs {
		f.sent[channel] = append(f.sent[channel], m.Clone())
	}
	return nil
}

func quiet() broker.SubscribeOption {
	return broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func newTestProcessor(t *testing.T, h broker.HandlerFunc, dlq broker.Producer, opts ...broker.SubscribeOption) *Processor {
	t.Helper()
	opts = append([]broker.SubscribeOption{quiet(), broker.WithBackoff(broker.ConstantBackoff(time.Millisecond))}, opts...)
	cfg, err := NewSubscribeConfig("svc", []string{"orders"}, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return NewProcessor(cfg, dlq)
}

func TestProcessRetriesThenSucceeds(t *testing.T) {
	var attempts []int
	p := newTestProcessor(t, func(ctx context.Context, m *message.Message) error {
		info, _ := broker.Delivery(ctx)
		attempts = append(attempts, info.Attempt)
		m.SetHeader("scribble", "x") // must not leak into the next attempt
		if len(attempts) < 3 {
			return errors.New("not yet")
		}
		return nil
	}, &fakeProducer{}, broker.WithMaxAttempts(3))
	msg := message.NewBuilder([]byte("p")).Build()
	if err := p.Process(context.Background(), nil, "orders", 2, 0, msg); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("attempts = %v", attempts)
	}
	if _, ok := msg.Headers.Lookup("scribble"); ok {
		t.Fatal("the handler's header change reached the stored message")
	}
}

func TestProcessCountsPriorAttempts(t *testing.T) {
	dlq := &fakeProducer{}
	calls := 0
	p := newTestProcessor(t, func(context.Context, *message.Message) error { calls++; return errors.New("no") }, dlq, broker.WithMaxAttempts(5))
	if err := p.Process(context.Background(), nil, "orders", 0, 3, message.New(nil)); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("handler called %d times after 3 prior deliveries of 5 allowed, want 2", calls)
	}
	if got := dlq.sent["svc.dead-letter"][0].Header(message.HeaderDeadLetterAttempts); got != "5" {
		t.Fatalf("attempts header = %q, want 5", got)
	}
}

func TestProcessAbandonsWhenStopped(t *testing.T) {
	stop := make(chan struct{})
	dlq := &fakeProducer{}
	p := newTestProcessor(t, func(context.Context, *message.Message) error {
		close(stop)
		return errors.New("fail")
	}, dlq, broker.WithBackoff(broker.ConstantBackoff(time.Hour)))
	start := time.Now()
	err := p.Process(context.Background(), stop, "orders", 0, 0, message.New(nil))
	if !errors.Is(err, ErrAbandoned) {
		t.Fatalf("Process = %v, want ErrAbandoned", err)
	}
	if time.Since(start) > time.Second || dlq.calls != 0 {
		t.Fatal("a stopped Process waited out its backoff or dead-lettered")
	}
}

func TestProcessRetriesDeadLetterSend(t *testing.T) {
	dlq := &fakeProducer{failN: 2, err: errors.New("broker down")}
	p := newTestProcessor(t, func(context.Context, *message.Message) error {
		return broker.Permanent(errors.New("bad payload"))
	}, dlq)
	if err := p.Process(context.Background(), nil, "orders", 0, 0, message.New([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	if dlq.calls != 3 || len(dlq.sent["svc.dead-letter"]) != 1 {
		t.Fatalf("dead-letter sends: %d calls, %d delivered", dlq.calls, len(dlq.sent["svc.dead-letter"]))
	}
	dead := dlq.sent["svc.dead-letter"][0]
	if dead.Header(message.HeaderDeadLetterReason) != "bad payload" || dead.Header(message.HeaderDeadLetterAttempts) != "1" {
		t.Fatalf("dead letter headers: %v", dead.Headers)
	}
}

func TestProcessHandlerTimeout(t *testing.T) {
	dlq := &fakeProducer{}
	p := newTestProcessor(t, func(ctx context.Context, _ *message.Message) error {
		<-ctx.Done()
		return ctx.Err()
	}, dlq, broker.WithHandlerTimeout(10*time.Millisecond), broker.WithMaxAttempts(1))
	if err := p.Process(context.Background(), nil, "orders", 0, 0, message.New(nil)); err != nil {
		t.Fatal(err)
	}
	if reason := dlq.sent["svc.dead-letter"][0].Header(message.HeaderDeadLetterReason); reason != context.DeadlineExceeded.Error() {
		t.Fatalf("reason = %q", reason)
	}
}

func TestNewSubscribeConfig(t *testing.T) {
	ok := broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })
	cfg, err := NewSubscribeConfig("svc", []string{"a", "b", "a"}, ok)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.Channels) != "[a b]" || cfg.DeadLetterChannel != "svc.dead-letter" || cfg.MaxAttempts != broker.DefaultMaxAttempts {
		t.Fatalf("defaults: %+v", cfg)
	}
	bad := []struct {
		name     string
		id       string
		channels []string
		h        broker.Handler
		opts     []broker.SubscribeOption
	}{
		{"empty id", "", []string{"a"}, ok, nil},
		{"no channels", "svc", nil, ok, nil},
		{"nil handler", "svc", []string{"a"}, nil, nil},
		{"bad channel", "svc", []string{"a b"}, ok, nil},
		{"zero attempts", "svc", []string{"a"}, ok, []broker.SubscribeOption{broker.WithMaxAttempts(0)}},
		{"nil backoff", "svc", []string{"a"}, ok, []broker.SubscribeOption{broker.WithBackoff(nil)}},
		{"negative timeout", "svc", []string{"a"}, ok, []broker.SubscribeOption{broker.WithHandlerTimeout(-time.Second)}},
		{"bad dead-letter", "svc", []string{"a"}, ok, []broker.SubscribeOption{broker.WithDeadLetterChannel("x y")}},
		{"consumes its dead letters", "svc", []string{"svc.dead-letter"}, ok, nil},
		{"id too long for a dead-letter name", strings.Repeat("s", message.MaxNameLength), []string{"a"}, ok, nil},
	}
	for _, tt := range bad {
		if _, err := NewSubscribeConfig(tt.id, tt.channels, tt.h, tt.opts...); !errors.Is(err, broker.ErrInvalidSubscription) {
			t.Errorf("%s: err = %v, want broker.ErrInvalidSubscription", tt.name, err)
		}
	}
}

func TestPrepareSend(t *testing.T) {
	m := &message.Message{Payload: []byte("x")}
	if err := PrepareSend("orders", []*message.Message{m}, message.Limits{}); err != nil || m.ID == "" {
		t.Fatalf("PrepareSend = %v, id %q", err, m.ID)
	}
	big := message.New(make([]byte, 11))
	if err := PrepareSend("orders", []*message.Message{m, big}, message.Limits{MaxPayloadBytes: 10}); !errors.Is(err, message.ErrPayloadTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if err := PrepareSend("", []*message.Message{m}, message.Limits{}); !errors.Is(err, message.ErrEmptyDestination) {
		t.Fatalf("empty destination: %v", err)
	}
}

func TestExponentialBackoff(t *testing.T) {
	b := broker.ExponentialBackoff(100*time.Millisecond, time.Second)
	for failures, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: time.Second, 1000: time.Second} {
		for range 50 {
			if got := b(failures); got < want/2 || got > want {
				t.Fatalf("backoff after %d failures = %v, want within [%v, %v]", failures, got, want/2, want)
			}
		}
	}
}

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) broker.Middleware {
		return func(next broker.Handler) broker.Handler {
			return broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
				order = append(order, name)
				return next.HandleMessage(ctx, m)
			})
		}
	}
	h := broker.Chain(broker.HandlerFunc(func(context.Context, *message.Message) error { order = append(order, "handler"); return nil }), mw("outer"), mw("inner"))
	_ = h.HandleMessage(context.Background(), message.New(nil))
	if fmt.Sprint(order) != "[outer inner handler]" {
		t.Fatalf("order = %v", order)
	}
}

func TestPermanent(t *testing.T) {
	if broker.Permanent(nil) != nil {
		t.Fatal("broker.Permanent(nil) != nil")
	}
	base := errors.New("x")
	err := fmt.Errorf("wrapped: %w", broker.Permanent(base))
	if !broker.IsPermanent(err) || !errors.Is(err, base) || broker.IsPermanent(base) {
		t.Fatal("broker.Permanent does not mark and unwrap")
	}
}

// TestUnavailableDoesNotSpendAttempts: failures caused by an unavailable
// dependency (a database restarting) are retried without counting toward
// the attempts, so the message is handled once the dependency is back
// instead of being dead-lettered.
func TestUnavailableDoesNotSpendAttempts(t *testing.T) {
	dlq := &fakeProducer{}
	calls := 0
	var last broker.DeliveryInfo
	p := newTestProcessor(t, func(ctx context.Context, m *message.Message) error {
		calls++
		last, _ = broker.Delivery(ctx)
		if calls <= 10 {
			return broker.Unavailable(fmt.Errorf("begin: %w", errors.New("connection refused")))
		}
		return nil
	}, dlq, broker.WithMaxAttempts(2))
	if err := p.Process(context.Background(), nil, "orders", 0, 0, message.New(nil)); err != nil {
		t.Fatal(err)
	}
	if calls != 11 || last.Attempt != 11 || len(dlq.sent) != 0 {
		t.Fatalf("%d calls (last attempt %d), %d dead letters; want 11 calls and none", calls, last.Attempt, len(dlq.sent))
	}
}

// TestUnavailableIsBounded: past WithMaxUnavailable, such failures count
// like any other, and the message is dead-lettered after its attempts.
func TestUnavailableIsBounded(t *testing.T) {
	dlq := &fakeProducer{}
	calls := 0
	p := newTestProcessor(t, func(context.Context, *message.Message) error {
		calls++
		return broker.Unavailable(errors.New("connection refused"))
	}, dlq, broker.WithMaxAttempts(2), broker.WithMaxUnavailable(20*time.Millisecond))
	if err := p.Process(context.Background(), nil, "orders", 0, 0, message.New(nil)); err != nil {
		t.Fatal(err)
	}
	if len(dlq.sent["svc.dead-letter"]) != 1 || calls < 3 {
		t.Fatalf("%d calls, dead letters %v; want the message dead-lettered after the bound", calls, dlq.sent)
	}
	if err := broker.WithMaxUnavailable(0)(&broker.SubscribeConfig{}); err == nil {
		t.Error("WithMaxUnavailable(0) accepted")
	}
}

func TestUnavailableMarker(t *testing.T) {
	base := errors.New("refused")
	err := fmt.Errorf("wrapped: %w", broker.Unavailable(base))
	if !broker.IsUnavailable(err) || !errors.Is(err, base) || broker.IsUnavailable(base) || broker.Unavailable(nil) != nil {
		t.Fatal("Unavailable does not mark, wrap or recognise as documented")
	}
	if broker.IsUnavailable(broker.Permanent(errors.New("bad"))) {
		t.Error("a permanent error is unavailable")
	}
}
