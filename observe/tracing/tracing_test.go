package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/observe/tracing"
)

// recorder returns a Tracing that records its spans, and the recorder.
func recorder(opts ...tracing.Option) (*tracing.Tracing, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	return tracing.New(append([]tracing.Option{tracing.WithTracerProvider(tp)}, opts...)...), rec
}

func quiet() broker.SubscribeOption {
	return broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func newMemory(t *testing.T) *memory.Broker {
	t.Helper()
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

// ended returns the ended spans named name, waiting up to 10s for at
// least n of them.
func ended(t *testing.T, rec *tracetest.SpanRecorder, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ended spans named %q, want %d; ended: %v", len(out), name, n, names(rec.Ended()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, k attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

func checkAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := attr(s, attribute.Key(k)); got != v {
			t.Errorf("span %q: %s = %q, want %q", s.Name(), k, got, v)
		}
	}
}

func childOf(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %q (parent %s, trace %s) is not a child of %q (%s, trace %s)", child.Name(), child.Parent().SpanID(),
			child.SpanContext().TraceID(), parent.Name(), parent.SpanContext().SpanID(), parent.SpanContext().TraceID())
	}
}

func TestHandlerSpanIsChildOfSender(t *testing.T) {
	tr, rec := recorder()
	b := tr.Broker(newMemory(t))
	ctx := context.Background()
	got := make(chan *message.Message, 1)
	var handlerSpan trace.SpanContext
	var bag string
	sub, err := b.Subscribe(ctx, "kitchen", []string{"orders"}, broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		handlerSpan = trace.SpanContextFromContext(ctx)
		bag = baggage.FromContext(ctx).Member("tenant").Value()
		got <- m
		return nil
	}), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)

	root, span := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test").Start(ctx, "request")
	member, _ := baggage.NewMember("tenant", "t-1")
	bg, _ := baggage.New(member)
	root = baggage.ContextWithBaggage(root, bg)
	m := message.NewBuilder([]byte("x")).WithPartitionKey("o-1").Build()
	if err := b.Send(root, "orders", m); err != nil {
		t.Fatal(err)
	}
	span.End()
	delivered := <-got
	if tp := delivered.Header("traceparent"); !strings.HasPrefix(tp, "00-"+span.SpanContext().TraceID().String()) {
		t.Errorf("traceparent %q is not of the request's trace %s", tp, span.SpanContext().TraceID())
	}
	if bag != "t-1" {
		t.Errorf("handler's baggage tenant = %q, want t-1", bag)
	}
	send := ended(t, rec, "send orders", 1)[0]
	process := ended(t, rec, "process orders", 1)[0]
	req := ended(t, rec, "request", 1)[0]
	childOf(t, send, req)
	childOf(t, process, send)
	if handlerSpan.SpanID() != process.SpanContext().SpanID() {
		t.Error("the handler does not run in the process span")
	}
	if send.SpanKind() != trace.SpanKindProducer || process.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kinds: send %v, process %v", send.SpanKind(), process.SpanKind())
	}
	checkAttrs(t, send, map[string]string{"messaging.system": "courier", "messaging.destination.name": "orders",
		"messaging.operation.type": "send", "messaging.operation.name": "send", "messaging.message.id": m.ID,
		"messaging.courier.partition_key": "o-1"})
	checkAttrs(t, process, map[string]string{"messaging.system": "courier", "messaging.destination.name": "orders",
		"messaging.operation.type": "process", "messaging.consumer.group.name": "kitchen", "messaging.message.id": m.ID,
		"messaging.courier.partition_key": "o-1", "messaging.courier.attempts": "1", "messaging.courier.result": "handled"})
}

func TestLinks(t *testing.T) {
	tr, rec := recorder(tracing.WithLinks(), tracing.WithSystem("nats"))
	b := tr.Broker(newMemory(t))
	ctx := context.Background()
	done := make(chan struct{})
	sub, err := b.Subscribe(ctx, "kitchen", []string{"orders"}, broker.HandlerFunc(func(context.Context, *message.Message) error {
		close(done)
		return nil
	}), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	if err := b.Send(ctx, "orders", message.New([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	<-done
	send := ended(t, rec, "send orders", 1)[0]
	process := ended(t, rec, "process orders", 1)[0]
	if process.Parent().IsValid() {
		t.Errorf("process span has parent %s, want a new root", process.Parent().SpanID())
	}
	if process.SpanContext().TraceID() == send.SpanContext().TraceID() {
		t.Error("process span is in the sender's trace")
	}
	if l := process.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("links %v, want one to the send span", l)
	}
	checkAttrs(t, process, map[string]string{"messaging.system": "nats"})
}

// A message the handler gives up on ends its span with an error, and its
// dead letter carries the trace context the message came with.
func TestDeadLetteredSpan(t *testing.T) {
	tr, rec := recorder()
	b := tr.Broker(newMemory(t))
	ctx := context.Background()
	dead := make(chan *message.Message, 1)
	dlq, err := b.Subscribe(ctx, "audit", []string{"kitchen.dead-letter"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		dead <- m
		return nil
	}), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close(ctx)
	sub, err := b.Subscribe(ctx, "kitchen", []string{"orders"}, broker.HandlerFunc(func(context.Context, *message.Message) error {
		return errors.New("oven on fire")
	}), quiet(), broker.WithMaxAttempts(2), broker.WithBackoff(broker.ConstantBackoff(time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	m := message.New([]byte("x"))
	if err := b.Send(ctx, "orders", m); err != nil {
		t.Fatal(err)
	}
	process := ended(t, rec, "process orders", 1)[0]
	send := ended(t, rec, "send orders", 1)[0]
	if got, want := (<-dead).Header("traceparent"), m.Header("traceparent"); got != want || !strings.Contains(got, send.SpanContext().SpanID().String()) {
		t.Errorf("dead letter's traceparent %q, want the message's %q", got, want)
	}
	auditSpan := ended(t, rec, "process kitchen.dead-letter", 1)[0]
	childOf(t, auditSpan, send)
	checkAttrs(t, process, map[string]string{"messaging.courier.attempts": "2", "messaging.courier.result": "dead_lettered"})
	if process.Status().Code != codes.Error || !strings.Contains(process.Status().Description, "oven on fire") {
		t.Errorf("status %+v, want the handler's error", process.Status())
	}
}

type reserve struct{ Amount int }
type reserved struct{ ID string }

// A command sent with Call, its handling, its reply and the reply's
// delivery to the caller are one trace; so are Gather's.
func TestCommandsJoinTheTrace(t *testing.T) {
	tr, rec := recorder()
	b := tr.Broker(newMemory(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := commands.NewDispatcher(b)
	commands.Handle(d, func(_ context.Context, c commands.Command[reserve]) (commands.Reply, error) {
		return commands.Success(reserved{ID: fmt.Sprint(c.Payload.Amount)}), nil
	})
	for _, id := range []string{"accounting-a", "accounting-b"} {
		sub, err := d.Subscribe(ctx, b, id, "accounting", quiet())
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close(ctx)
	}
	caller, err := commands.NewCaller(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close(ctx)
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")

	callCtx, call := tracer.Start(ctx, "call")
	if _, err := commands.Call[reserved](callCtx, caller, "accounting", reserve{Amount: 3}); err != nil {
		t.Fatal(err)
	}
	call.End()
	gatherCtx, gather := tracer.Start(ctx, "gather")
	replies, err := caller.Gather(gatherCtx, "accounting", reserve{Amount: 4}, 2)
	if err != nil || len(replies) != 2 {
		t.Fatalf("gathered %d replies, %v", len(replies), err)
	}
	gather.End()

	for _, root := range []trace.Span{call, gather} {
		id := root.SpanContext().TraceID()
		var in []sdktrace.ReadOnlySpan
		deadline := time.Now().Add(10 * time.Second)
		for {
			in = in[:0]
			for _, s := range rec.Ended() {
				if s.SpanContext().TraceID() == id {
					in = append(in, s)
				}
			}
			// the root, the command's send, and for each of the 2
			// responders (both subscriber ids handle the command; Call
			// returns with the first reply, and the caller's reply
			// subscription still handles the second): its handling,
			// its reply's send and the reply's handling
			if len(in) >= 8 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("trace of %v has spans %v", root, names(in))
			}
			time.Sleep(5 * time.Millisecond)
		}
		byName := map[string][]sdktrace.ReadOnlySpan{}
		for _, s := range in {
			byName[s.Name()] = append(byName[s.Name()], s)
		}
		cmd := byName["send accounting"]
		if len(cmd) != 1 {
			t.Fatalf("trace has spans %v", names(in))
		}
		for _, p := range byName["process accounting"] {
			childOf(t, p, cmd[0])
		}
		replyCh := caller.ReplyChannel()
		for _, s := range byName["send "+replyCh] {
			if !slices.ContainsFunc(byName["process accounting"], func(p sdktrace.ReadOnlySpan) bool {
				return s.Parent().SpanID() == p.SpanContext().SpanID()
			}) {
				t.Errorf("reply span %s is not a child of a handler's span", s.SpanContext().SpanID())
			}
		}
		if n := len(byName["process "+replyCh]); n != len(byName["process accounting"]) {
			t.Errorf("%d replies processed in the trace, want %d", n, len(byName["process accounting"]))
		}
	}
}

// The wrapper keeps the broker's optional methods, and only those.
func TestBrokerKeepsOptionalMethods(t *testing.T) {
	tr, _ := recorder()
	b := tr.Broker(newMemory(t))
	if _, ok := b.(broker.Pinger); !ok {
		t.Error("the memory broker's Ping is lost")
	}
	if _, ok := b.(broker.ChannelRemover); ok {
		t.Error("the wrapper of the memory broker claims to remove channels")
	}
	if _, ok := b.(broker.SubscriberRemover); ok {
		t.Error("the wrapper of the memory broker claims to remove subscribers")
	}
	if _, ok := b.(broker.DeadLetterProducer); !ok {
		t.Error("dead letters are not traced")
	}
}

// A Send the broker refuses ends its span with the error.
func TestSendErrorSpan(t *testing.T) {
	tr, rec := recorder()
	var mu sync.Mutex
	p := tr.Producer(broker.ProducerFunc(func(context.Context, string, ...*message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		return errors.New("broker down")
	}))
	if err := p.Send(context.Background(), "orders", message.New([]byte("a")), message.New([]byte("b"))); err == nil {
		t.Fatal("no error")
	}
	spans := ended(t, rec, "send orders", 2)
	for _, s := range spans {
		if s.Status().Code != codes.Error {
			t.Errorf("status %v", s.Status())
		}
	}
}
