// Package couriertest helps test services built on Courier: a Broker that
// records every message a service sends, over the in-memory broker, and
// assertions on what was sent — events, commands and replies — in the
// spirit of Eventuate's test support.
//
//	b := couriertest.NewBroker(t)
//	svc := orders.NewService(b)
//	svc.Create(ctx, ...)
//	created := couriertest.EventPublished[orders.OrderCreated](t, b, "Order", "o-1")
package couriertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/codec"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/internal/typename"
	"github.com/courier-go/courier/message"
)

// Sent is one message a service sent.
type Sent struct {
	Channel string
	Message *message.Message
}

// Recorder is a broker.Producer that keeps copies of what it is sent, and
// passes them on to Next when that is set. It is safe for concurrent use.
type Recorder struct {
	Next broker.Producer

	mu   sync.Mutex
	sent []Sent
}

// Send records msgs and forwards them to Next.
func (r *Recorder) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	if r.Next != nil {
		if err := r.Next.Send(ctx, channel, msgs...); err != nil {
			return err
		}
	} else if err := adapter.PrepareSend(channel, msgs, message.Limits{}); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.sent = append(r.sent, Sent{Channel: channel, Message: m.Clone()})
	}
	return nil
}

// Sent returns everything sent so far, in order.
func (r *Recorder) Sent() []Sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sent(nil), r.sent...)
}

// Reset forgets what was sent.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.sent = nil
	r.mu.Unlock()
}

// Broker is an in-memory broker that records every message sent through it.
type Broker struct {
	*memory.Broker
	Recorder
}

// NewBroker returns a recording in-memory broker, closed when the test ends.
func NewBroker(t testing.TB) *Broker {
	t.Helper()
	mb, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{Broker: mb}
	b.Recorder.Next = mb
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mb.Close(ctx)
	})
	return b
}

// Send records msgs and sends them through the in-memory broker.
func (b *Broker) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	return b.Recorder.Send(ctx, channel, msgs...)
}

// Sender is what the assertions read: a Recorder or a Broker.
type Sender interface{ Sent() []Sent }

// Wait is how long the assertions wait for a message that has not been
// sent yet, for services that send asynchronously.
var Wait = 5 * time.Second

// find waits until match accepts a sent message and returns it, or fails
// the test with a list of what was sent.
func find(t testing.TB, s Sender, what string, match func(Sent) bool) Sent {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		for _, sent := range s.Sent() {
			if match(sent) {
				return sent
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	var lines []string
	for _, sent := range s.Sent() {
		lines = append(lines, fmt.Sprintf("  %s: %s", sent.Channel, describe(sent.Message)))
	}
	if len(lines) == 0 {
		lines = []string{"  (nothing)"}
	}
	t.Fatalf("expected %s within %v; sent:\n%s", what, Wait, strings.Join(lines, "\n"))
	return Sent{}
}

func describe(m *message.Message) string {
	for _, h := range []string{message.HeaderEventType, message.HeaderCommandType, message.HeaderReplyType} {
		if v := m.Header(h); v != "" {
			return fmt.Sprintf("%s=%s %s", h, v, m.Payload)
		}
	}
	return string(m.Payload)
}

func decode[T any](t testing.TB, m *message.Message) T {
	t.Helper()
	var codecs codec.Set
	v, err := typename.Decode[T](func(target any) error {
		return codecs.Decode(m.Header(message.HeaderContentType), m.Payload, target)
	})
	if err != nil {
		t.Fatalf("decoding message %s as %T: %v", m.ID, v, err)
	}
	return v
}

// EventPublished asserts that an event of type T was published for the
// aggregate and returns the first such event.
func EventPublished[T any](t testing.TB, s Sender, aggregateType, aggregateID string) T {
	t.Helper()
	eventType := events.TypeName[T]()
	sent := find(t, s, fmt.Sprintf("event %s of %s %s", eventType, aggregateType, aggregateID), func(x Sent) bool {
		return x.Channel == aggregateType && x.Message.Header(message.HeaderEventType) == eventType &&
			x.Message.Header(message.HeaderEventAggregateID) == aggregateID
	})
	return decode[T](t, sent.Message)
}

// CommandSent asserts that a command of type C was sent to channel and
// returns the first such command and its message.
func CommandSent[C any](t testing.TB, s Sender, channel string) (C, *message.Message) {
	t.Helper()
	commandType := commands.TypeName[C]()
	sent := find(t, s, fmt.Sprintf("command %s on %s", commandType, channel), func(x Sent) bool {
		return x.Channel == channel && x.Message.Header(message.HeaderCommandType) == commandType
	})
	return decode[C](t, sent.Message), sent.Message
}

// ReplySent asserts that a reply of type R with the given outcome
// (message.ReplyOutcomeSuccess or message.ReplyOutcomeFailure) was sent in
// answer to the command with id commandID, and returns it.
func ReplySent[R any](t testing.TB, s Sender, commandID, outcome string) R {
	t.Helper()
	replyType := commands.ReplyTypeName[R]()
	sent := find(t, s, fmt.Sprintf("%s reply %s to command %s", outcome, replyType, commandID), func(x Sent) bool {
		return x.Message.Header(message.HeaderReplyToMessageID) == commandID &&
			x.Message.Header(message.HeaderReplyType) == replyType && x.Message.Header(message.HeaderReplyOutcome) == outcome
	})
	return decode[R](t, sent.Message)
}

// NothingSentTo asserts that nothing was sent to channel.
func NothingSentTo(t testing.TB, s Sender, channel string) {
	t.Helper()
	for _, sent := range s.Sent() {
		if sent.Channel == channel {
			t.Fatalf("expected nothing on %s, but %s was sent", channel, describe(sent.Message))
		}
	}
}
