package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/message"
)

type Ping struct {
	N int `json:"n"`
}

type Pong struct {
	N int `json:"n"`
}

func setUp(t *testing.T) (*memory.Broker, *commands.Caller, context.Context) {
	t.Helper()
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	caller, err := commands.NewCaller(ctx, b, "test.replies")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		caller.Close(context.Background())
		b.Close(context.Background())
		cancel()
	})
	return b, caller, ctx
}

var quiet = commands.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func subscribe(t *testing.T, b broker.Broker, d *commands.Dispatcher, opts ...broker.SubscribeOption) {
	t.Helper()
	opts = append([]broker.SubscribeOption{broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	sub, err := d.Subscribe(context.Background(), b, "ping-service", "pings", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close(context.Background()) })
}

func TestReplyEchoesCorrelationHeaders(t *testing.T) {
	b, caller, ctx := setUp(t)
	d := commands.NewDispatcher(b)
	commands.Handle(d, func(_ context.Context, c commands.Command[Ping]) (commands.Reply, error) {
		return commands.Success(Pong{N: c.Payload.N + 1}), nil
	})
	subscribe(t, b, d)
	r, err := caller.Request(ctx, "pings", Ping{N: 1}, commands.WithHeader("saga_id", "s-9"), commands.WithResource("/pings/1"), commands.WithPartitionKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		message.HeaderReplyOutcome: message.ReplyOutcomeSuccess,
		message.HeaderReplyType:    "commands_test.Pong",
		"commandreply_saga_id":     "s-9",
		"commandreply_resource":    "/pings/1",
		"commandreply_type":        "commands_test.Ping",
		"commandreply_reply_to":    "test.replies",
		// Eventuate's command__destination, set by Courier too, echoed
		// as Eventuate's CommandHandlerParams echoes it.
		"commandreply__destination":    "pings",
		message.HeaderPartitionID:      "k",
		message.HeaderContentType:      "application/json",
		message.HeaderReplyToMessageID: r.InReplyTo(),
	}
	for k, v := range want {
		if r.Header(k) != v {
			t.Errorf("reply header %s = %q, want %q", k, r.Header(k), v)
		}
	}
	if _, err := commands.DecodeReply[Ping](r); !errors.Is(err, commands.ErrWrongReplyType) {
		t.Fatalf("decoding as the wrong type: %v", err)
	}
}

func TestDeferredReply(t *testing.T) {
	b, caller, ctx := setUp(t)
	d := commands.NewDispatcher(b)
	targets := make(chan commands.ReplyTarget, 1)
	commands.Handle(d, func(_ context.Context, c commands.Command[Ping]) (commands.Reply, error) {
		target, ok := c.ReplyTarget()
		if !ok {
			t.Error("no reply target")
		}
		// Store the target as a real service would, e.g. in its database.
		data, _ := json.Marshal(target)
		var stored commands.ReplyTarget
		json.Unmarshal(data, &stored)
		targets <- stored
		return commands.Deferred(), nil
	})
	subscribe(t, b, d)
	go func() {
		target := <-targets
		time.Sleep(20 * time.Millisecond) // the work finishes later
		if err := commands.SendReply(ctx, b, target, commands.Success(Pong{N: 42})); err != nil {
			t.Error(err)
		}
	}()
	got, err := commands.Call[Pong](ctx, caller, "pings", Ping{N: 1})
	if err != nil || got.N != 42 {
		t.Fatalf("deferred Call = %+v, %v", got, err)
	}
	if err := commands.SendReply(ctx, b, commands.ReplyTarget{Channel: "x"}, commands.Deferred()); err == nil {
		t.Fatal("SendReply of Deferred accepted")
	}
}

func TestRetryableErrorRedelivers(t *testing.T) {
	b, caller, ctx := setUp(t)
	d := commands.NewDispatcher(b, quiet)
	var attempts atomic.Int32
	commands.Handle(d, func(_ context.Context, c commands.Command[Ping]) (commands.Reply, error) {
		if attempts.Add(1) < 3 {
			return commands.Reply{}, commands.Retryable(errors.New("database busy"))
		}
		return commands.Success(Pong{N: 1}), nil
	})
	subscribe(t, b, d, broker.WithBackoff(broker.ConstantBackoff(time.Millisecond)))
	if _, err := commands.Call[Pong](ctx, caller, "pings", Ping{}); err != nil || attempts.Load() != 3 {
		t.Fatalf("Call = %v after %d attempts", err, attempts.Load())
	}
}

func TestBadCommandsGetFailureReplies(t *testing.T) {
	b, caller, ctx := setUp(t)
	d := commands.NewDispatcher(b, quiet)
	commands.Handle(d, func(context.Context, commands.Command[Ping]) (commands.Reply, error) {
		return commands.Success(Pong{}), nil
	})
	subscribe(t, b, d)

	type Unknown struct{}
	_, err := commands.Call[Pong](ctx, caller, "pings", Unknown{})
	if f, ok := commands.As[commands.HandlerFailure](err); !ok || !strings.Contains(f.Error, "no handler") {
		t.Fatalf("unknown command: %v", err)
	}
	// A payload that does not decode into Ping.
	bad := message.NewBuilder([]byte("{not json")).WithHeader(message.HeaderCommandType, commands.TypeName[Ping]()).
		WithHeader(message.HeaderCommandReplyTo, caller.ReplyChannel()).WithContentType("application/json").Build()
	replies := make(chan *message.Message, 1)
	watch, _ := b.Subscribe(ctx, "watcher", []string{caller.ReplyChannel()}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		replies <- m
		return nil
	}))
	defer watch.Close(ctx)
	b.Send(ctx, "pings", bad)
	select {
	case r := <-replies:
		if r.Header(message.HeaderReplyOutcome) != message.ReplyOutcomeFailure || r.Header(message.HeaderReplyToMessageID) != bad.ID {
			t.Fatalf("reply to a malformed command: %v", r.Headers)
		}
	case <-ctx.Done():
		t.Fatal("no reply to a malformed command")
	}
}

func TestOneWayCommandThatFailsIsDeadLettered(t *testing.T) {
	b, _, ctx := setUp(t)
	d := commands.NewDispatcher(b, quiet)
	commands.Handle(d, func(context.Context, commands.Command[Ping]) (commands.Reply, error) {
		return commands.Reply{}, errors.New("cannot")
	})
	subscribe(t, b, d, broker.WithMaxAttempts(1))
	dead := make(chan *message.Message, 1)
	dlq, _ := b.Subscribe(ctx, "ops", []string{"ping-service" + broker.DeadLetterSuffix}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		dead <- m
		return nil
	}))
	defer dlq.Close(ctx)
	commands.NewProducer(b).Send(ctx, "pings", Ping{})
	select {
	case m := <-dead:
		if m.Header(message.HeaderDeadLetterReason) != "cannot" {
			t.Fatalf("reason = %q", m.Header(message.HeaderDeadLetterReason))
		}
	case <-ctx.Done():
		t.Fatal("a failed one-way command was not dead-lettered")
	}
}

func TestGatherValidatesAndSendErrors(t *testing.T) {
	b, caller, ctx := setUp(t)
	if _, err := caller.Gather(ctx, "x", Ping{}, 0); err == nil {
		t.Fatal("Gather with max 0 accepted")
	}
	if _, err := caller.Request(ctx, "bad channel", Ping{}); !errors.Is(err, message.ErrInvalidChannel) {
		t.Fatalf("Request to a bad channel: %v", err)
	}
	if _, err := commands.NewProducer(b).Send(ctx, "x", nil); err == nil {
		t.Fatal("nil command sent")
	}
}

// javaReserveCredit and javaCreditReserved are Go types exchanged with a
// Java service on Eventuate under the Java class names Eventuate gives
// them (DefaultCommandNameMapping, CommandHandlerReplyBuilder: the class
// name).
type javaReserveCredit struct {
	CustomerID int64 `json:"customerId"`
}

func (javaReserveCredit) CommandType() string {
	return "io.eventuate.examples.tram.sagas.ordersandcustomers.customers.api.commands.ReserveCreditCommand"
}

type javaCreditReserved struct{}

func (javaCreditReserved) ReplyType() string {
	return "io.eventuate.examples.tram.sagas.ordersandcustomers.customers.api.replies.CustomerCreditReserved"
}

func TestJavaClassNames(t *testing.T) {
	b, caller, ctx := setUp(t)
	d := commands.NewDispatcher(b)
	commands.Handle(d, func(_ context.Context, c commands.Command[javaReserveCredit]) (commands.Reply, error) {
		if got := c.Type; got != commands.TypeName[javaReserveCredit]() || c.Payload.CustomerID != 7 {
			return commands.Reply{}, fmt.Errorf("command_type %q, payload %+v", got, c.Payload)
		}
		return commands.Success(javaCreditReserved{}), nil
	})
	subscribe(t, b, d)
	r, err := caller.Request(ctx, "pings", javaReserveCredit{CustomerID: 7})
	if err != nil {
		t.Fatal(err)
	}
	if r.Type() != "io.eventuate.examples.tram.sagas.ordersandcustomers.customers.api.replies.CustomerCreditReserved" ||
		r.Header("commandreply_type") != "io.eventuate.examples.tram.sagas.ordersandcustomers.customers.api.commands.ReserveCreditCommand" {
		t.Errorf("reply_type %q, commandreply_type %q: want the Java class names", r.Type(), r.Header("commandreply_type"))
	}
	if _, err := commands.DecodeReply[javaCreditReserved](r); err != nil {
		t.Errorf("DecodeReply: %v", err)
	}
}
