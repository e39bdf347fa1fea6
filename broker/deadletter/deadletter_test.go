package deadletter_test

import (
	"context"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/deadletter"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
)

// FuzzParse: whatever headers a dead letter carries (they come from
// outside: any producer can write to a dead-letter channel), Parse does
// not panic and keeps what it read.
func FuzzParse(f *testing.F) {
	f.Add("a", "orders", "3", "2026-01-02T03:04:05.123Z", "boom", "bounded")
	f.Add("", "", "-1", "yesterday", "", "")
	f.Fuzz(func(t *testing.T, id, channel, attempts, at, reason, envelope string) {
		l := deadletter.Parse(broker.DeadLetter{Message: &message.Message{ID: id, Headers: message.Headers{
			message.HeaderDeadLetterChannel: channel, message.HeaderDeadLetterAttempts: attempts,
			message.HeaderDeadLetterTime: at, message.HeaderDeadLetterReason: reason, message.HeaderDeadLetterEnvelope: envelope,
		}}})
		if l.ID != id || l.Channel != channel || l.Reason != reason || l.Attempts < 0 {
			t.Fatalf("Parse = %+v", l)
		}
		if envelope == "" && l.Envelope != broker.EnvelopeOriginal || envelope != "" && l.Envelope != envelope {
			t.Fatalf("envelope %q parsed as %q", envelope, l.Envelope)
		}
		_ = utf8.ValidString(l.Reason)
	})
}

// Replay skips the letters it cannot send whole, and Purge and Replay
// refuse an empty selection; a broker that cannot browse is refused.
func TestReplaySkipsPartialLetters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	dl := b.DeadLetterProducer()
	whole := &message.Message{ID: "whole", Headers: message.Headers{message.HeaderDeadLetterChannel: "orders"}, Payload: []byte("x")}
	cut := &message.Message{ID: "cut", Headers: message.Headers{message.HeaderDeadLetterChannel: "orders", message.HeaderDeadLetterEnvelope: broker.EnvelopeBounded}}
	lost := &message.Message{ID: "lost", Headers: message.Headers{}}
	if err := dl.Send(ctx, "svc.dead-letter", whole, cut, lost); err != nil {
		t.Fatal(err)
	}
	if _, err := deadletter.Purge(ctx, b, "svc.dead-letter", deadletter.Filter{}); !errors.Is(err, deadletter.ErrNoFilter) {
		t.Errorf("Purge(no filter): %v", err)
	}
	res, err := deadletter.Replay(ctx, b, "svc.dead-letter", deadletter.Filter{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Replayed) != 1 || res.Replayed[0].ID != "whole" || len(res.Skipped) != 2 || res.Removed != 1 {
		t.Fatalf("Replay = %+v", res)
	}
	left, err := deadletter.List(ctx, b, "svc.dead-letter", deadletter.Filter{})
	if err != nil || len(left) != 2 {
		t.Fatalf("left %v, %v; want the two skipped", left, err)
	}
	if _, err := deadletter.List(ctx, struct{ broker.Producer }{b}, "x", deadletter.Filter{}); !errors.Is(err, deadletter.ErrUnsupported) {
		t.Errorf("List on a broker that cannot browse: %v", err)
	}
}
